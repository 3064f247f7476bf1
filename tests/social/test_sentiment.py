"""Sentiment: exactly vaderSentiment's numbers, bounded work, and no score for what VADER
cannot read."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    NEGATE,
    SENTIMENT_LADEN_IDIOMS,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
)

from social import language, sentiment, vader

DATA = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def original() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


@pytest.fixture(scope="module")
def ground_truth() -> list[tuple[str, float, str]]:
    """(id, mean human rating, text) for the 4,200 tweets of the VADER paper."""
    raw = (DATA / "vader_tweets_ground_truth.txt").read_bytes().decode("utf-8")
    rows = []
    for line in raw.split("\r\n"):
        if line:
            tweet_id, mean, text = line.split("\t", 2)
            rows.append((tweet_id, float(mean), text))
    assert len(rows) == 4200
    return rows


def test_identical_to_vader_on_the_ground_truth(original, ground_truth) -> None:
    texts = [text for _id, _mean, text in ground_truth]
    ours = vader.analyzer()
    for text in texts:
        assert ours.polarity_scores(text) == original.polarity_scores(text), text

    scores = sentiment.score(texts, ["en"] * len(texts))
    assert {s.status for s in scores} == {"scored"}
    compounds = [s.compound for s in scores]
    means = [mean for _id, mean, _text in ground_truth]
    assert round(statistics.correlation(compounds, means), 4) == 0.8722


def _generated_texts(count: int, seed: int) -> list[str]:
    """Texts built from the pieces VADER's rules react to, in random order and case."""
    rng = random.Random(seed)
    analyzer = vader.analyzer()
    lexicon = sorted(analyzer.lexicon)
    emoji = sorted(analyzer.emojis)
    phrases = [
        *SPECIAL_CASES,
        *SENTIMENT_LADEN_IDIOMS,
        "kind of",
        "sort of",
        "at least",
        "very least",
        "least",
        "no",
        "no or",
        "not nor",
        "never so",
        "never this",
        "without doubt",
        "without a doubt",
    ]
    plain = ["the", "service", "was", "it", "and", "this", "so", "this", "of", "or", "nor"]
    pieces = [
        (lexicon, 6),
        (sorted(NEGATE), 2),
        (sorted(BOOSTER_DICT), 2),
        (phrases, 2),
        (["but", "But", "BUT"], 1),
        (emoji, 2),
        ([":)", ":(", ":D", ":-/", "<3", "!!!", "?", "??", "!?", "...", "-"], 1),
        (plain, 3),
    ]
    choices = [group for group, weight in pieces for _ in range(weight)]
    texts = []
    for _ in range(count):
        words = []
        # Few distinct words repeated many times: VADER's "but" rule depends on repeats.
        for _ in range(rng.randint(0, 60)):
            word = rng.choice(rng.choice(choices))
            roll = rng.random()
            if roll < 0.15:
                word = word.upper()
            elif roll < 0.2:
                word = word.capitalize()
            elif roll < 0.3:
                word += rng.choice(["!", "?", ",", ".", "!!", "'s"])
            words.append(word)
            if rng.random() < 0.1:
                words.append(words[-1])
        glue = rng.choice([" ", " ", "  ", "\n", ""])
        text = glue.join(words) if glue else " ".join(words).replace(" ", "", 3)
        texts.append(rng.choice(["", " ", "😀"]) + text + rng.choice(["", " ", "!", " 😡"]))
    return texts


def test_identical_to_vader_on_generated_texts(original) -> None:
    ours = vader.analyzer()
    texts = _generated_texts(400, seed=20140601)
    texts += [
        "",
        "   ",
        "good good good but bad bad good good bad but good",
        "GOOD good BAD bad but Good good not good",
        "😀😀😀",
        "a😀b 😀 😀c😡 d",
        "©®",
        "Not bad at all",
        "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
        "Today only kinda sux! But I'll get by, lol",
        "It was one of the worst movies I've seen, despite good reviews. Unbelievably bad "
        "acting!! Poor direction. VERY poor production. The movie was bad. Very bad movie.",
    ]
    for text in texts:
        assert ours.polarity_scores(text) == original.polarity_scores(text), text


