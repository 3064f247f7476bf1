"""Explaining a score, and lexicon overrides: what support staff and admins see.

An explanation must add up to exactly the number VADER normalises, word by word, and
its rules must account for every word's final valence; overrides must change only what
they name, and leave every number vaderSentiment's when there are none."""

from __future__ import annotations

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from social import sentiment, vader
from tests.social.test_sentiment import _generated_texts, ground_truth, original  # noqa: F401

SPECIFIC = [
    "The service was VERY good!!",
    "not bad at all",
    "I do not like it, but the staff were great",
    "It was kind of good",
    "no good",
    "no or nor good",
    "the food was the bomb lol",
    "Never so happy, never this sad",
    "at least good, very least good, least good",
    "without a doubt the best",
    "good good good but bad bad good good bad but good",
    "GOOD good BAD bad but Good good not good",
    "HATE IT HATE IT",
    "Why?? Why is it broken???? Awful!!!!!",
    "😀 😡 :) :( <3",
]


def _check(text: str, language: str | None = "en", overrides=None) -> sentiment.Explanation:
    """explain(text) checked against score and the analyzer's own valences."""
    explanation = sentiment.explain(text, language, overrides)
    [expected] = sentiment.score([text], [language], overrides)
    assert explanation.score == expected
    if expected.compound is None:
        assert explanation.contributions == ()
        assert explanation.raw_sum is None
        return explanation
    head, _cut = sentiment.bound(text)
    analyzer = sentiment.analyzer_for(overrides)
    _read, _words, valences = analyzer.valences(head)
    assert analyzer.trace(head).sentiments == valences
    # Word by word, in VADER's order: the very float VADER sums, and then normalises.
    words_sum = float(sum(valences))
    assert explanation.words_sum == words_sum
    emphasis = analyzer._punctuation_emphasis(_read)
    raw_sum = words_sum + emphasis if words_sum > 0 else words_sum - emphasis
    assert explanation.raw_sum == (raw_sum if words_sum else words_sum)
    assert explanation.compound == expected.compound
    for c in explanation.contributions:
        # The rules account for the whole way from lexicon valence to final valence.
        if c.steps:
            assert c.steps[-1].valence == c.valence, (text, c)
        else:
            assert c.valence == c.lexicon_valence, (text, c)
    return explanation


def test_explanations_add_up_on_the_ground_truth(ground_truth, original) -> None:  # noqa: F811
    for _id, _mean, text in ground_truth:
        explanation = _check(text)
        assert explanation.compound == original.polarity_scores(text)["compound"], text


def test_explanations_add_up_on_generated_texts(original) -> None:  # noqa: F811
    texts = _generated_texts(400, seed=20261202) + SPECIFIC
    for text in texts:
        explanation = _check(text)
        if explanation.compound is not None:
            assert explanation.compound == original.polarity_scores(text)["compound"], text
    # Overrides of words, emoticons, phrases (one of them VADER's special case) and zeros.
    rules = {"good": 0.0, "the service": 2.0, "bad ass": -1.0, "war": 1.0, ":)": -1, "so this": 3}
    for text in texts:
        _check(text, "en", rules)


def _rules(explanation: sentiment.Explanation) -> dict[str, tuple[str, ...]]:
    return {c.word: c.rules for c in explanation.contributions}


def test_rules_in_plain_words() -> None:
    assert _rules(_check("The service was VERY good")) == {
        "good": ("booster 'VERY' before it: +1.026",)
    }
    assert _rules(_check("The service was very good")) == {
        "good": ("booster 'very' before it: +0.293",)
    }
    assert _rules(_check("It is not good")) == {"good": ("negated by 'not' (x -0.74)",)}
    assert _rules(_check("It is not really good")) == {
        "good": ("booster 'really' before it: +0.293", "negated by 'not', 2 words before (x -0.74)")
    }
    assert _rules(_check("It was GREAT, thanks")) == {
        "GREAT": ("ALL CAPS: +0.733",),
        "thanks": (),
    }
    assert _rules(_check("The food was bad but the staff were lovely")) == {
        "bad": ("before 'but': x0.5",),
        "lovely": ("after 'but': x1.5",),
    }
    assert _rules(_check("I was kind of happy")) == {
        "kind": ("'kind of' means 'somewhat' here: no valence of its own",),
        "happy": ("softener 'kind of' before it: -0.293",),
    }
    assert _rules(_check("and this pizza is the bomb")) == {
        "bomb": ("special case 'the bomb': counts 3",)
    }
    assert _rules(_check("no good")) == {
        "no": ("'no' before the sentiment word 'good': counts 0",),
        "good": ("negated by 'no' (x -0.74)",),
    }
    assert _rules(_check("the least helpful")) == {
        "helpful": ("negated by 'least' before it (x -0.74)",)
    }
    assert _rules(_check("at least helpful")) == {"helpful": ()}


