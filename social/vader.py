"""VADER in linear time: vaderSentiment 3.3.2's analyzer, with its numbers bit for bit.

What belongs here: the English analyzer and the rule functions it runs (negation,
boosters, capitals, idioms, "but"), each an override of one step of the original that
keeps its order of operations and removes only repeated work, and the one analyzer a
process shares. Beside the rules, because it must follow them step by step: `trace`,
which records each rule as it changes a word (for explanations), and analyzers with
lexicon overrides (`with_overrides`; which overrides are allowed is checked in
social.sentiment). What a score means (labels, statuses, which texts are scored at all) is
social.sentiment's; which language a text is in is social.language's.

vaderSentiment 3.3.2 is roughly quadratic in text length: several of its checks
lower-case the whole token list again for every sentiment word, and its "but" rule
looks every value up again with `list.index`. `LinearAnalyzer` computes the same
numbers in about linear time; tests compare it with the original on every tweet of the
VADER ground truth and on generated texts.
"""

from __future__ import annotations

import contextlib
import copy
import heapq
import math
import os
import re
import string
import threading
from collections.abc import Mapping
from typing import Any, NamedTuple

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

    # Set only on an analyzer made by with_overrides: the phrases it reads as one word
    # (by first word, longest first) and every override, for explanations.
    _phrases: dict[str, tuple[tuple[str, ...], ...]] | None = None
    _overrides: Mapping[str, float] = {}
    # Lexicon words that score 0 whatever surrounds them: the boosters, and on an
    # analyzer with overrides the words and phrases overridden to 0.
    _unscored: Mapping[str, float] | frozenset[str] = BOOSTER_DICT

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
        text, words, lower = self._read(text)
        count = len(words)
        capitals = sum(map(str.isupper, words))
        is_cap_diff = 0 < count - capitals < count
        lexicon = self.lexicon
        unscored = self._unscored
        # Boosters, "kind" of "kind of", and words outside the lexicon score 0 (the int,
        # as in the original); only lexicon words need the rules.
        sentiments: list[Any] = [0] * count
        for i in [i for i, item_lower in enumerate(lower) if item_lower in lexicon]:
            item_lower = lower[i]
            if item_lower in unscored or (
                item_lower == "kind" and i < count - 1 and lower[i + 1] == "of"
            ):
                continue
            sentiments[i] = self._valence(is_cap_diff, words, lower, i)
        return text, words, _but_check(lower, sentiments)

    def _read(self, text: str) -> tuple[str, list[str], list[str]]:
        """The text as VADER reads it, its words and their lower-cased forms; an
        analyzer with phrase overrides reads each phrase as one word."""
        if not self._emoji_chars.isdisjoint(text):
            text = self._emoji_re.sub(self._describe_emoji, text)
        text = text.strip()
        # SentiText's tokens: split on white space, punctuation stripped from each end
        # unless that leaves two characters or fewer (an emoticon).
        words = [
            token if len(stripped := token.strip(_PUNCTUATION)) <= 2 else stripped
            for token in text.split()
        ]
        lower = list(map(str.lower, words))
        if self._phrases is not None:
            words, lower = _join_phrases(words, lower, self._phrases)
        return text, words, lower

    def read_phrase(self, text: str) -> str:
        """text as this analyzer matches it against the lexicon: emoji read as their
        names, each word's end punctuation dropped, lower-cased, one space between."""
        return " ".join(self._read(text)[2])

    def with_overrides(self, overrides: Mapping[str, float]) -> LinearAnalyzer:
        """A copy of this analyzer whose lexicon has overrides (checked lower-case words
        or phrases -> valence) on top: a word replaces or adds its entry; a phrase of
        several words is read as one word with that valence (see _join_phrases). The
        lexicons are not read again."""
        other = copy.copy(self)
        other.lexicon = {**self.lexicon, **overrides}
        other._overrides = dict(overrides)
        # VADER would still move a zero word (capitals, a booster before it); an admin
        # who sets a word to 0 means "neutral", so it scores 0 like a booster.
        zero = {word for word, valence in overrides.items() if valence == 0}
        other._unscored = frozenset(BOOSTER_DICT).union(zero) if zero else BOOSTER_DICT
        by_first: dict[str, list[tuple[str, ...]]] = {}
        for phrase in overrides:
            parts = tuple(phrase.split(" "))
            if len(parts) > 1:
                by_first.setdefault(parts[0], []).append(parts)
        other._phrases = (
            {
                first: tuple(sorted(found, key=len, reverse=True))
                for first, found in by_first.items()
            }
            if by_first
            else None
        )
        return other

    def trace(self, text: str) -> Trace:
        """What valences(text) computes, and why: for every word with a valence, its
        lexicon valence and each rule that changed it, in plain words, in VADER's order.

        Kept apart from valences (which the scorer runs) so scoring pays nothing for
        it; tests check that both reach the same valences bit for bit."""
        text, words, lower = self._read(text)
        count = len(words)
        capitals = sum(map(str.isupper, words))
        is_cap_diff = 0 < count - capitals < count
        lexicon = self.lexicon
        sentiments: list[Any] = [0] * count
        steps: dict[int, list[Step]] = {}
        for i in [i for i, item_lower in enumerate(lower) if item_lower in lexicon]:
            item_lower = lower[i]
            steps[i] = found = []
            if item_lower in self._overrides:
                found.append(
                    Step(f"your rule: '{item_lower}' = {lexicon[item_lower]}", lexicon[item_lower])
                )
            if item_lower in BOOSTER_DICT:
                found.append(Step(f"'{words[i]}' only strengthens or softens the next word", 0))
                continue
            if item_lower in self._unscored:
                found.append(Step("neutral: scores 0 whatever surrounds it", 0))
                continue
            if item_lower == "kind" and i < count - 1 and lower[i + 1] == "of":
                found.append(Step("'kind of' means 'somewhat' here: no valence of its own", 0))
                continue
            sentiments[i] = self._traced_valence(is_cap_diff, words, lower, i, found)
        changes: list[tuple[int, float, Any]] = []
        sentiments = _but_check(lower, sentiments, changes)
        for i, factor, value in changes:
            if i in steps and value != 0:
                where = "before" if factor < 1 else "after"
                steps[i].append(Step(f"{where} 'but': x{factor}", value))
        traced = [
            WordTrace(
                i,
                words[i],
                lexicon[lower[i]],
                sentiments[i],
                tuple(found),
                lower[i] in self._overrides,
            )
            for i, found in steps.items()
        ]
        return Trace(text, words, sentiments, traced, self._punctuation_emphasis(text))

    def _traced_valence(
        self, is_cap_diff: bool, words: list[str], lower: list[str], i: int, steps: list[Step]
    ) -> Any:
        """_valence for word i, the same operations in the same order, appending a Step
        for each rule that changed the valence."""
        lexicon = self.lexicon
        item = words[i]
        item_lowercase = lower[i]
        valence: Any = lexicon[item_lowercase]
        if item_lowercase == "no" and i != len(words) - 1 and lower[i + 1] in lexicon:
            valence = 0.0
            steps.append(
                Step(f"'no' before the sentiment word '{words[i + 1]}': counts 0", valence)
            )
        for back in (1, 2, 3):
            if (
                i >= back
                and lower[i - back] == "no"
                and (back < 3 or lower[i - 1] in ["or", "nor"])
            ):
                valence = lexicon[item_lowercase] * N_SCALAR
                steps.append(Step(_negated_by(words[i - back], back - 1), valence))
                break
        if item.isupper() and is_cap_diff:
            if valence > 0:
                valence += C_INCR
                steps.append(Step(f"ALL CAPS: +{C_INCR}", valence))
            else:
                valence -= C_INCR
                steps.append(Step(f"ALL CAPS: -{C_INCR}", valence))
        for start_i in range(3):
            j = i - (start_i + 1)
            if j < 0:
                break
            before = lower[j]
            if before in lexicon:
                continue
            s = scalar_inc_dec(words[j], valence, is_cap_diff) if before in BOOSTER_DICT else 0.0
            if start_i == 1 and s != 0:
                s = s * 0.95
            if start_i == 2 and s != 0:
                s = s * 0.9
            valence = valence + s
            if s != 0:
                kind = "booster" if BOOSTER_DICT[before] > 0 else "softener"
                steps.append(Step(f"{kind} '{words[j]}' {_BEFORE[start_i]}: {s:+.3f}", valence))
            rule = _negation_rule(words, lower, start_i, i)
            if rule is not None:
                factor, why = rule
                valence = valence * factor
                steps.append(Step(why, valence))
            if start_i == 2 and _may_be_idiom(lower, i):
                valence = _traced_idioms(valence, lower, i, steps)
        if _least_negates(lexicon, lower, i):
            valence = valence * N_SCALAR
            steps.append(Step(f"negated by 'least' before it (x {N_SCALAR})", valence))
        return valence

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


