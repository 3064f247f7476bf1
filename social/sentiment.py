"""Sentiment of mention text: `score(texts, languages)`, the one call that scores, and
`explain(text)`, why a text got its score.

What belongs here: the public scorer and what its answers mean (`Score`, the labels,
the statuses: scored, truncated, not English, no text) and the bound on the work one
text can cost; explaining a score and overriding lexicon words, for callers, belong
here too. The workers decide when to score; this module only scores. The numbers are
social.vader's (exactly vaderSentiment 3.3.2's, in linear time); which texts are not
English is social.language's.

Explaining: `explain(text, language, overrides)` gives the Score `score` gives, and for
every word that moved it (or that a rule silenced, like "kind" in "kind of") a
Contribution: the word as written, its lexicon valence, its valence after the rules and
each rule in plain words ("booster 'very' before it: +0.293", "negated by 'not' (x
-0.74)", "ALL CAPS: +0.733", "after 'but': x1.5", "your rule: 'war zone' = 0.0"); then
the punctuation emphasis and the normalisation (alpha 15) that makes the compound. The
contributions' valences add up, in VADER's order, to exactly the sum VADER normalises.
Texts not scored (no text, not English) get a note saying so; a truncated one is
explained as far as it was scored.

Overrides: a mapping of lower-case word or phrase -> valence (-4..4, VADER's scale)
that both calls take. A word replaces or adds its lexicon entry. A phrase (several
words) is read as one word with that valence: it is negated, boosted, capitalised and
weighed around "but" as a whole, and its own words score nothing. (VADER's own special
cases only apply after three words that are not in the lexicon, which would make an
override miss most texts.) A valence of 0 makes the word or phrase neutral whatever
surrounds it (VADER would still move a zero word by capitals or a booster). An emoji is
read as its name, so a rule for "💔" is one for "broken heart". Negations and
intensifiers cannot be given a valence: VADER treats no lexicon word as a modifier, so
they would silently stop working. With no overrides the numbers are vaderSentiment's;
an overridden analyzer is built once per distinct mapping and a few are kept.
"""

from __future__ import annotations

import functools
import math
import numbers
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from vaderSentiment.vaderSentiment import normalize

from social import vader
from social.language import is_english

# Re-exported: callers that warm the scorer, or compare its numbers with
# vaderSentiment's, reach the analyzer through this module.
from social.vader import LinearAnalyzer, Step, analyzer

# Long enough for any post or article summary people write by hand; beyond it the
# rest of a text rarely changes its tone, and the cost of scoring one text stays small.
MAX_CHARS = 5_000

LABELS = ("positive", "neutral", "negative")
SCORED = "scored"
TRUNCATED = "truncated"
NOT_ENGLISH = "not_english"
# A post with no text (media only): nothing to judge, which is not the same as neutral.
NO_TEXT = "no_text"
STATUSES = (SCORED, TRUNCATED, NOT_ENGLISH, NO_TEXT)

# VADER's normalisation: compound = sum / sqrt(sum² + ALPHA).
ALPHA = 15
# An override's word or phrase, in characters; VADER's valence scale.
MAX_OVERRIDE_CHARS = 60
MIN_VALENCE, MAX_VALENCE = -4.0, 4.0
# More rules than any admin writes by hand; checking a mapping is linear in its size.
MAX_OVERRIDES = 10_000
# Distinct override mappings whose analyzers are kept (each copies the lexicon).
_CACHED_ANALYZERS = 8


class Score(NamedTuple):
    """VADER's scores for one text; all None (and label None) when status is not_english
    or no_text.

    A named tuple: a batch makes one per mention, and a frozen dataclass is markedly
    slower to build."""

    compound: float | None
    pos: float | None
    neu: float | None
    neg: float | None
    label: str | None
    status: str


def bound(text: str) -> tuple[str, bool]:
    """At most MAX_CHARS of text, cut at a word boundary; True if anything was cut."""
    if len(text) <= MAX_CHARS:
        return text, False
    head = text[:MAX_CHARS]
    if not text[MAX_CHARS].isspace():
        words = head.rsplit(maxsplit=1)
        # One giant token (a run of emoji without spaces) has no boundary to cut at.
        if len(words) == 2 and len(words[0]) >= MAX_CHARS // 2:
            head = words[0]
    return head, True


def label(compound: float) -> str:
    """VADER's usual thresholds: ±0.05 around neutral."""
    if compound >= 0.05:
        return "positive"
    if compound <= -0.05:
        return "negative"
    return "neutral"


