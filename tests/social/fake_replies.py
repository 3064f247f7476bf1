"""Local X, Mastodon and Bluesky that take replies, for web, worker and connector tests
and benches (no command to run). Each answers with the network's own JSON shapes; hold
makes the next reply be taken and its answer wait, as a network does while the worker
that asked is killed.

X: FakeX on a servers.Server (our timeline, POST /2/tweets, GET /2/users/:id/tweets).
Mastodon: mastodon-mock, as alice answering bob (api, bob_says, find_by_uri,
mastodon_config, replies_to), and Forwarder in front of it to hold an answer.
Bluesky, below:

Start it with the context manager, store its `config` as a Bluesky source's config (or
pass it to social.replies.post with allow_private=True: it listens on 127.0.0.1), make
posts to answer with `mention`, and read what was posted with `replies`:

    with bluesky_replies() as fake:
        mention = fake.mention(1, "Where is my order?")
        posted = replies.post(
            fake.config, replies.target_of(mention), "On its way!", key="reply-1",
            allow_private=True,
        )
        assert fake.replies()[0]["value"]["text"] == "@fan1.bsky.social On its way!"

It is the FakeBluesky of test_bluesky.py: the real atproto client talks to it (sign-in,
getPosts, createRecord with its record key, getRecord), a reused session signs in once,
and a reply retried with the same key is found rather than written twice. One worker
sends it about 240 replies a second (1,000 in about 4 s on the 2-core machine).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from social.mention import Mention
from tests.social.servers import Server
from tests.social.test_bluesky import BASE_TIME, BRAND, PASSWORD, FakeBluesky, post_view


class BlueskyReplies:
    """The running fake, the source config that reaches it, and helpers."""

    def __init__(self, fake: FakeBluesky) -> None:
        self.fake = fake
        self.config = {
            "mode": "notifications",
            "service": fake.url,
            "handle": BRAND[0],
            "password": PASSWORD,
        }

    def mention(self, n: int, text: str = "", handle: str | None = None) -> Mention:
        """A post on the fake (the n-th; handle default fan<n>.bsky.social) that replies
        can answer, as the connector stores it."""
        handle = handle or f"fan{n}.bsky.social"
        view = post_view(n, text or f"@{BRAND[0]} question {n}", handle=handle)
        self.fake.views[view["uri"]] = view
        rkey = view["uri"].rsplit("/", 1)[-1]
        return Mention(
            network="bluesky",
            external_id=view["uri"],
            author_handle=handle,
            author_name=view["author"]["displayName"] or handle,
            author_id=view["author"]["did"],
            text=view["record"]["text"],
            url=f"https://bsky.app/profile/{handle}/post/{rkey}",
            created_at=BASE_TIME + timedelta(minutes=n),
            language="en",
        )

    def replies(self) -> list[dict]:
        """The records our account wrote ({"uri", "cid", "value"}), oldest first."""
        return list(self.fake.records.values())

    def lose_next_answer(self) -> None:
        """The next reply is written, but its answer never arrives (the job will retry)."""
        self.fake.lose_answers.add("com.atproto.repo.createRecord")

    def sign_ins(self) -> int:
        """How many times the account signed in with its password."""
        return self.fake.count("com.atproto.server.createSession")

    def hold(self) -> Held:
        """The next reply is written, then its answer waits until released."""
        held, self.fake.handle = holding(
            self.fake.handle,
            lambda _method, nsid, *rest: nsid == "com.atproto.repo.createRecord",
            lambda result: result[0] == 200,
        )
        return held


@contextmanager
def bluesky_replies() -> Iterator[BlueskyReplies]:
    """A fake Bluesky on 127.0.0.1 for as long as the block runs."""
    with FakeBluesky() as fake:
        yield BlueskyReplies(fake)


class Held:
    """A reply the fake took and whose answer waits: taken is set once it is written,
    release lets the answer go (it is let go anyway after a minute)."""

    def __init__(self) -> None:
        self.taken = threading.Event()
        self.released = threading.Event()

    def release(self) -> None:
        self.released.set()


def holding(answer: Any, matches: Any, stored: Any = lambda _result: True) -> tuple[Held, Any]:
    """A fake's handler answer wrapped so that the first call that matches(*args) and
    stored the reply (stored(result): not one refused, say for a stale session the client
    then renews) waits for release before its answer goes back."""
    held = Held()

    def wrapped(*args: Any) -> Any:
        result = answer(*args)
        if not held.taken.is_set() and matches(*args) and stored(result):
            held.taken.set()
            held.released.wait(60)
        return result

    return held, wrapped


# X: a timeline of our account's posts, as X's API v2 gives it.

OUR_ID = "783214"
X_CONFIG = {
    "mode": "mentions",
    "user_id": OUR_ID,
    "username": "acme",
    "consumer_key": "ck",
    "consumer_secret": "cs",
    "access_token": f"{OUR_ID}-token",
    "access_token_secret": "ts",
}
RESTRICTED = {
    "detail": "Reply to this conversation is not allowed because you have not been mentioned "
    "or otherwise engaged by the author of the post you are replying to.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
DUPLICATE = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}


class FakeX:
    """POST /2/tweets and GET /2/users/:id/tweets as X answers them, over our timeline."""

    def __init__(self, server: Server) -> None:
        self.timeline: list[dict] = []  # newest first
        self.posted: list[dict] = []
        self.texts: set[str] = set()  # what our posts say, as sent
        self.refuse: tuple[int, dict, dict] | None = None
        self.hide_timeline = 0  # lookups that do not see our newest posts yet
        server.routes["/2/tweets"] = self._post
        server.routes[f"/2/users/{OUR_ID}/tweets"] = self._timeline

    def _post(self, handler) -> tuple[int, dict, bytes]:
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        self.posted.append({"body": body, "authorization": handler.headers["Authorization"]})
        if self.refuse:
            status, headers, payload = self.refuse
            return (
                status,
                {"Content-Type": "application/json", **headers},
                json.dumps(payload).encode(),
            )
        if body["text"] in self.texts:
            return 403, {"Content-Type": "application/json"}, json.dumps(DUPLICATE).encode()
        self.texts.add(body["text"])
        post_id = str(1578516295611748353 + 1000 + len(self.timeline))
        tweet = {"id": post_id, "text": body["text"], "edit_history_tweet_ids": [post_id]}
        parent = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        self.timeline.insert(
            0,
            {
                **tweet,
                # As X gives a reply back: the handles ahead, & escaped.
                "text": "@quietgardener22 " + body["text"].replace("&", "&amp;"),
                "referenced_tweets": [{"type": "replied_to", "id": parent}] if parent else [],
                "created_at": "2026-12-02T10:00:00.000Z",
            },
        )
        return 201, {"Content-Type": "application/json"}, json.dumps({"data": tweet}).encode()

    def _timeline(self, handler) -> tuple[int, dict, bytes]:
        query = {k: v[0] for k, v in parse_qs(urlsplit(handler.path).query).items()}
        since = int(query.get("since_id", "0"))
        seen = self.timeline[self.hide_timeline :] if self.hide_timeline else self.timeline
        self.hide_timeline = max(0, self.hide_timeline - 1)
        newer = [t for t in seen if int(t["id"]) > since]
        start = int(query.get("pagination_token", "0"))
        size = int(query["max_results"])
        data = newer[start : start + size]
        body: dict[str, Any] = {"meta": {"result_count": len(data)}}
        if data:
            body["data"] = data
            body["meta"] |= {"newest_id": data[0]["id"], "oldest_id": data[-1]["id"]}
        if start + size < len(newer):
            body["meta"]["next_token"] = str(start + size)
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def hold(self, server: Server) -> Held:
        """The next reply is posted, then X's answer waits until released."""
        held, server.routes["/2/tweets"] = holding(server.routes["/2/tweets"], _posting)
        return held