class Step(NamedTuple):
    """One rule that changed a word's valence: what it did, in plain words, and the
    word's valence after it."""

    rule: str
    valence: float


class WordTrace(NamedTuple):
    """A word VADER gave a valence to (a lexicon word or an override) and why it ended
    where it did. valence is what the sum adds: after every rule, "but" included."""

    index: int
    word: str
    lexicon_valence: float
    valence: float
    steps: tuple[Step, ...]
    override: bool


class Trace(NamedTuple):
    """LinearAnalyzer.trace(text): the text as read, its words, every word's final
    valence (as valences gives them), the words that had one, and the punctuation
    emphasis (what score_valence adds to, or takes from, the sum)."""

    text: str
    words: list[str]
    sentiments: list[Any]
    traced: list[WordTrace]
    punctuation: float


_BEFORE = ("before it", "2 words before", "3 words before")


def _negated_by(word: str, start_i: int) -> str:
    """Plain words for a negation start_i + 1 words before."""
    where = "" if start_i == 0 else f", {_BEFORE[start_i]}"
    return f"negated by '{word}'{where} (x {N_SCALAR})"


def _negation_rule(
    words: list[str], lower: list[str], start_i: int, i: int
) -> tuple[float, str] | None:
    """Which branch of _negation_check changes word i's valence, as (factor, plain
    words); None when none does."""
    if start_i == 0:
        if _negated(lower[i - 1]):
            return N_SCALAR, _negated_by(words[i - 1], 0)
    elif start_i == 1:
        if lower[i - 2] == "never" and (lower[i - 1] == "so" or lower[i - 1] == "this"):
            return 1.25, f"'{words[i - 2]} {words[i - 1]}' before it: x1.25"
        if lower[i - 2] == "without" and lower[i - 1] == "doubt":
            return None
        if _negated(lower[i - 2]):
            return N_SCALAR, _negated_by(words[i - 2], 1)
    else:
        if lower[i - 3] == "never" and (lower[i - 2] == "so" or lower[i - 2] == "this"):
            return 1.25, f"'{words[i - 3]} {words[i - 2]}' before it: x1.25"
        if lower[i - 1] == "so" or lower[i - 1] == "this":
            return 1.25, f"'{words[i - 1]}' just before it: x1.25"
        if lower[i - 3] == "without" and (lower[i - 2] == "doubt" or lower[i - 1] == "doubt"):
            return None
        if _negated(lower[i - 3]):
            return N_SCALAR, _negated_by(words[i - 3], 2)
    return None