def score(
    texts: list[str],
    languages: list[str | None] | None = None,
    overrides: Mapping[str, float] | None = None,
) -> list[Score]:
    """Score a batch of texts; languages (the mentions' tags, None if unknown) align with
    texts; overrides as in the module's docstring. :raise ValueError: if the two lists
    differ in length, or overrides is not a valid mapping (the message says why)."""
    if languages is None:
        languages = [None] * len(texts)
    if len(languages) != len(texts):
        raise ValueError("texts and languages must be the same length")
    vader = analyzer_for(overrides)
    scores = []
    for text, language in zip(texts, languages, strict=True):
        if not text or text.isspace():
            scores.append(Score(None, None, None, None, None, NO_TEXT))
            continue
        head, cut = bound(text)
        if not is_english(head, language):
            scores.append(Score(None, None, None, None, None, NOT_ENGLISH))
            continue
        values = vader.polarity_scores(head)
        compound = values["compound"]
        scores.append(
            Score(
                compound,
                values["pos"],
                values["neu"],
                values["neg"],
                label(compound),
                TRUNCATED if cut else SCORED,
            )
        )
    return scores


def analyzer_for(overrides: Mapping[str, float] | None) -> LinearAnalyzer:
    """The analyzer for overrides: the process's own when there are none, else one built
    once per distinct mapping. :raise ValueError: as checked_overrides."""
    checked = checked_overrides(overrides)
    if not checked:
        return analyzer()
    return _overridden(checked)


@functools.lru_cache(maxsize=_CACHED_ANALYZERS)
def _overridden(checked: tuple[tuple[str, float], ...]) -> LinearAnalyzer:
    return analyzer().with_overrides(dict(checked))


def checked_overrides(overrides: Mapping[str, float] | None) -> tuple[tuple[str, float], ...]:
    """overrides in the form the analyzers are keyed by: (word or phrase, valence) pairs,
    sorted, each word lower-cased and read as VADER reads text (white space collapsed,
    punctuation at a word's ends dropped, an emoji read as its name). :raise ValueError:
    with a message an admin can act on, for anything but a mapping of words of
    1..MAX_OVERRIDE_CHARS printable characters to finite numbers in [-4, 4], for
    negations and intensifiers, and for two spellings of one word with two valences."""
    if overrides is None:
        return ()
    if not isinstance(overrides, Mapping):
        raise ValueError("Overrides must map words or phrases to valences.")
    if len(overrides) > MAX_OVERRIDES:
        raise ValueError(f"At most {MAX_OVERRIDES:,} overrides, not {len(overrides):,}.")
    checked: dict[str, tuple[str, float]] = {}
    for given, valence in overrides.items():
        word = _override_word(given)
        value = _override_valence(given, valence)
        if word in checked and checked[word][1] != value:
            first = checked[word][0]
            raise ValueError(
                f"'{_shown(first)}' and '{_shown(given)}' are the same rule with two valences."
            )
        checked[word] = (given, value)
    return tuple(sorted((word, value) for word, (_given, value) in checked.items()))


def _override_word(given: object) -> str:
    """given as the analyzer matches it. :raise ValueError: if it cannot be one."""
    if not isinstance(given, str):
        raise ValueError(f"An override's word must be text, not {type(given).__name__}.")
    stripped = given.strip()
    if not 1 <= len(stripped) <= MAX_OVERRIDE_CHARS:
        raise ValueError(
            f"An override's word or phrase must have 1 to {MAX_OVERRIDE_CHARS} characters"
            f" ('{_shown(given)}' has {len(stripped)})."
        )
    # Control and invisible characters (tabs, zero-width joiners, direction marks) make
    # a rule that looks right and matches nothing.
    if any(unicodedata.category(char).startswith("C") for char in given):
        raise ValueError(
            f"'{_shown(given)}' holds a control or invisible character; use letters, "
            "digits, punctuation and single spaces."
        )
    # As VADER reads text: a rule for an emoji is a rule for its name.
    word = analyzer().read_phrase(stripped)
    role = vader.modifier_role(word)
    if role is not None:
        raise ValueError(
            f"'{_shown(given)}' is {role}, not a sentiment word, so it cannot have a valence."
        )
    return word


def _override_valence(given: str, valence: object) -> float:
    """valence as a float. :raise ValueError: unless a finite number in [-4, 4]."""
    if isinstance(valence, bool) or not isinstance(valence, numbers.Real):
        raise ValueError(f"The valence of '{_shown(given)}' must be a number from -4 to 4.")
    value = float(valence)
    if not (math.isfinite(value) and MIN_VALENCE <= value <= MAX_VALENCE):
        raise ValueError(
            f"The valence of '{_shown(given)}' must be a number from -4 to 4, not {valence}."
        )
    return value


def _shown(given: str) -> str:
    """given, short enough for an error message, invisible characters spelled out."""
    short = given if len(given) <= MAX_OVERRIDE_CHARS else given[:MAX_OVERRIDE_CHARS] + "…"
    return "".join(char if char.isprintable() else f"\\u{ord(char):04x}" for char in short)


