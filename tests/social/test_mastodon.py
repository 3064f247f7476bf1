"""The Mastodon connector, with the real Mastodon.py client against mastodon-mock's
local server (its fault injection stands in for 429s, 500s and odd payloads)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from mastodon import Mastodon
from mastodon_mock.testing.server import MockServer

from social import mastodon as connector
from social.mention import RateLimited, SourceError

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def server():
    with MockServer() as running:
        yield running


@pytest.fixture
def mock(server):
    """The shared server back at its seed (alice, bob, carol; dave@remote.example)."""
    httpx.post(f"{server.base_url}/api/v1/_mock/reset").raise_for_status()
    httpx.delete(f"{server.base_url}/api/v1/_mock/faults").raise_for_status()
    return server


@pytest.fixture
def post(mock):
    clients: dict[str, Mastodon] = {}

    def post(user: str, text: str, **kwargs):
        if user not in clients:
            clients[user] = Mastodon(
                access_token=f"{user}_token", api_base_url=mock.base_url, ratelimit_method="throw"
            )
        return clients[user].status_post(text, **kwargs)

    yield post
    for client in clients.values():
        client.session.close()


def fetch(config: dict, cursor: str | None, **options):
    """The connector's fetch with the switch on that lets it reach the local mock server."""
    return connector.fetch(config, cursor, allow_private=True, **options)


def fault(server, path: str, **effect) -> None:
    rule = {"match": {"path": path}, "effect": effect, "count": 1}
    httpx.post(f"{server.base_url}/api/v1/_mock/faults", json=rule).raise_for_status()


def mentions_config(server, token: str | None = None) -> dict:
    token = token or "alice_token"
    return {"instance": server.base_url, "mode": "mentions", "access_token": token}


def hashtag_config(server, tag: str = "kestrel") -> dict:
    return {"instance": server.base_url, "mode": "hashtag", "tag": tag}


def test_mentions_map_to_normalized_fields(mock, post):
    status = post("bob", "@alice the Kestrel Compact leaks <again> & again")

    result = fetch(mentions_config(mock), None)

    [mention] = result.mentions
    assert mention.network == "mastodon"
    assert mention.external_id == status.uri
    assert "mock.local" in mention.external_id
    assert mention.author_handle == "bob@mock.local"
    assert mention.author_name == "Bob"
    assert mention.author_followers == 1
    assert mention.author_id == "https://mock.local/@bob"
    assert mention.text == "@alice the Kestrel Compact leaks <again> & again"
    assert mention.url == status.url
    assert mention.created_at.tzinfo == UTC
    assert abs((mention.created_at - datetime.now(UTC)).total_seconds()) < 60
    assert result.cursor is not None


def test_only_mentions_of_the_account(mock, post):
    post("bob", "@carol not about alice")
    post("alice", "talking to myself")
    assert fetch(mentions_config(mock), None).mentions == []


def test_resumes_from_min_id_without_repeats(mock, post):
    post("bob", "@alice first")
    first = fetch(mentions_config(mock), None)
    assert [m.text for m in first.mentions] == ["@alice first"]

    again = fetch(mentions_config(mock), first.cursor)
    assert again.mentions == []
    assert again.cursor == first.cursor

    post("bob", "@alice second")
    post("carol", "@alice third")
    later = fetch(mentions_config(mock), first.cursor)
    assert sorted(m.text for m in later.mentions) == ["@alice second", "@alice third"]


def test_pages_upward_so_nothing_is_skipped(mock, post, monkeypatch):
    monkeypatch.setattr(connector, "PAGE_SIZE", 2)
    post("bob", "#kestrel zero")
    start = fetch(hashtag_config(mock), None)
    for n in range(1, 6):
        post("bob", f"#kestrel number {n}")

    result = fetch(hashtag_config(mock), start.cursor)

    texts = [m.text for m in result.mentions]
    assert sorted(texts) == [f"#kestrel number {n}" for n in range(1, 6)]
    assert len(set(m.external_id for m in result.mentions)) == 5
    assert fetch(hashtag_config(mock), result.cursor).mentions == []


def test_page_cap_defers_the_rest_to_the_next_poll(mock, post, monkeypatch):
    monkeypatch.setattr(connector, "PAGE_SIZE", 2)
    monkeypatch.setattr(connector, "MAX_PAGES", 1)
    post("carol", "#kestrel before")
    start = fetch(hashtag_config(mock), None)
    for n in range(5):
        post("carol", f"#kestrel {n}")

    seen: list[str] = []
    cursor = start.cursor
    for _ in range(4):
        result = fetch(hashtag_config(mock), cursor)
        seen += [m.text for m in result.mentions]
        cursor = result.cursor
    assert sorted(seen) == [f"#kestrel {n}" for n in range(5)]