def _traced_idioms(valence: Any, lower: list[str], i: int, steps: list[Step]) -> Any:
    """_special_idioms_check, appending a Step for each phrase that changed word i."""
    onezero = f"{lower[i - 1]} {lower[i]}"
    twoonezero = f"{lower[i - 2]} {lower[i - 1]} {lower[i]}"
    twoone = f"{lower[i - 2]} {lower[i - 1]}"
    threetwoone = f"{lower[i - 3]} {lower[i - 2]} {lower[i - 1]}"
    threetwo = f"{lower[i - 3]} {lower[i - 2]}"
    phrases = [onezero, twoonezero, twoone, threetwoone, threetwo]
    for seq in phrases:
        if seq in SPECIAL_CASES:
            valence = SPECIAL_CASES[seq]
            steps.append(Step(f"special case '{seq}': counts {valence}", valence))
            break
    if len(lower) - 1 > i:
        zeroone = f"{lower[i]} {lower[i + 1]}"
        if zeroone in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroone]
            steps.append(Step(f"special case '{zeroone}': counts {valence}", valence))
    if len(lower) - 1 > i + 1:
        zeroonetwo = f"{lower[i]} {lower[i + 1]} {lower[i + 2]}"
        if zeroonetwo in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroonetwo]
            steps.append(Step(f"special case '{zeroonetwo}': counts {valence}", valence))
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in BOOSTER_DICT:
            valence = valence + BOOSTER_DICT[n_gram]
            kind = "booster" if BOOSTER_DICT[n_gram] > 0 else "softener"
            steps.append(Step(f"{kind} '{n_gram}' before it: {BOOSTER_DICT[n_gram]:+.3f}", valence))
    return valence