class Contribution(NamedTuple):
    """One word's part in a score: the word as written (a phrase override: its words),
    its lexicon valence (the override's, for one), its valence after every rule (what
    the sum adds) and each rule that changed it, in order."""

    word: str
    lexicon_valence: float
    valence: float
    steps: tuple[Step, ...]
    override: bool

    @property
    def rules(self) -> tuple[str, ...]:
        """The rules in plain words."""
        return tuple(step.rule for step in self.steps)


class Punctuation(NamedTuple):
    """The "!" and "?" in the text as read, VADER's emphasis from them (each "!" 0.292,
    at most 4 counted; 2 or 3 "?" 0.18 each, more 0.96 in all) and what it did to the
    sum: added to a positive one, taken from a negative one, nothing to zero."""

    exclamations: int
    questions: int
    emphasis: float
    applied: float


@dataclass(frozen=True)
class Explanation:
    """Why a text got its score. For a text that was not scored (no text, not English)
    only score and note are set. words_sum is the contributions' valences added in
    VADER's order; raw_sum is that with the punctuation applied, what normalisation
    turns into the compound (score.compound, rounded to 4 places)."""

    score: Score
    note: str
    text: str | None = None
    contributions: tuple[Contribution, ...] = ()
    words_sum: float | None = None
    punctuation: Punctuation | None = None
    raw_sum: float | None = None

    @property
    def compound(self) -> float | None:
        """raw_sum normalised as VADER does (alpha ALPHA), rounded to 4 places: the
        score's compound."""
        if self.raw_sum is None:
            return None
        return round(normalize(self.raw_sum, ALPHA), 4)

    @property
    def normalisation(self) -> str | None:
        """How the sum becomes the compound, in figures."""
        if self.raw_sum is None:
            return None
        raw = self.raw_sum
        return (
            f"compound = {raw:.3f} / √({raw:.3f}² + {ALPHA}) = {self.compound}"
            " (kept within -1..1, rounded to 4 places)"
        )

    def lines(self) -> list[str]:
        """The explanation as plain lines a support agent reads top to bottom."""
        lines = [self.note]
        for c in self.contributions:
            rules = "; ".join(c.rules) if c.steps else "no rule changed it"
            lines.append(f"'{c.word}': {c.lexicon_valence:+.3f} -> {c.valence:+.3f} ({rules})")
        if self.words_sum is not None:
            lines.append(f"Words add up to {self.words_sum:+.3f}.")
        p = self.punctuation
        if p is not None and p.emphasis:
            marks = f"{p.exclamations} '!' and {p.questions} '?'"
            if p.applied:
                lines.append(f"Punctuation ({marks}) adds emphasis: {p.applied:+.3f}.")
            else:
                lines.append(f"Punctuation ({marks}) changes nothing: the words add up to 0.")
        if self.normalisation is not None:
            lines.append(self.normalisation)
        return lines


def explain(
    text: str, language: str | None = None, overrides: Mapping[str, float] | None = None
) -> Explanation:
    """Why score([text], [language], overrides) gives what it gives (see Explanation).
    :raise ValueError: as score, for invalid overrides."""
    vader = analyzer_for(overrides)
    [result] = score([text], [language], overrides)
    if result.status == NO_TEXT:
        return Explanation(result, "No text (only media, say): nothing to score, not neutral.")
    if result.status == NOT_ENGLISH:
        tag = f" (tagged '{language}')" if language else ""
        return Explanation(
            result, f"Not scored: the text is not English{tag}, and VADER reads only English."
        )
    head, cut = bound(text)
    trace = vader.trace(head)
    contributions = tuple(
        Contribution(
            word.word,
            word.lexicon_valence,
            word.valence,
            word.steps,
            word.override,
        )
        for word in trace.traced
        if word.valence or word.lexicon_valence or word.steps
    )
    # The same additions as score_valence: a zero adds nothing to a float sum, so the
    # words that moved the score add up to what every word does.
    words_sum = float(sum(c.valence for c in contributions))
    raw_sum = words_sum
    if words_sum > 0:
        raw_sum += trace.punctuation
    elif words_sum < 0:
        raw_sum -= trace.punctuation
    note = "Scored by VADER."
    if cut:
        note = (
            f"Only the first {len(head):,} of {len(text):,} characters were scored"
            " (the rest rarely changes the tone); this explains those."
        )
    if trace.text != head.strip():
        note += " Emoji are read as their names (see the text as read)."
    if not contributions:
        note += " No word in it carries sentiment, so it is neutral."
    applied = trace.punctuation if words_sum > 0 else -trace.punctuation if words_sum < 0 else 0.0
    punctuation = Punctuation(
        trace.text.count("!"), trace.text.count("?"), trace.punctuation, applied
    )
    return Explanation(result, note, trace.text, contributions, words_sum, punctuation, raw_sum)