def test_labels_follow_vader_thresholds() -> None:
    good, bad, flat = sentiment.score(
        ["I love this, great service!", "Terrible. I hate it.", "The parcel arrived on Tuesday."]
    )
    assert (good.label, good.status) == ("positive", "scored")
    assert bad.label == "negative"
    assert (flat.label, flat.compound) == ("neutral", 0.0)
    assert sentiment.label(0.05) == "positive"
    assert sentiment.label(-0.05) == "negative"
    assert sentiment.label(0.0499) == "neutral"


def test_long_and_hostile_texts_are_truncated(original) -> None:
    long_text = "the service was good but the wait was awful " * 5000
    emoji = "😀" * 20_000
    spaced = "😡 " * 20_000
    scores = sentiment.score([long_text, emoji, spaced])
    assert [s.status for s in scores] == ["truncated"] * 3
    assert all(s.label is not None for s in scores)

    head, cut = sentiment.bound(long_text)
    assert cut
    assert len(head) <= sentiment.MAX_CHARS
    assert long_text.startswith(head)
    assert long_text[len(head)].isspace()  # cut between words
    expected = original.polarity_scores(head)
    assert scores[0].compound == expected["compound"]
    assert scores[0].neg == expected["neg"]


def test_bound_cuts_a_giant_token_hard() -> None:
    head, cut = sentiment.bound("x" * 9000)
    assert (len(head), cut) == (sentiment.MAX_CHARS, True)
    text = "word " * 1000
    assert sentiment.bound(text) == (text, False)


@pytest.mark.parametrize(
    ("text", "language", "status"),
    [
        ("I love it", "en", "scored"),
        ("I love it", "en-GB", "scored"),
        ("I love it", "EN_us", "scored"),
        ("Me encanta", "es", "not_english"),
        ("I love it", "und", "scored"),
        ("Das Produkt ist nicht gut und der Service ist schlecht", None, "not_english"),
        ("Das Produkt ist nicht gut und der Service ist schlecht", "qme", "not_english"),
        ("Je suis surpris de voir comment VADER est incroyablement utile !", None, "not_english"),
        ("Eu não gosto disso, o serviço é muito ruim e a entrega demorou", None, "not_english"),
        ("Я удивлен увидеть, как раз как удивительно полезно!", None, "not_english"),
        ("私はちょうどどのように驚くほど役に立つベイダーを見て驚いています!", None, "not_english"),
        ("أنا مندهش لرؤية فقط كيف مثير للدهشة فيدر فائدة!", None, "not_english"),
        ("lol this slaps 🔥🔥", None, "scored"),
        ("ngl kinda mid tbh", None, "scored"),
        ("fr fr no cap 💀", None, "scored"),
        ("😡😡😡", None, "scored"),
        (":)", None, "scored"),
        ("smh @acme https://t.co/x", None, "scored"),
        ("Best. Day. Ever.", None, "scored"),
        ("Café was great! Merci @lebistro", None, "scored"),
        ("Breaking News: PIAA basketball playoffs results", None, "scored"),
    ],
)
def test_language(text: str, language: str | None, status: str) -> None:
    [result] = sentiment.score([text], [language])
    assert result.status == status
    if status == "not_english":
        # Never passed off as neutral: no numbers, no label.
        assert result == sentiment.Score(None, None, None, None, None, "not_english")


def test_heuristic_keeps_english_tweets(ground_truth) -> None:
    flagged = {tweet_id for tweet_id, _mean, text in ground_truth if not language.is_english(text)}
    # Dutch, and two Spanish tweets; every English one of the 4,200 is scored.
    assert flagged == {"1954", "3400", "3517"}


def test_batch_shape() -> None:
    assert sentiment.score([]) == []
    with pytest.raises(ValueError, match="same length"):
        sentiment.score(["a", "b"], ["en"])
    assert vader.analyzer() is vader.analyzer() is sentiment.analyzer()


def test_no_text_is_unscored_not_neutral():
    assert sentiment.score(["", " \n", "ok"]) == [
        sentiment.Score(None, None, None, None, None, "no_text"),
        sentiment.Score(None, None, None, None, None, "no_text"),
        sentiment.score(["ok"])[0],
    ]