def test_hashtag_needs_no_token(mock, post):
    post("bob", "Loving my new #Kestrel grinder")
    post("bob", "no tag here")

    result = fetch(hashtag_config(mock, "#kestrel"), None)

    assert [m.text for m in result.mentions] == ["Loving my new #Kestrel grinder"]


def test_domain_setting_names_local_accounts(mock, post):
    post("bob", "@alice hello")
    config = {**mentions_config(mock), "domain": "Kestrel.Example"}
    [mention] = fetch(config, None).mentions
    assert mention.author_handle == "bob@kestrel.example"


def test_reply_names_its_parent_by_uri(mock, post):
    parent = post("alice", "Our spring range is out")
    reply = post("bob", "@alice finally!", in_reply_to_id=parent.id)

    [mention] = fetch(mentions_config(mock), None).mentions

    assert mention.external_id == reply.uri
    assert mention.in_reply_to == parent.uri


def test_nasty_html_becomes_plain_text(mock):
    status = json.loads((FIXTURES / "mastodon_status_nasty.json").read_text())
    fault(mock, "/api/v1/timelines/tag/kestrel", type="status", status=200, body=[status])

    [mention] = fetch(hashtag_config(mock), None).mentions

    assert mention.text == (
        'Broken again & again <3 \u2014 the Kestrel app says "sync failed"\n'
        "second line\nthird line\n\n"
        "See #kestrel and @alice https://example.com/a/very/long/support/article\n\n"
        "click me"
    )
    assert "alert" not in mention.text
    assert mention.external_id == "https://remote.example/users/zoe/statuses/113456789012345678"
    assert mention.author_handle == "zoe@remote.example"
    assert mention.author_name == "Zoë <em>Q</em>"
    assert mention.author_followers == 1234
    assert mention.language == "en"
    assert mention.created_at == datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)


def test_429_is_rate_limited_until_the_reset(mock, post):
    post("bob", "@alice hi")
    fault(mock, "/api/v1/notifications", type="ratelimit")

    with pytest.raises(RateLimited) as caught:
        fetch(mentions_config(mock), None)

    wait = (caught.value.retry_at - datetime.now(UTC)).total_seconds()
    assert 240 < wait < 360


def test_429_without_reset_backs_off(mock):
    fault(mock, "/api/v1/timelines/tag/kestrel", type="status", status=429)
    before = time.time()
    with pytest.raises(RateLimited) as caught:
        fetch(hashtag_config(mock), None)
    assert caught.value.retry_at.timestamp() >= before + 250


def test_bad_token_is_explained(mock):
    with pytest.raises(SourceError, match="refused the access token") as caught:
        fetch(mentions_config(mock, token="wrong-token"), None)
    assert "wrong-token" not in str(caught.value)
    assert not isinstance(caught.value, RateLimited)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_source_errors(mock, status):
    fault(mock, "/api/v1/notifications", type="status", status=status)
    with pytest.raises(SourceError, match=f"server error \\({status}\\)"):
        fetch(mentions_config(mock), "1")


def test_malformed_json_is_a_source_error(mock):
    fault(mock, "/api/v1/notifications", type="malformed")
    with pytest.raises(SourceError, match="not valid Mastodon JSON"):
        fetch(mentions_config(mock), None)


def test_status_without_an_account_is_a_source_error(mock):
    status = json.loads((FIXTURES / "mastodon_status_nasty.json").read_text())
    del status["account"]
    fault(mock, "/api/v1/timelines/tag/kestrel", type="status", status=200, body=[status])
    with pytest.raises(SourceError, match="sent a status we could not read"):
        fetch(hashtag_config(mock), None)


def test_unreachable_instance():
    with pytest.raises(SourceError, match="Could not reach"):
        fetch({"instance": "http://127.0.0.1:9", "mode": "hashtag", "tag": "x"}, None)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "Set the Mastodon instance"),
        ({"instance": "http://mastodon.example"}, "must be an https"),
        ({"instance": "https://m.example", "mode": "timeline"}, "Unknown Mastodon mode"),
        ({"instance": "https://m.example"}, "set MASTODON_ACCESS_TOKEN"),
        ({"instance": "https://m.example", "mode": "hashtag", "tag": "../admin"}, "hashtag"),
    ],
)
def test_config_errors(config, message):
    with pytest.raises(SourceError, match=message):
        fetch(config, None)
