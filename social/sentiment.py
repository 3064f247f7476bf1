"""Sentiment of mention text: `score(texts, languages)`, the one call that scores.

What belongs here: the public scorer and what its answers mean (`Score`, the labels,
the statuses: scored, truncated, not English, no text) and the bound on the work one
text can cost; explaining a score and overriding lexicon words, for callers, belong
here too. The workers decide when to score; this module only scores. The numbers are
social.vader's (exactly vaderSentiment 3.3.2's, in linear time); which texts are not
English is social.language's.
"""

from __future__ import annotations

from typing import NamedTuple

from social.language import is_english

# Re-exported: callers that warm the scorer, or compare its numbers with
# vaderSentiment's, reach the analyzer through this module.
from social.vader import analyzer

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


def score(texts: list[str], languages: list[str | None] | None = None) -> list[Score]:
    """Score a batch of texts; languages (the mentions' tags, None if unknown) align with
    texts. :raise ValueError: if the two lists differ in length."""
    if languages is None:
        languages = [None] * len(texts)
    if len(languages) != len(texts):
        raise ValueError("texts and languages must be the same length")
    vader = analyzer()
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