def _least_negates(lexicon: Mapping[str, float], lower: list[str], i: int) -> bool:
    """Whether _least_check negates word i ("least good", but not "at least good")."""
    if i > 1 and lower[i - 1] not in lexicon and lower[i - 1] == "least":
        return lower[i - 2] != "at" and lower[i - 2] != "very"
    return i > 0 and lower[i - 1] not in lexicon and lower[i - 1] == "least"


def _join_phrases(
    words: list[str], lower: list[str], phrases: dict[str, tuple[tuple[str, ...], ...]]
) -> tuple[list[str], list[str]]:
    """The words with each phrase of phrases (by first word, longest first) joined into
    one word, left to right: the phrase then takes part in every rule as one word
    (negated, boosted, in capitals, around "but") and its own words score nothing.
    VADER's special cases would only see a phrase after three words that are not in the
    lexicon, so an override there would miss most texts. A phrase may open and close
    with punctuation: VADER strips it from longer words but keeps it on a word of one or
    two letters ("Fight me." stays "fight", "me."), which would otherwise hide it."""
    out_words: list[str] = []
    out_lower: list[str] = []
    i = 0
    count = len(words)
    while i < count:
        for phrase in phrases.get(lower[i].lstrip(string.punctuation), ()):
            end = i + len(phrase)
            if end <= count and _is_phrase(lower[i:end], phrase):
                out_words.append(" ".join(words[i:end]))
                out_lower.append(" ".join(phrase))
                i = end
                break
        else:
            out_words.append(words[i])
            out_lower.append(lower[i])
            i += 1
    return out_words, out_lower


def _is_phrase(words: list[str], phrase: tuple[str, ...]) -> bool:
    """Whether the lower-cased words are phrase, punctuation allowed before its first
    word and after its last."""
    *inner, last = words
    if inner:
        inner[0] = inner[0].lstrip(string.punctuation)
    else:
        last = last.lstrip(string.punctuation)
    return (*inner, last.rstrip(string.punctuation)) == phrase


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


def modifier_role(word: str) -> str | None:
    """What a lower-cased word or phrase does in VADER's rules when it is not a sentiment
    word of its own (a negation, a booster or softener, "least"), in plain words; None
    for any other. Such a word given a valence would stop doing its job, since VADER
    treats no lexicon word as a modifier."""
    if " " not in word and (_negated(word) or word == "least"):
        return "a negation: it turns around the words after it"
    if word in BOOSTER_DICT:
        kind = "strengthens" if BOOSTER_DICT[word] > 0 else "softens"
        return f"an intensifier: it {kind} the word after it"
    return None


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


def _but_check(
    lower: list[str], sentiments: list[Any], changes: list[tuple[int, float, Any]] | None = None
) -> list[Any]:
    """SentimentIntensityAnalyzer._but_check without its quadratic `list.index`.

    The original walks the list and, for each value v it meets, rescales the *first*
    position currently holding a value equal to v (not necessarily the position it is
    at): equal values before "but" can be halved twice and others not at all. To get
    the same numbers, a heap per value finds that first position in log time; entries
    whose position no longer holds the value are dropped lazily. changes, if given,
    gets (position, factor, new value) for each rescaling, for explanations.
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
        if changes is not None:
            changes.append((si, 0.5 if si < bi else 1.5, new))
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
