"""The demo source: bundled samples replayed in batches, matchable to the demo
contacts, idempotent per cursor, new ids only on a new cycle."""

from __future__ import annotations

import unicodedata
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from social import demo
from social.matching import normalize_handle
from social.mention import NETWORKS, SourceError, from_json

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


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
