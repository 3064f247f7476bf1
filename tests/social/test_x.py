"""X connector: the real tweepy client, talking to a local server that answers like X.

tweepy builds every request for https://api.twitter.com; a requests transport adapter
mounted on the client's session sends it to 127.0.0.1 instead, keeping path, query and
headers, so tweepy's request building and response parsing are the real ones.
"""

from __future__ import annotations

import copy
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
import requests
import tweepy
from requests.adapters import HTTPAdapter

from social import x
from social.mention import RateLimited, SourceError, UsageCapped

DATA = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "AAAAtest-bearer-token-never-shown"
MENTIONS = "/2/users/783214/mentions"

Reply = tuple[int, dict[str, str], Any]


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    """The real 2022 mentions response, with the fields and author expansion we request."""
    raw = json.loads((DATA / "x_users_mentions_response.json").read_text(encoding="utf-8"))
    body = copy.deepcopy(raw["body"])
    extension = _fixture("x_mentions_expansion.json")
    for post in body["data"]:
        post.update(extension["tweet_fields"][post["id"]])
        ms = (int(post["id"]) >> 22) + 1288834974657
        when = datetime.fromtimestamp(ms / 1000, UTC)
        post["created_at"] = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when:%f}"[:3] + "Z"
    body["includes"] = extension["includes"]
    headers = {k: v[0] for k, v in raw["response_headers_rate_limit"].items()}
    return {"body": body, "headers": headers}


class FakeX:
    """What the local server answers (respond) and what it was asked (requests)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.respond: Callable[[str, dict[str, str]], Reply] = lambda path, query: (
            500,
            {},
            {},
        )


@pytest.fixture
def fake_x() -> Iterator[tuple[FakeX, int]]:
    state = FakeX()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            state.requests.append(
                {"path": parts.path, "query": query, "headers": dict(self.headers)}
            )
            status, headers, body = state.respond(parts.path, query)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state, server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


class ToLocal(HTTPAdapter):
    """Sends what tweepy meant for https://api.twitter.com to http://127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.netloc = f"127.0.0.1:{port}"

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url)
        assert parts.netloc == "api.twitter.com"
        request.url = urlunsplit(("http", self.netloc, parts.path, parts.query, ""))
        return super().send(request, **kwargs)


REAL_CLIENT = tweepy.Client


def _local_client(port: int, **kwargs: Any) -> tweepy.Client:
    client = REAL_CLIENT(**kwargs)
    client.session.trust_env = False  # no proxy from the environment for 127.0.0.1
    client.session.mount("https://api.twitter.com/", ToLocal(port))
    return client


@pytest.fixture
def client(fake_x: tuple[FakeX, int]) -> Iterator[tweepy.Client]:
    client = _local_client(fake_x[1], bearer_token=TOKEN, wait_on_rate_limit=False)
    yield client
    client.session.close()


CONFIG = {"mode": "mentions", "user_id": "783214", "bearer_token": TOKEN}