def test_punctuation_and_normalisation() -> None:
    shouted = _check("Awful service!!!")
    assert shouted.punctuation == sentiment.Punctuation(3, 0, 3 * 0.292, -3 * 0.292)
    assert shouted.raw_sum == shouted.words_sum - 3 * 0.292
    assert shouted.normalisation.startswith("compound = -2.876 / √(-2.876² + 15) = -0.5962")

    calm = _check("The parcel came on Tuesday!!")
    assert calm.contributions == ()
    assert (calm.score.compound, calm.raw_sum, calm.punctuation.applied) == (0.0, 0.0, 0.0)
    assert "No word in it carries sentiment" in calm.note
    assert any("changes nothing" in line for line in calm.lines())

    asked = _check("Is it good??")
    assert asked.punctuation.emphasis == 2 * 0.18
    lines = asked.lines()
    assert lines[1] == "'good': +1.900 -> +1.900 (no rule changed it)"
    assert lines[-1].startswith("compound = 2.260 / ")


def test_texts_that_are_not_scored_say_so() -> None:
    empty = sentiment.explain("  ")
    assert empty.score.status == "no_text"
    assert "nothing to score" in empty.note
    assert empty.lines() == [empty.note]

    spanish = sentiment.explain("Me encanta el servicio", "es")
    assert spanish.score.status == "not_english"
    assert "not English (tagged 'es')" in spanish.note

    long_text = "the service was good but the wait was awful " * 200
    truncated = _check(long_text)
    assert truncated.score.status == "truncated"
    assert f"first {len(sentiment.bound(long_text)[0]):,} of {len(long_text):,}" in truncated.note
    # Every word of the bounded text is explained, none beyond it.
    head_words = sentiment.bound(long_text)[0].split()
    assert len(truncated.contributions) == head_words.count("good") + head_words.count("awful")


def test_emoji_are_explained_by_name() -> None:
    explanation = _check("Delivery 😢")
    assert explanation.text == "Delivery crying face"
    assert "Emoji are read as their names" in explanation.note
    assert [c.word for c in explanation.contributions] == ["crying"]

    # VADER reads 💔 as "broken heart", -2.1 + 3.2: a rule for the emoji is a rule for
    # its name, read as one phrase.
    assert sentiment.score(["my order 💔"])[0].label == "positive"
    rules = {"💔": -3.0}
    assert sentiment.checked_overrides(rules) == (("broken heart", -3.0),)
    assert sentiment.checked_overrides({"Love💔!": 1}) == (("love broken heart", 1.0),)
    [phrase] = _check("my order 💔", None, rules).contributions
    assert (phrase.word, phrase.valence, phrase.override) == ("broken heart", -3.0, True)


def test_no_overrides_are_vader_exactly(ground_truth, original) -> None:  # noqa: F811
    texts = [text for _id, _mean, text in ground_truth]
    languages = ["en"] * len(texts)
    plain = sentiment.score(texts, languages)
    assert sentiment.score(texts, languages, None) == plain
    assert sentiment.score(texts, languages, {}) == plain
    assert sentiment.analyzer_for({}) is sentiment.analyzer_for(None) is vader.analyzer()
    # An override that matches nothing changes nothing either.
    unused = sentiment.analyzer_for({"zzzq": 2.0, "qq zzzq": 1.0})
    assert unused is not vader.analyzer()
    for text in texts + _generated_texts(200, seed=7):
        assert unused.polarity_scores(text) == original.polarity_scores(text), text


def test_a_word_override_replaces_or_adds_the_entry() -> None:
    text = "This new phone slaps, the battery is sick"
    [before] = sentiment.score([text])
    rules = {"slaps": 2.5, "sick": 2.0}
    [after] = sentiment.score([text], None, rules)
    assert before.label == "negative"  # "sick" is negative in VADER's lexicon
    assert after.label == "positive"

    explanation = _check(text, None, rules)
    by_word = {c.word: c for c in explanation.contributions}
    assert by_word["slaps"].override and by_word["sick"].override
    assert by_word["sick"].rules == ("your rule: 'sick' = 2.0",)
    assert by_word["sick"].valence == 2.0
    # The usual rules still apply to an overridden word.
    assert _check("not sick", None, rules).contributions[0].valence == 2.0 * -0.74


def test_a_phrase_override_is_one_word() -> None:
    rules = {"war zone": -1.0}
    text = "War zone at the checkout today"
    plain = _check(text)
    assert [c.word for c in plain.contributions] == ["War"]  # VADER: "war" -2.9

    explanation = _check(text, None, rules)
    [phrase] = explanation.contributions
    assert (phrase.word, phrase.valence, phrase.override) == ("War zone", -1.0, True)
    assert phrase.rules == ("your rule: 'war zone' = -1.0",)

    # Negated, boosted, in capitals and weighed around "but" as one word.
    negated = _check("it is not a war zone", None, rules).contributions[0]
    assert negated.rules[-1] == "negated by 'not', 2 words before (x -0.74)"
    boosted = _check("a very war zone", None, rules).contributions[0]
    assert boosted.rules[-1] == "booster 'very' before it: -0.293"
    shouted = _check("the store was a WAR ZONE today", None, rules).contributions[0]
    assert shouted.rules[-1] == "ALL CAPS: -0.733"
    contrasted = _check("fine prices but a war zone", None, rules).contributions
    assert contrasted[-1].rules[-1] == "after 'but': x1.5"


