"""VADER in linear time: vaderSentiment 3.3.2's analyzer, with its numbers bit for bit.

What belongs here: the English analyzer and the rule functions it runs (negation,
boosters, capitals, idioms, "but"), each an override of one step of the original that
keeps its order of operations and removes only repeated work, and the one analyzer a
process shares. What a score means (labels, statuses, which texts are scored at all) is
social.sentiment's; which language a text is in is social.language's.

vaderSentiment 3.3.2 is roughly quadratic in text length: several of its checks
lower-case the whole token list again for every sentiment word, and its "but" rule
looks every value up again with `list.index`. `LinearAnalyzer` computes the same
numbers in about linear time; tests compare it with the original on every tweet of the
VADER ground truth and on generated texts.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import os
import re
import string
import threading
from typing import Any

from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    C_INCR,
    N_SCALAR,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
    normalize,
    scalar_inc_dec,
)

_NEGATE = frozenset(NEGATE)
_PUNCTUATION = string.punctuation


class LinearAnalyzer(SentimentIntensityAnalyzer):
    """vaderSentiment's analyzer, giving identical results in about linear time.

    Each override keeps the original's order of operations, so the floats come out
    bit for bit the same; only repeated work is removed.
    """

    def __init__(self) -> None:
        super().__init__()
        # The original walks the text one character at a time, so only one-character
        # keys of the emoji lexicon can ever match; the regex finds the same ones.
        self._emoji_chars = frozenset(e for e in self.emojis if len(e) == 1)
        self._emoji_re = re.compile(_char_class(self._emoji_chars))

    def _describe_emoji(self, match: re.Match[str]) -> str:
        """The emoji's description, preceded by a space unless the text had one there."""
        start = match.start()
        description = self.emojis[match.group()]
        # The original adds a space unless it is at the start or just wrote a plain
        # space; an emoji just before also counts as "no space".
        if start > 0 and match.string[start - 1] != " ":
            return " " + description
        return description

    def polarity_scores(self, text: str) -> dict[str, float]:
        """The same dict as SentimentIntensityAnalyzer.polarity_scores(text)."""
        text, _words, sentiments = self.valences(text)
        return _score_valence(sentiments, self._punctuation_emphasis(text))

    def valences(self, text: str) -> tuple[str, list[str], list[Any]]:
        """The text as VADER reads it (emoji described, stripped), its words, and each
        word's valence after every rule, "but" included: what polarity_scores adds up."""
        if not self._emoji_chars.isdisjoint(text):
            text = self._emoji_re.sub(self._describe_emoji, text)
        text = text.strip()
        # SentiText's tokens: split on white space, punctuation stripped from each end
        # unless that leaves two characters or fewer (an emoticon).
        words = [
            token if len(stripped := token.strip(_PUNCTUATION)) <= 2 else stripped
            for token in text.split()
        ]
        count = len(words)
        capitals = sum(map(str.isupper, words))
        is_cap_diff = 0 < count - capitals < count
        lower = list(map(str.lower, words))
        lexicon = self.lexicon
        # Boosters, "kind" of "kind of", and words outside the lexicon score 0 (the int,
        # as in the original); only lexicon words need the rules.
        sentiments: list[Any] = [0] * count
        for i in [i for i, item_lower in enumerate(lower) if item_lower in lexicon]:
            item_lower = lower[i]
            if item_lower in BOOSTER_DICT or (
                item_lower == "kind" and i < count - 1 and lower[i + 1] == "of"
            ):
                continue
            sentiments[i] = self._valence(is_cap_diff, words, lower, i)
        return text, words, _but_check(lower, sentiments)

    def _valence(self, is_cap_diff: bool, words: list[str], lower: list[str], i: int) -> Any:
        """sentiment_valence for lexicon word i, reading the lower-cased words computed
        once."""
        lexicon = self.lexicon
        item = words[i]
        item_lowercase = lower[i]
        valence: Any = lexicon[item_lowercase]
        if item_lowercase == "no" and i != len(words) - 1 and lower[i + 1] in lexicon:
            valence = 0.0
        if (
            (i > 0 and lower[i - 1] == "no")
            or (i > 1 and lower[i - 2] == "no")
            or (i > 2 and lower[i - 3] == "no" and lower[i - 1] in ["or", "nor"])
        ):
            valence = lexicon[item_lowercase] * N_SCALAR
        if item.isupper() and is_cap_diff:
            if valence > 0:
                valence += C_INCR
            else:
                valence -= C_INCR
        for start_i in range(3):
            j = i - (start_i + 1)
            if j < 0:
                break
            before = lower[j]
            if before in lexicon:
                continue
            # scalar_inc_dec is 0.0 for any word that is no booster.
            s = scalar_inc_dec(words[j], valence, is_cap_diff) if before in BOOSTER_DICT else 0.0
            if start_i == 1 and s != 0:
                s = s * 0.95
            if start_i == 2 and s != 0:
                s = s * 0.9
            valence = valence + s
            valence = _negation_check(valence, lower, start_i, i)
            if start_i == 2 and _may_be_idiom(lower, i):
                valence = _special_idioms_check(valence, lower, i)
        return self._least_check(valence, words, i)