def test_mentions_two_pages_oldest_first(fake_x, client, recorded) -> None:
    state, _port = fake_x
    page2 = _fixture("x_mentions_page2.json")

    def respond(path: str, query: dict[str, str]) -> Reply:
        assert path == MENTIONS
        if query.get("pagination_token") == recorded["body"]["meta"]["next_token"]:
            return 200, recorded["headers"], page2
        return 200, recorded["headers"], recorded["body"]

    state.respond = respond
    result = x.fetch(CONFIG, "1578515000000000000", client=client)

    first, second = state.requests
    assert first["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert first["query"] == {
        "expansions": "author_id",
        "user.fields": "username,name,public_metrics",
        "tweet.fields": "created_at,lang,conversation_id,in_reply_to_user_id,referenced_tweets",
        "max_results": "100",
        "since_id": "1578515000000000000",
    }
    assert second["query"]["pagination_token"] == "7140dibdnow9c7btw423i3sy3u5zupmkcpofxcsmxj48j"
    assert second["query"]["since_id"] == "1578515000000000000"

    ids = [m.external_id for m in result.mentions]
    assert len(ids) == 12
    assert ids == sorted(ids, key=int)
    assert ids[0] == "1578515802945503232"
    assert result.cursor == "1578516295611748353" == recorded["body"]["meta"]["newest_id"]
    # X bills per post and per user object: 10 posts + 8 users, then 2 posts + 2 users.
    assert result.reads == 22

    newest = result.mentions[-1]
    assert newest.network == "x"
    assert newest.author_handle == "quietgardener22"
    assert newest.author_name == "Quiet Gardener"
    assert newest.author_id == "1446582950914723841"
    assert newest.author_followers == 212
    assert newest.url == "https://x.com/QuietGardener22/status/1578516295611748353"
    assert newest.text.startswith("@Twitter @TwitterSupport this is my ENTIRE feed")
    assert newest.created_at == datetime(2022, 10, 7, 22, 43, 6, 945000, tzinfo=UTC)
    assert newest.in_reply_to == "1578471234567890123"
    assert newest.language == "en"
    assert newest.extra == {
        "conversation_id": "1578471234567890123",
        "in_reply_to_user_id": "783214",
        "referenced_tweets": [{"type": "replied_to", "id": "1578471234567890123"}],
    }
    quote = next(m for m in result.mentions if m.external_id == "1578516107798884353")
    assert quote.in_reply_to is None
    assert result.mentions[0].language == "es"
    assert result.mentions[0].author_handle == "lucia_mx"


def test_nothing_new_keeps_the_cursor(fake_x, client) -> None:
    state, _port = fake_x
    state.respond = lambda path, query: (200, {}, {"meta": {"result_count": 0}})
    result = x.fetch(CONFIG, "1578516295611748353", client=client)
    assert (result.mentions, result.cursor, result.reads) == ([], "1578516295611748353", 0)
    assert len(state.requests) == 1


def test_search_mode_and_page_budget(fake_x, client, recorded, caplog) -> None:
    state, _port = fake_x
    state.respond = lambda path, query: (200, recorded["headers"], recorded["body"])
    config = {"mode": "search", "query": "@acme -is:retweet", "bearer_token": TOKEN}
    result = x.fetch({**config, "max_pages": 3, "max_results": 500}, None, client=client)

    assert [r["path"] for r in state.requests] == ["/2/tweets/search/recent"] * 3
    assert state.requests[0]["query"]["query"] == "@acme -is:retweet"
    assert state.requests[0]["query"]["max_results"] == "100"
    assert "since_id" not in state.requests[0]["query"]
    assert state.requests[1]["query"]["next_token"] == recorded["body"]["meta"]["next_token"]
    assert len(result.mentions) == 10  # the same page three times is stored once
    assert result.reads == 3 * 18
    assert "stopped after 3 pages" in caplog.text


def test_partial_errors_keep_the_posts(fake_x, client, caplog) -> None:
    state, _port = fake_x
    state.respond = lambda path, query: (200, {}, _fixture("x_mentions_partial_errors.json"))
    with caplog.at_level(logging.WARNING, logger="social.x"):
        result = x.fetch(CONFIG, None, client=client)

    suspended, known = result.mentions
    assert suspended.author_handle == "1099999999999999999"
    assert suspended.author_id == "1099999999999999999"
    assert suspended.author_name == ""
    assert suspended.author_followers is None
    assert suspended.url == "https://x.com/i/web/status/1578520000000000001"
    assert suspended.extra["x_errors"] == [
        {
            "title": "Forbidden",
            "detail": "User has been suspended: [1099999999999999999].",
            "type": "https://api.twitter.com/2/problems/resource-not-found",
        }
    ]
    assert known.author_handle == "nightowl_ed"
    assert "x_errors" not in known.extra
    assert result.cursor == "1578520000000000002"
    assert result.reads == 3
    assert "X partial error: Forbidden (user 1099999999999999999)" in caplog.text
    assert "Not Found Error (tweet 1578471234567890123)" in caplog.text