def test_a_phrase_matches_with_punctuation_on_its_words() -> None:
    # VADER keeps the full stop on "me." (a word of two letters), which hid the phrase.
    rules = {"fight me": 0.0}
    text = "Best grinder under 400. Fight me."
    explanation = _check(text, None, rules)
    assert [(c.word, c.valence) for c in explanation.contributions] == [
        ("Best", 3.2),
        ("Fight me.", 0),
    ]
    [scored] = sentiment.score([text], None, rules)
    assert scored.compound == explanation.compound == sentiment.score(["Best grinder"])[0].compound
    assert _check('"War zone!" they said', None, {"war zone": -1.0}).contributions[0].override


def test_zero_means_neutral_and_longest_phrase_wins() -> None:
    rules = {"war zone": 0.0, "killer": 0.0, "killer deal": 3.0}
    text = "WAR ZONE in here, a KILLER DEAL and a very killer sale"
    explanation = _check(text, None, rules)
    assert [(c.word, c.valence) for c in explanation.contributions] == [
        ("WAR ZONE", 0),
        ("KILLER DEAL", 3.0 + 0.733),  # capitals still add to a non-zero valence
        ("killer", 0),
    ]
    assert explanation.contributions[0].rules == (
        "your rule: 'war zone' = 0.0",
        "neutral: scores 0 whatever surrounds it",
    )
    [neutral] = sentiment.score(["WAR ZONE"], None, {"war zone": 0})
    assert (neutral.compound, neutral.label) == (0.0, "neutral")


def test_overridden_analyzers_are_built_once_per_rule_set() -> None:
    first = sentiment.analyzer_for({"slaps": 2.5, "war zone": -1})
    # Same rules, other order, other spelling of the same words: the same analyzer.
    assert sentiment.analyzer_for({"War  Zone": -1.0, "slaps": 2.5}) is first
    assert sentiment.analyzer_for({"slaps": 2.0}) is not first
    texts = ["this slaps"] * 1000
    sentiment.score(texts, None, {"slaps": 1.5})
    info = sentiment._overridden.cache_info()
    assert info.maxsize == sentiment._CACHED_ANALYZERS
    before = info.misses
    sentiment.score(texts, None, {"slaps": 1.5})
    assert sentiment._overridden.cache_info().misses == before
    # Overriding never touches the shared analyzer.
    assert vader.analyzer().lexicon["war"] == -2.9
    assert "war zone" not in vader.analyzer().lexicon


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["slaps"], "must map words or phrases to valences"),
        ({"": 1.0}, "1 to 60 characters"),
        ({"   ": 1.0}, "1 to 60 characters"),
        ({"x" * 61: 1.0}, r"1 to 60 characters \('x{60}…' has 61\)"),
        ({"war\tzone": 1.0}, r"'war\\u0009zone' holds a control or invisible character"),
        ({"good\u200b": 1.0}, r"'good\\u200b' holds a control or invisible character"),
        ({"bad\x00": 1.0}, "control or invisible character"),
        ({7: 1.0}, "must be text, not int"),
        ({"slaps": float("nan")}, "number from -4 to 4, not nan"),
        ({"slaps": float("inf")}, "number from -4 to 4, not inf"),
        ({"slaps": 4.5}, "number from -4 to 4, not 4.5"),
        ({"slaps": -5}, "number from -4 to 4, not -5"),
        ({"slaps": "2"}, "must be a number from -4 to 4"),
        ({"slaps": None}, "must be a number from -4 to 4"),
        ({"slaps": True}, "must be a number from -4 to 4"),
        ({"not": -1.0}, "'not' is a negation"),
        ({"Don't": -1.0}, "'Don't' is a negation"),
        ({"very": 1.0}, "'very' is an intensifier: it strengthens"),
        ({"kind of": 1.0}, "'kind of' is an intensifier: it softens"),
        ({"Great": 1.0, "great!": 2.0}, "'Great' and 'great!' are the same rule"),
    ],
)
def test_bad_overrides_are_refused_clearly(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        sentiment.score(["fine"], None, overrides)
    with pytest.raises(ValueError, match=message):
        sentiment.explain("fine", None, overrides)


def test_good_overrides_at_the_limits() -> None:
    rules = {"x" * 60: 4, "meh": -4, "don't mind": 1.5, "great": 3.1, "Great ": 3.1}
    assert sentiment.checked_overrides(rules) == (
        ("don't mind", 1.5),
        ("great", 3.1),
        ("meh", -4.0),
        ("x" * 60, 4.0),
    )
    [result] = sentiment.score(["I don't mind it"], None, rules)
    assert result.label == "positive"
    assert SentimentIntensityAnalyzer().polarity_scores("I don't mind it")["compound"] < 0.05