def _score_valence(sentiments: list[Any], punct_emph_amplifier: float) -> dict[str, float]:
    """SentimentIntensityAnalyzer.score_valence, adding the same non-zero values in the
    same order (a zero adds nothing to a float sum) without a call per value."""
    if not sentiments:
        return {"neg": 0.0, "neu": 0.0, "pos": 0.0, "compound": 0.0}
    sum_s = float(sum(sentiments))
    if sum_s > 0:
        sum_s += punct_emph_amplifier
    elif sum_s < 0:
        sum_s -= punct_emph_amplifier
    compound = normalize(sum_s)
    pos_sum = 0.0
    neg_sum = 0.0
    neu_count = 0
    for sentiment_score in sentiments:
        if sentiment_score > 0:
            pos_sum += float(sentiment_score) + 1
        elif sentiment_score < 0:
            neg_sum += float(sentiment_score) - 1
        else:
            neu_count += 1
    if pos_sum > math.fabs(neg_sum):
        pos_sum += punct_emph_amplifier
    elif pos_sum < math.fabs(neg_sum):
        neg_sum -= punct_emph_amplifier
    total = pos_sum + math.fabs(neg_sum) + neu_count
    return {
        "neg": round(math.fabs(neg_sum / total), 3),
        "neu": round(math.fabs(neu_count / total), 3),
        "pos": round(math.fabs(pos_sum / total), 3),
        "compound": round(compound, 4),
    }


def _char_class(chars: frozenset[str]) -> str:
    """A regex character class of chars, as ranges: a class of many single code points
    is scanned one by one, and made finding emoji slower than VADER itself."""
    points = sorted(map(ord, chars))
    ranges: list[list[int]] = []
    for point in points:
        if ranges and ranges[-1][1] == point - 1:
            ranges[-1][1] = point
        else:
            ranges.append([point, point])
    parts = [
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    ]
    return "[" + "".join(parts) + "]"


def _negated(word: str) -> bool:
    """vaderSentiment's negated([word]) for one word, without building lists."""
    lowered = word.lower()
    return lowered in _NEGATE or "n't" in lowered


def _negation_check(valence: Any, lower: list[str], start_i: int, i: int) -> Any:
    """SentimentIntensityAnalyzer._negation_check on the already lower-cased words."""
    if start_i == 0 and _negated(lower[i - (start_i + 1)]):
        valence = valence * N_SCALAR
    if start_i == 1:
        if lower[i - 2] == "never" and (lower[i - 1] == "so" or lower[i - 1] == "this"):
            valence = valence * 1.25
        elif lower[i - 2] == "without" and lower[i - 1] == "doubt":
            pass
        elif _negated(lower[i - (start_i + 1)]):
            valence = valence * N_SCALAR
    if start_i == 2:
        # As in the original, where "and" binds tighter than "or": a "so" or "this"
        # just before the word boosts it even without "never".
        if (lower[i - 3] == "never" and (lower[i - 2] == "so" or lower[i - 2] == "this")) or (
            lower[i - 1] == "so" or lower[i - 1] == "this"
        ):
            valence = valence * 1.25
        elif lower[i - 3] == "without" and (lower[i - 2] == "doubt" or lower[i - 1] == "doubt"):
            pass
        elif _negated(lower[i - (start_i + 1)]):
            valence = valence * N_SCALAR
    return valence