def test_rate_limited_says_when(fake_x, client, recorded) -> None:
    state, _port = fake_x
    headers = {**recorded["headers"], "x-rate-limit-remaining": "0"}
    body = _fixture("x_errors.json")["rate_limited"]
    state.respond = lambda path, query: (429, headers, body)
    with pytest.raises(RateLimited) as caught:
        x.fetch(CONFIG, None, client=client)
    assert caught.value.retry_at == datetime.fromtimestamp(1665183228, UTC)
    assert len(state.requests) == 1  # never sleeps and retries


def test_usage_capped(fake_x, client) -> None:
    state, _port = fake_x
    body = _fixture("x_errors.json")["usage_capped"]
    state.respond = lambda path, query: (429, {"x-rate-limit-reset": "1665183228"}, body)
    with pytest.raises(UsageCapped, match="Monthly product cap"):
        x.fetch(CONFIG, None, client=client)


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (401, "unauthorized", "X rejected the token"),
        (403, "forbidden", "X refused access .403 Forbidden.*attached to a Project"),
        (503, "service_unavailable", "X had a server error .503."),
        (503, b"<html>upstream connect error</html>", "X had a server error .503."),
    ],
)
def test_errors_in_words_without_the_token(fake_x, client, status, body, message) -> None:
    state, _port = fake_x
    payload = body if isinstance(body, bytes) else _fixture("x_errors.json")[body]
    state.respond = lambda path, query: (status, {}, payload)
    with pytest.raises(SourceError, match=message) as caught:
        x.fetch(CONFIG, None, client=client)
    assert not isinstance(caught.value, RateLimited | UsageCapped)
    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None  # tweepy's exception (with its request) is dropped


def test_network_failure(client) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the test connects: refused
    client.session.mount("https://api.twitter.com/", ToLocal(port))
    with pytest.raises(SourceError, match=r"Could not reach X \(ConnectionError\)"):
        x.fetch(CONFIG, None, client=client)


def test_builds_its_own_client_with_the_token_it_is_given(fake_x, monkeypatch, recorded) -> None:
    state, port = fake_x
    state.respond = lambda path, query: (200, {}, {"meta": {"result_count": 0}})
    made: list[dict[str, Any]] = []

    def local_client(**kwargs: Any) -> tweepy.Client:
        made.append(kwargs)
        return _local_client(port, **kwargs)

    monkeypatch.setattr(x.tweepy, "Client", local_client)
    monkeypatch.setenv("X_BEARER_TOKEN", "never-read-from-here")
    x.fetch({"mode": "mentions", "user_id": "783214", "bearer_token": TOKEN}, None)
    assert made == [{"bearer_token": TOKEN, "wait_on_rate_limit": False}]
    assert state.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"

    with pytest.raises(SourceError, match="set X_BEARER_TOKEN"):
        x.fetch({"mode": "mentions", "user_id": "783214"}, None)


@pytest.mark.parametrize(
    ("config", "cursor", "message"),
    [
        ({"mode": "mentions", "bearer_token": TOKEN}, None, "numeric user id"),
        ({"mode": "search", "bearer_token": TOKEN}, None, "needs a query"),
        ({"mode": "likes", "bearer_token": TOKEN}, None, "Unknown X source mode"),
        (CONFIG, "not-an-id", "not a post id"),
    ],
)
def test_bad_config(client, config, cursor, message) -> None:
    with pytest.raises(SourceError, match=message):
        x.fetch(config, cursor, client=client)


def test_tweepy_debug_log_hides_the_token(fake_x, client, caplog) -> None:
    state, _port = fake_x
    state.respond = lambda path, query: (200, {}, {"meta": {"result_count": 0}})
    with caplog.at_level(logging.DEBUG, logger="tweepy.client"):
        x.fetch(CONFIG, None, client=client)
    assert "Making API request" in caplog.text
    assert "Bearer [redacted]" in caplog.text
    assert TOKEN not in caplog.text
