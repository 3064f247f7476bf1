"""The demo source: bundled samples replayed in batches, matchable to the demo
contacts, idempotent per cursor, new ids only on a new cycle, each linking to the app's
page for it; and labelled, so that VADER is right on them about as often as on real
tweets, with its misses marked."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from social import demo, sentiment
from social.matching import normalize_handle
from social.mention import NETWORKS, SourceError, from_json

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
TWEETS = Path(__file__).resolve().parents[1] / "fixtures" / "vader_tweets_ground_truth.txt"
LABELS = ("positive", "negative", "neutral")
# People rated each tweet from -4 to 4: a mean less than half a step from 0 is neutral,
# one at least half a step to either side leans that way.
NEUTRAL_BAND = 0.5
# The least share of English samples on which VADER must agree with the label; a sample
# rewritten so that VADER reads it otherwise needs a miss saying why, or better words.
AGREEMENT_FLOOR = 0.82
# How far the demo's agreement may stray from VADER's on the rated tweets.
AGREEMENT_MARGIN = 0.03


def seed_handle(name: str, network: str) -> str:
    """The handle rule of webapp/services/demo.py, restated."""
    first, last = name.split(" ", 1)
    local = unicodedata.normalize("NFKD", f"{first}.{last}".lower())
    local = local.encode("ascii", "ignore").decode().replace("'", "")
    plain = local.replace(".", "_").replace("-", "")[:15]
    return {
        "x": plain,
        "mastodon": f"{plain}@mastodon.social",
        "bluesky": f"{local.replace('_', '')}.bsky.social",
    }[network]


def test_demo_authors_follow_the_seed_handle_rules():
    assert len(demo.DEMO_AUTHORS) >= 15
    for name, network, handle in demo.DEMO_AUTHORS:
        assert handle == seed_handle(name, network)
        assert normalize_handle(network, handle) == handle
    assert len({(n, h) for _, n, h in demo.DEMO_AUTHORS}) == len(demo.DEMO_AUTHORS)


def test_samples_are_valid_varied_and_half_known():
    samples = demo.samples()
    assert 100 <= len(samples) <= 150
    known = {(network, handle) for _, network, handle in demo.DEMO_AUTHORS}
    matched = [s for s in samples if (s["network"], s["author_handle"]) in known]
    assert 0.4 < len(matched) / len(samples) < 0.6
    assert {h for _, _, h in demo.DEMO_AUTHORS} == {s["author_handle"] for s in matched}
    for sample in samples:
        assert sample["network"] in ("x", "mastodon", "bluesky")
        assert (
            normalize_handle(sample["network"], sample["author_handle"]) == sample["author_handle"]
        )
        assert sample["text"].strip()
    languages = Counter(s["language"] for s in samples)
    assert {"en", "es", "de", "fr"} <= set(languages)
    assert max(len(s["text"]) for s in samples) > 800
    hostile = [s for s in samples if "<" in s["text"] + s["author_name"]]
    assert 2 <= len(hostile) <= 4
    texts = " ".join(s["text"] for s in samples)
    for payload in ("<script>", "onerror=", "javascript:", "hx-get="):
        assert payload in texts


def test_a_poll_returns_the_next_batch_dated_just_before_now():
    result = demo.fetch({}, None, now=NOW)
    assert result.cursor == "3"
    assert [m.external_id for m in result.mentions] == ["demo-0-0", "demo-1-0", "demo-2-0"]
    assert [m.created_at for m in result.mentions] == [
        NOW - timedelta(seconds=14),
        NOW - timedelta(seconds=7),
        NOW,
    ]
    first = demo.samples()[0]
    mention = result.mentions[0]
    assert (mention.network, mention.author_handle) == (first["network"], first["author_handle"])
    assert mention.text == first["text"]
    assert mention.extra == {"demo": True}


def test_batches_follow_on_and_the_batch_size_is_configurable():
    cursor = demo.fetch({"batch": 5}, None, now=NOW).cursor
    result = demo.fetch({"batch": 2}, cursor, now=NOW)
    assert [m.external_id for m in result.mentions] == ["demo-5-0", "demo-6-0"]
    assert result.cursor == "7"


def test_replaying_a_cursor_gives_the_same_ids():
    once = demo.fetch({}, "9", now=NOW)
    again = demo.fetch({}, "9", now=NOW + timedelta(minutes=5))
    assert [m.external_id for m in once.mentions] == [m.external_id for m in again.mentions]


def test_wrap_around_starts_a_new_cycle_with_new_ids():
    size = len(demo.samples())
    result = demo.fetch({}, str(size - 1), now=NOW)
    assert [m.external_id for m in result.mentions] == [
        f"demo-{size - 1}-0",
        "demo-0-1",
        "demo-1-1",
    ]
    assert result.mentions[1].text == demo.samples()[0]["text"]


def test_every_sample_is_valid_normalized_json():
    size = len(demo.samples())
    result = demo.fetch({"batch": demo.MAX_BATCH}, None, now=NOW)
    cursor = result.cursor
    mentions = list(result.mentions)
    while len(mentions) < size:
        result = demo.fetch({"batch": demo.MAX_BATCH}, cursor, now=NOW)
        mentions += result.mentions
        cursor = result.cursor
    for mention in mentions[:size]:
        data = mention.to_json()
        assert data["source"] in NETWORKS
        assert data["external_id"].startswith("demo-")
        assert from_json(data) == mention
        # What describes the sample (its id, label and any miss) is not part of the post.
        assert not {"id", "label", "miss"} & set(data)
        assert mention.extra == {"demo": True}


@pytest.mark.parametrize(
    ("config", "cursor", "message"),
    [
        ({"batch": 0}, None, "batch"),
        ({"batch": "3"}, None, "batch"),
        ({"batch": 51}, None, "batch"),
        ({}, "-1", "cursor"),
        ({}, "abc", "cursor"),
    ],
)
def test_bad_config_or_cursor(config, cursor, message):
    with pytest.raises(SourceError, match=message):
        demo.fetch(config, cursor, now=NOW)


def test_now_defaults_to_the_clock():
    [*_, newest] = demo.fetch({}, None).mentions
    assert abs(newest.created_at - datetime.now(UTC)) < timedelta(seconds=5)


def _every_mention() -> list:
    """One mention per sample, as the first cycle of polls yields them."""
    size = len(demo.samples())
    result = demo.fetch({"batch": demo.MAX_BATCH}, None, now=NOW)
    mentions = list(result.mentions)
    while len(mentions) < size:
        result = demo.fetch({"batch": demo.MAX_BATCH}, result.cursor, now=NOW)
        mentions += result.mentions
    return mentions[:size]


def _english_verdicts() -> list[tuple[dict, str]]:
    """(sample, VADER's label) for every sample the product scores."""
    samples = demo.samples()
    scores = sentiment.score([s["text"] for s in samples], [s["language"] for s in samples])
    return [(s, score.label) for s, score in zip(samples, scores, strict=True) if score.label]


def _tweet_agreement() -> float:
    """How often VADER's label is the people's on the rated tweets of the VADER paper."""
    rows = [line.split("\t", 2) for line in TWEETS.read_bytes().decode().split("\r\n") if line]
    assert len(rows) == 4200
    scores = sentiment.score([text for _, _, text in rows], ["en"] * len(rows))
    agree = 0
    for (_, mean, _), score in zip(rows, scores, strict=True):
        rating = float(mean)
        human = (
            "positive"
            if rating >= NEUTRAL_BAND
            else "negative"
            if rating <= -NEUTRAL_BAND
            else "neutral"
        )
        agree += human == score.label
    return agree / len(rows)


def test_samples_have_ids_and_labels():
    samples = demo.samples()
    ids = [s["id"] for s in samples]
    assert len(set(ids)) == len(ids)
    for sample in samples:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", sample["id"]), sample["id"]
        assert demo.find_sample(sample["id"]) is sample
        assert sample["label"] in LABELS, sample["id"]
        if "miss" in sample:
            assert sample["language"] == "en" and sample["miss"].strip(), sample["id"]
    assert demo.find_sample("no-such-sample") is None
    verdicts = _english_verdicts()
    # Praise, complaints and questions, in English and not, from contacts and strangers.
    assert set(Counter(s["label"] for s, _ in verdicts)) == set(LABELS)
    foreign = [s for s in samples if s["language"] != "en"]
    assert set(Counter(s["label"] for s in foreign)) == set(LABELS)
    known = {(network, handle) for _, network, handle in demo.DEMO_AUTHORS}
    for label in LABELS:
        assert any(
            (s["network"], s["author_handle"]) in known for s, _ in verdicts if s["label"] == label
        )


def test_non_english_samples_are_left_unscored_not_neutral():
    samples = [s for s in demo.samples() if s["language"] != "en"]
    assert len(samples) >= 10
    scores = sentiment.score([s["text"] for s in samples], [s["language"] for s in samples])
    assert {score.status for score in scores} == {sentiment.NOT_ENGLISH}
    assert {score.label for score in scores} == {None}


def test_vader_agrees_with_the_demo_about_as_often_as_with_people():
    verdicts = _english_verdicts()
    assert len(verdicts) >= 80
    demo_agreement = sum(s["label"] == label for s, label in verdicts) / len(verdicts)
    tweet_agreement = _tweet_agreement()
    assert demo_agreement >= AGREEMENT_FLOOR
    assert abs(demo_agreement - tweet_agreement) <= AGREEMENT_MARGIN, (
        demo_agreement,
        tweet_agreement,
    )


def test_the_honest_misses_are_misses_and_only_they_are():
    verdicts = _english_verdicts()
    wrong = {s["id"]: (s["label"], label) for s, label in verdicts if s["label"] != label}
    marked = {s["id"] for s, _ in verdicts if "miss" in s}
    # A marked miss that VADER now gets right was "fixed" silently, and the demo lost a
    # label for staff to correct; an unmarked one is a miss nobody explained.
    assert set(wrong) == marked, {k: wrong.get(k) for k in set(wrong) ^ marked}
    reasons = " ".join(s["miss"] for s, _ in verdicts if "miss" in s)
    for kind in ("sarcasm", "negation", "a rave with a negative word", "a plain question"):
        assert kind in reasons
    assert {(expected, got) for expected, got in wrong.values()} >= {
        ("negative", "positive"),
        ("positive", "negative"),
        ("neutral", "positive"),
        ("positive", "neutral"),
    }


def test_each_mention_links_to_its_post_page_and_carries_no_sample_fields():
    mentions = _every_mention()
    for sample, mention in zip(demo.samples(), mentions, strict=True):
        assert mention.url == demo.post_url(sample["id"], mention.created_at)
        assert mention.url.startswith(f"/demo/posts/{sample['id']}?at=")
    first = mentions[0]
    assert first.url == f"/demo/posts/{demo.samples()[0]['id']}?at=2025-05-01T11:54:17Z"