def _posting(handler: Any) -> bool:
    return handler.command == "POST"


# Mastodon: mastodon-mock, as alice (our account) answering bob.


def api(mock, method: str, path: str, user: str, **kwargs: Any) -> Any:
    response = httpx.request(
        method,
        f"{mock.base_url}{path}",
        headers={"Authorization": f"Bearer {user}_token"},
        **kwargs,
    )
    response.raise_for_status()
    return response.json()


def bob_says(mock, text: str, visibility: str = "public") -> tuple[dict, Mention]:
    """A status of bob's, and the search that finds it on alice's instance (the mock
    searches text only, so the answer to a search by URI is given as Mastodon gives it)."""
    status = api(
        mock, "POST", "/api/v1/statuses", "bob", json={"status": text, "visibility": visibility}
    )
    seen_by_alice = api(mock, "GET", f"/api/v1/statuses/{status['id']}", "alice")
    find_by_uri(mock, seen_by_alice)
    mention = Mention(
        network="mastodon",
        external_id=status["uri"],
        url=status["url"],
        author_handle="bob@mock.local",
        author_name="Bob",
        author_id=status["account"]["url"],
        text=text,
        created_at=datetime.fromisoformat(status["created_at"].replace("Z", "+00:00")),
        language="en",
    )
    return seen_by_alice, mention


def find_by_uri(mock, status: dict, times: int = 1) -> None:
    rule = {
        "match": {"path": "/api/v2/search"},
        "effect": {
            "type": "status",
            "status": 200,
            "body": {"accounts": [], "statuses": [status], "hashtags": []},
        },
        "count": times,
    }
    httpx.post(f"{mock.base_url}/api/v1/_mock/faults", json=rule).raise_for_status()


def mastodon_config(mock, **extra: Any) -> dict:
    return {"instance": mock.base_url, "mode": "mentions", "access_token": "alice_token", **extra}


def replies_to(mock, status_id: str) -> list[dict]:
    context = api(mock, "GET", f"/api/v1/statuses/{status_id}/context", "bob")
    return [s for s in context["descendants"] if s["in_reply_to_id"] == status_id]


class Forwarder:
    """A local server in front of mastodon-mock that passes every request on and can
    hold the answer to the next status posted (a Mastodon whose answer is slow to come
    back while the worker that asked is killed). Its base_url is the instance to
    configure (mastodon_config(forwarder))."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.server = Server()
        self.server.routes["*"] = self._forward
        self.base_url = f"http://127.0.0.1:{self.server.port}"

    def _forward(self, handler: Any) -> tuple[int, dict, bytes]:
        length = int(handler.headers.get("Content-Length") or 0)
        skip = {"host", "content-length", "connection", "accept-encoding"}
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in skip}
        answer = httpx.request(
            handler.command,
            self.upstream + handler.path,
            headers=headers,
            content=handler.rfile.read(length) if length else None,
        )
        drop = {"content-length", "transfer-encoding", "connection", "content-encoding"}
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in drop}
        return answer.status_code, kept, answer.content

    def hold(self) -> Held:
        """The next status posted is made, then its answer waits until released."""
        held, self.server.routes["*"] = holding(
            self.server.routes["*"],
            lambda handler: _posting(handler) and handler.path == "/api/v1/statuses",
        )
        return held

    def __enter__(self) -> Forwarder:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.__exit__(*exc)