# Every word of the phrases _special_idioms_check looks for: each phrase has two words or
# more, so a window around word i with fewer than two of these cannot hold one.
_IDIOM_WORDS = frozenset(
    word for phrase in (*SPECIAL_CASES, *BOOSTER_DICT) if " " in phrase for word in phrase.split()
)


def _may_be_idiom(lower: list[str], i: int) -> bool:
    """Whether the words _special_idioms_check reads (i-3 to i+2) could hold a phrase."""
    return sum(map(_IDIOM_WORDS.__contains__, lower[i - 3 : i + 3])) >= 2


def _special_idioms_check(valence: Any, lower: list[str], i: int) -> Any:
    """SentimentIntensityAnalyzer._special_idioms_check on the lower-cased words."""
    onezero = f"{lower[i - 1]} {lower[i]}"
    twoonezero = f"{lower[i - 2]} {lower[i - 1]} {lower[i]}"
    twoone = f"{lower[i - 2]} {lower[i - 1]}"
    threetwoone = f"{lower[i - 3]} {lower[i - 2]} {lower[i - 1]}"
    threetwo = f"{lower[i - 3]} {lower[i - 2]}"
    for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
        if seq in SPECIAL_CASES:
            valence = SPECIAL_CASES[seq]
            break
    if len(lower) - 1 > i:
        zeroone = f"{lower[i]} {lower[i + 1]}"
        if zeroone in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroone]
    if len(lower) - 1 > i + 1:
        zeroonetwo = f"{lower[i]} {lower[i + 1]} {lower[i + 2]}"
        if zeroonetwo in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroonetwo]
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in BOOSTER_DICT:
            valence = valence + BOOSTER_DICT[n_gram]
    return valence


def _but_check(lower: list[str], sentiments: list[Any]) -> list[Any]:
    """SentimentIntensityAnalyzer._but_check without its quadratic `list.index`.

    The original walks the list and, for each value v it meets, rescales the *first*
    position currently holding a value equal to v (not necessarily the position it is
    at): equal values before "but" can be halved twice and others not at all. To get
    the same numbers, a heap per value finds that first position in log time; entries
    whose position no longer holds the value are dropped lazily.
    """
    if "but" not in lower:
        return sentiments
    bi = lower.index("but")
    where: dict[Any, list[int]] = {}
    for j, value in enumerate(sentiments):
        where.setdefault(value, []).append(j)  # ascending, so already a heap
    for k in range(len(sentiments)):
        value = sentiments[k]
        heap = where[value]
        while sentiments[heap[0]] != value:
            heapq.heappop(heap)
        si = heap[0]
        if si < bi:
            new = value * 0.5
        elif si > bi:
            new = value * 1.5
        else:
            continue
        sentiments[si] = new
        heapq.heappush(where.setdefault(new, []), si)
    return sentiments


_analyzer: LinearAnalyzer | None = None
_analyzer_lock = threading.Lock()


def analyzer() -> LinearAnalyzer:
    """The process's analyzer, built on first use (reading the lexicons is slow enough
    to do once)."""
    global _analyzer
    if _analyzer is None:
        with _analyzer_lock:
            if _analyzer is None:
                _analyzer = LinearAnalyzer()
    return _analyzer


def _build_before_fork() -> None:
    """Build the analyzer in a process about to fork, so its children inherit it: an RQ
    worker forks a work-horse per job, and each would otherwise read the lexicons again.
    Processes that never fork never pay for it here."""
    with contextlib.suppress(Exception):  # the child builds its own, as before
        analyzer()


os.register_at_fork(before=_build_before_fork)
