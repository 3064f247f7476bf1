"""The Bluesky connector, with the real atproto Client against a small local XRPC
server that answers with the lexicon's JSON shapes (createSession, refreshSession,
listNotifications, searchPosts; for replies getPosts, createRecord and getRecord)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from social import bluesky as connector
from social.mention import RateLimited, SourceError

FIXTURES = Path(__file__).parent / "fixtures"
BRAND = ("kestrel.bsky.social", "did:plc:brandbrandbrandbrandbran")
PASSWORD = "abcd-efgh-ijkl-mnop"
BASE_TIME = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
TID = "234567abcdefghijklmnopqrstuvwxyz"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _did(name: str) -> str:
    return (
        "did:plc:" + base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()[:24].lower()
    )


def _cid(seed: str) -> str:
    digest = base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode().lower()
    return "bafyrei" + digest.rstrip("=")[:52]


def _rkey(n: int) -> str:
    out = ""
    for _ in range(11):
        out = TID[n % 32] + out
        n //= 32
    return "3l" + out


def author(handle: str, name: str | None = None, did: str | None = None) -> dict:
    """An app.bsky.actor.defs#profileView."""
    return {
        "did": did or _did(handle),
        "handle": handle,
        "displayName": name,
        "avatar": f"https://cdn.bsky.app/img/avatar/plain/{did or _did(handle)}/x@jpeg",
        "viewer": {"muted": False, "blockedBy": False},
        "labels": [],
        "createdAt": "2023-06-01T00:00:00.000Z",
        "indexedAt": "2024-01-01T00:00:00.000Z",
    }


def post_record(text: str, created: datetime, langs=("en",), parent: str | None = None) -> dict:
    record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": _iso(created)}
    if langs:
        record["langs"] = list(langs)
    if parent:
        ref = {"uri": parent, "cid": _cid(parent)}
        record["reply"] = {"parent": ref, "root": ref}
    return record


def notification(n: int, reason: str = "mention", handle: str = "fan.bsky.social", **kw) -> dict:
    """An app.bsky.notification.listNotifications#notification, indexed n minutes in."""
    when = BASE_TIME + timedelta(minutes=n)
    who = author(handle, kw.pop("name", None))
    if reason in ("like", "repost"):
        collection = f"app.bsky.feed.{reason}"
        record = {
            "$type": collection,
            "subject": {"uri": f"at://{BRAND[1]}/app.bsky.feed.post/3lbrand", "cid": _cid("b")},
            "createdAt": _iso(when),
        }
    elif reason == "follow":
        collection = "app.bsky.graph.follow"
        record = {"$type": collection, "subject": BRAND[1], "createdAt": _iso(when)}
    else:
        collection = "app.bsky.feed.post"
        record = post_record(kw.pop("text", f"@kestrel.bsky.social post {n}"), when, **kw)
    uri = f"at://{who['did']}/{collection}/{_rkey(n)}"
    return {
        "uri": uri,
        "cid": _cid(uri),
        "author": who,
        "reason": reason,
        "record": record,
        "isRead": False,
        "indexedAt": _iso(when + timedelta(seconds=1)),
        "labels": [],
    }


def post_view(n: int, text: str, handle: str = "searcher.bsky.social") -> dict:
    """An app.bsky.feed.defs#postView, as searchPosts returns it."""
    when = BASE_TIME + timedelta(minutes=n)
    who = author(handle, "Searcher")
    uri = f"at://{who['did']}/app.bsky.feed.post/{_rkey(n)}"
    return {
        "uri": uri,
        "cid": _cid(uri),
        "author": {
            k: who[k] for k in ("did", "handle", "displayName", "avatar", "viewer", "labels")
        },
        "record": post_record(text, when),
        "replyCount": 0,
        "repostCount": 0,
        "likeCount": 3,
        "quoteCount": 0,
        "indexedAt": _iso(when + timedelta(seconds=2)),
        "viewer": {"threadMuted": False, "embeddingDisabled": False},
        "labels": [],
    }


class FakeBluesky:
    """A PDS + AppView, just enough of one: state lists are newest first, and each
    request is recorded."""

    def __init__(self) -> None:
        self.notifications: list[dict] = []
        self.posts: list[dict] = []
        self.honour_reasons = True
        self.faults: list[tuple[str, int, dict, dict]] = []
        self.calls: list[tuple[str, dict]] = []
        self.tokens: set[str] = set()
        self.refresh_tokens: set[str] = set()
        # Replies: posts getPosts can see (uri -> postView), and the records written to
        # our repo (uri -> {"uri", "cid", "value"}), in the order they were written.
        self.views: dict[str, dict] = {}
        self.records: dict[str, dict] = {}
        self.lose_answers: set[str] = set()  # nsids whose next success is never told
        self.refuse_rkeys = False  # as the reference PDS did for posts for a while
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add_notifications(self, *items: dict) -> None:
        self.notifications = sorted(
            [*items, *self.notifications], key=lambda n: n["indexedAt"], reverse=True
        )

    def fail(self, nsid: str, status: int, body: dict | None = None, headers=None) -> None:
        self.faults.append((nsid, status, body or {"error": "InternalServerError"}, headers or {}))

    def expire_sessions(self) -> None:
        self.tokens.clear()

    def count(self, nsid: str) -> int:
        return sum(1 for name, _ in self.calls if name == nsid)

    def _token(self, kind: str) -> str:
        now = int(time.time())
        jti = f"{kind}-{len(self.tokens)}"  # unique per session
        payload = {"scope": kind, "sub": BRAND[1], "iat": now, "exp": now + 7200, "jti": jti}
        return f"{_b64({'typ': 'at+jwt', 'alg': 'ES256K'})}.{_b64(payload)}.c2ln"

    def _session(self) -> dict:
        access, refresh = self._token("com.atproto.appPass"), self._token("com.atproto.refresh")
        self.tokens.add(access)
        self.refresh_tokens.add(refresh)
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": BRAND[0],
            "did": BRAND[1],
            "email": "social@kestrel.example",
            "emailConfirmed": True,
            "active": True,
        }

    def handle(self, method: str, nsid: str, query: dict, body: dict, auth: str) -> tuple:
        self.calls.append((nsid, query))
        for fault in self.faults:
            if fault[0] == nsid:
                self.faults.remove(fault)
                return fault[1], fault[2], fault[3]
        if nsid == "com.atproto.server.createSession":
            if body.get("identifier") in BRAND and body.get("password") == PASSWORD:
                return 200, self._session(), {}
            return (
                401,
                {"error": "AuthenticationRequired", "message": "Invalid identifier or password"},
                {},
            )
        if nsid == "com.atproto.server.refreshSession":
            if auth.removeprefix("Bearer ") in self.refresh_tokens:
                return 200, self._session(), {}
            return 400, {"error": "ExpiredToken", "message": "Token has expired"}, {}
        if nsid == "app.bsky.notification.listNotifications":
            if auth.removeprefix("Bearer ") not in self.tokens:
                return 400, {"error": "ExpiredToken", "message": "Token has expired"}, {}
            items = self.notifications
            if self.honour_reasons and "reasons" in query:
                items = [n for n in items if n["reason"] in query["reasons"]]
            page, cursor = self._page(items, query)
            return 200, {"notifications": page, "cursor": cursor, "priority": False}, {}
        if nsid == "app.bsky.feed.searchPosts":
            words = query["q"][0].lower()
            items = [p for p in self.posts if words in p["record"]["text"].lower()]
            page, cursor = self._page(items, query)
            return 200, {"posts": page, "cursor": cursor, "hitsTotal": len(items)}, {}
        if nsid == "app.bsky.feed.getPosts":
            found = [self.views[uri] for uri in query.get("uris", []) if uri in self.views]
            return 200, {"posts": copy.deepcopy(found)}, {}
        if nsid == "com.atproto.repo.createRecord":
            return self._create_record(body, auth)
        if nsid == "com.atproto.repo.listRecords":
            mine = [
                r
                for r in reversed(self.records.values())
                if r["uri"].startswith(f"at://{query['repo'][0]}/")
            ]
            limit = int(query.get("limit", ["50"])[0])
            return 200, {"records": copy.deepcopy(mine[:limit])}, {}
        if nsid == "com.atproto.repo.getRecord":
            uri = f"at://{query['repo'][0]}/{query['collection'][0]}/{query['rkey'][0]}"
            if uri in self.records:
                return 200, copy.deepcopy(self.records[uri]), {}
            return (
                400,
                {"error": "RecordNotFound", "message": f"Could not locate record: {uri}"},
                {},
            )
        return 501, {"error": "MethodNotImplemented", "message": "Method Not Implemented"}, {}

    def _create_record(self, body: dict, auth: str) -> tuple:
        if auth.removeprefix("Bearer ") not in self.tokens:
            return 400, {"error": "ExpiredToken", "message": "Token has expired"}, {}
        if body.get("repo") != BRAND[1]:
            return 400, {"error": "InvalidRequest", "message": "Invalid repo"}, {}
        record = body["record"]
        if record.get("$type") != body["collection"] or "createdAt" not in record:
            return (
                400,
                {"error": "InvalidRequest", "message": "Invalid app.bsky.feed.post record"},
                {},
            )
        reply = record.get("reply")
        for ref in [reply["root"], reply["parent"]] if reply else []:
            if not (ref.get("uri", "").startswith("at://") and ref.get("cid")):
                return 400, {"error": "InvalidRequest", "message": "Invalid strong ref"}, {}
        if body.get("rkey") and self.refuse_rkeys:
            message = "Custom rkeys for post records are not currently supported."
            return 400, {"error": "InvalidRequest", "message": message}, {}
        rkey = body.get("rkey") or _rkey(len(self.records) + 10_000)
        uri = f"at://{BRAND[1]}/{body['collection']}/{rkey}"
        if uri in self.records:
            # What the reference PDS answers today when the key is taken.
            return 500, {"error": "InternalServerError", "message": "Internal Server Error"}, {}
        self.records[uri] = {"uri": uri, "cid": _cid(uri), "value": record}
        commit = {"cid": _cid(f"commit-{uri}"), "rev": _rkey(len(self.records))}
        return (
            200,
            {"uri": uri, "cid": _cid(uri), "commit": commit, "validationStatus": "valid"},
            {},
        )

    @staticmethod
    def _page(items: list, query: dict) -> tuple[list, str | None]:
        # Like the AppView's, a cursor is the sort time of the page's last item, so
        # items arriving on top do not shift the pages below.
        if "cursor" in query:
            items = [i for i in items if i["indexedAt"] < query["cursor"][0]]
        limit = int(query.get("limit", ["50"])[0])
        page = copy.deepcopy(items[:limit])
        return page, page[-1]["indexedAt"] if len(items) > limit else None

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else {}
                nsid = parts.path.removeprefix("/xrpc/")
                status, payload, headers = fake.handle(
                    self.command,
                    nsid,
                    parse_qs(parts.query),
                    body,
                    self.headers.get("Authorization", ""),
                )
                if nsid in fake.lose_answers and status == 200:
                    # Done, but the answer is lost on the way: the connection just closes.
                    fake.lose_answers.discard(nsid)
                    self.close_connection = True
                    return
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, format, *args) -> None:
                pass

        return Handler

    def __enter__(self) -> FakeBluesky:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def fake():
    with FakeBluesky() as server:
        yield server


@pytest.fixture
def sessions() -> dict:
    return {}


def fetch(config: dict, cursor: str | None, **options):
    """The connector's fetch with the switch on that lets it reach the local fake server."""
    return connector.fetch(config, cursor, allow_private=True, **options)


def notifications_config(fake, **extra) -> dict:
    return {
        "mode": "notifications",
        "service": fake.url,
        "handle": BRAND[0],
        "password": PASSWORD,
        **extra,
    }


def poll(fake, cursor, sessions, **extra):
    return fetch(notifications_config(fake, **extra), cursor, sessions=sessions)


def test_reply_notification_maps_to_normalized_fields(fake, sessions):
    fake.add_notifications(json.loads((FIXTURES / "bluesky_notification_reply.json").read_text()))

    [mention] = poll(fake, None, sessions).mentions

    assert mention.network == "bluesky"
    assert (
        mention.external_id
        == "at://did:plc:z72i7hdynmk6r22z27h6tvur/app.bsky.feed.post/3lbw2nbw3ok2k"
    )
    assert mention.author_handle == "lucia.herrera.bsky.social"
    assert mention.author_id == "did:plc:z72i7hdynmk6r22z27h6tvur"
    assert mention.author_name == "Lucía Herrera"
    assert mention.author_followers is None
    assert mention.text == "¿Cuándo llega el molinillo Duo a España? Llevo semanas esperando 😤"
    assert mention.url == "https://bsky.app/profile/lucia.herrera.bsky.social/post/3lbw2nbw3ok2k"
    assert mention.created_at == datetime(2025, 5, 1, 11, 58, 30, 123000, tzinfo=UTC)
    assert (
        mention.in_reply_to
        == "at://did:plc:brandbrandbrandbrandbran/app.bsky.feed.post/3lbvzq5p2ac2x"
    )
    assert mention.language == "es"
    assert mention.extra == {"reason": "reply"}
    assert mention.to_json()["source"] == "bluesky"


def test_asks_for_mentions_replies_and_quotes(fake, sessions):
    fake.add_notifications(notification(1), notification(2, "quote"), notification(3, "like"))
    result = poll(fake, None, sessions)
    assert len(result.mentions) == 2
    [(_, query)] = [c for c in fake.calls if c[0] == "app.bsky.notification.listNotifications"]
    assert query["reasons"] == ["mention", "reply", "quote"]


def test_pages_past_likes_when_the_server_ignores_reasons(fake, sessions):
    fake.honour_reasons = False
    fake.add_notifications(
        notification(1), notification(2, "like"), notification(3, "follow"), notification(4)
    )
    result = poll(fake, None, sessions)
    assert [m.text for m in result.mentions] == [
        "@kestrel.bsky.social post 4",
        "@kestrel.bsky.social post 1",
    ]


def test_first_poll_takes_the_newest_page_only(fake, sessions, monkeypatch):
    monkeypatch.setattr(connector, "PAGE_SIZE", 2)
    fake.add_notifications(*(notification(n) for n in range(5)))
    result = poll(fake, None, sessions)
    assert [m.text[-1] for m in result.mentions] == ["4", "3"]
    assert fake.count("app.bsky.notification.listNotifications") == 1
    state = json.loads(result.cursor)
    assert state["seen"][0] == result.mentions[0].external_id


def test_pages_until_a_known_post_and_stops(fake, sessions, monkeypatch):
    monkeypatch.setattr(connector, "PAGE_SIZE", 2)
    fake.add_notifications(*(notification(n) for n in range(3)))
    first = poll(fake, None, sessions)
    fake.add_notifications(*(notification(n) for n in range(10, 15)))

    later = poll(fake, first.cursor, sessions)

    assert [m.text.split()[-1] for m in later.mentions] == ["14", "13", "12", "11", "10"]
    # 2 + 2 + 2 (the last page meets a known post): three pages, not the whole feed.
    assert fake.count("app.bsky.notification.listNotifications") == 1 + 3
    quiet = poll(fake, later.cursor, sessions)
    assert quiet.mentions == []
    assert fake.count("app.bsky.notification.listNotifications") == 1 + 3 + 1
    assert json.loads(quiet.cursor)["seen"][:5] == [m.external_id for m in later.mentions]


def test_a_burst_bigger_than_a_poll_is_caught_up_without_loss(fake, sessions, monkeypatch):
    monkeypatch.setattr(connector, "PAGE_SIZE", 2)
    monkeypatch.setattr(connector, "MAX_PAGES", 2)
    fake.add_notifications(notification(0))
    cursor = poll(fake, None, sessions).cursor
    fake.add_notifications(*(notification(n) for n in range(10, 17)))

    seen: list[str] = []
    for round in range(5):
        result = poll(fake, cursor, sessions)
        seen += [m.text.split()[-1] for m in result.mentions]
        cursor = result.cursor
        if round == 0:
            assert "resume" in json.loads(cursor)
            fake.add_notifications(notification(30))  # arrives mid catch-up
    assert sorted(seen, key=int) == ["10", "11", "12", "13", "14", "15", "16", "30"]
    assert "resume" not in json.loads(cursor)


def test_stops_by_time_when_the_seen_posts_were_deleted(fake, sessions):
    fake.add_notifications(*(notification(n) for n in range(0, 100, 10)))
    newest = BASE_TIME + timedelta(minutes=60)
    cursor = json.dumps(
        {"seen": ["at://did:plc:gone/app.bsky.feed.post/3lgone"], "newest": _iso(newest)}
    )
    result = poll(fake, cursor, sessions)
    # 90, 80, 70 are new; 60 and 50 are inside the slack (the store dedupes them).
    assert [m.text.split()[-1] for m in result.mentions] == ["90", "80", "70", "60", "50"]


def test_unverified_handle_falls_back_to_did(fake, sessions):
    item = notification(1, handle="handle.invalid")
    fake.add_notifications(item)
    [mention] = poll(fake, None, sessions).mentions
    did = item["author"]["did"]
    assert mention.author_handle == did
    assert mention.url.startswith(f"https://bsky.app/profile/{did}/post/")


def test_future_or_garbled_created_at_uses_indexed_at(fake, sessions):
    future = notification(1)
    future["record"]["createdAt"] = "2099-01-01T00:00:00Z"
    garbled = notification(2)
    garbled["record"]["createdAt"] = "last tuesday"
    fake.add_notifications(future, garbled)
    mentions = poll(fake, None, sessions).mentions
    assert [m.created_at for m in mentions] == [
        BASE_TIME + timedelta(minutes=2, seconds=1),
        BASE_TIME + timedelta(minutes=1, seconds=1),
    ]


def test_session_is_reused_between_polls(fake, sessions):
    fake.add_notifications(notification(1))
    cursor = poll(fake, None, sessions).cursor
    poll(fake, cursor, sessions)
    assert fake.count("com.atproto.server.createSession") == 1
    assert list(sessions) == [f"{fake.url}|{BRAND[0]}"]


def test_expired_session_signs_in_again(fake, sessions):
    fake.add_notifications(notification(1))
    cursor = poll(fake, None, sessions).cursor
    fake.expire_sessions()
    fake.add_notifications(notification(2))
    result = poll(fake, cursor, sessions)
    assert [m.text.split()[-1] for m in result.mentions] == ["2"]
    assert fake.count("com.atproto.server.createSession") == 2


def test_search_without_an_account(fake, sessions):
    fake.posts = [post_view(3, "Kestrel Pro arrived dented"), post_view(2, "unrelated")]
    fake.posts.append(post_view(1, "kestrel duo is quiet"))
    config = {"mode": "search", "service": fake.url, "query": "kestrel"}

    result = fetch(config, None, sessions=sessions)

    assert [m.text for m in result.mentions] == [
        "Kestrel Pro arrived dented",
        "kestrel duo is quiet",
    ]
    assert result.mentions[0].author_handle == "searcher.bsky.social"
    assert result.mentions[0].extra == {}
    assert fake.count("com.atproto.server.createSession") == 0
    [(_, query)] = fake.calls
    assert query["q"] == ["kestrel"]
    assert query["sort"] == ["latest"]
    fake.posts.insert(0, post_view(4, "kestrel again"))
    again = fetch(config, result.cursor, sessions=sessions)
    assert [m.text for m in again.mentions] == ["kestrel again"]


def test_search_that_needs_an_account_says_so(fake, sessions):
    fake.fail("app.bsky.feed.searchPosts", 401, {"error": "AuthMissing", "message": "no auth"})
    config = {"mode": "search", "service": fake.url, "query": "kestrel"}
    with pytest.raises(SourceError, match="wants an account for this"):
        fetch(config, None, sessions=sessions)


def test_search_signed_in(fake, sessions):
    fake.posts = [post_view(1, "kestrel")]
    config = {"mode": "search", "service": fake.url, "query": "kestrel"}
    config |= {"handle": BRAND[0], "password": PASSWORD}
    assert len(fetch(config, None, sessions=sessions).mentions) == 1
    assert fake.count("com.atproto.server.createSession") == 1


def test_429_is_rate_limited_until_the_reset(fake, sessions):
    reset = int(time.time()) + 600
    headers = {"ratelimit-limit": "3000", "ratelimit-remaining": "0", "ratelimit-reset": str(reset)}
    fake.fail(
        "app.bsky.notification.listNotifications", 429, {"error": "RateLimitExceeded"}, headers
    )
    with pytest.raises(RateLimited) as caught:
        poll(fake, None, sessions)
    assert caught.value.retry_at == datetime.fromtimestamp(reset, UTC)


def test_429_on_sign_in_without_headers_backs_off(fake, sessions):
    fake.fail("com.atproto.server.createSession", 429, {"error": "RateLimitExceeded"})
    with pytest.raises(RateLimited) as caught:
        poll(fake, None, sessions)
    assert caught.value.retry_at > datetime.now(UTC) + timedelta(minutes=4)


def test_wrong_password_is_explained(fake, sessions):
    with pytest.raises(SourceError, match="refused the handle or app password") as caught:
        poll(fake, None, sessions, password="wrong-pass")
    assert "wrong-pass" not in str(caught.value)
    assert "Invalid identifier or password" in str(caught.value)
    assert sessions == {}


def test_server_error_is_a_source_error(fake, sessions):
    fake.fail("app.bsky.notification.listNotifications", 500)
    with pytest.raises(SourceError, match=r"answered with an error \(500\)"):
        poll(fake, None, sessions)


def test_malformed_reply_is_a_source_error(fake, sessions):
    fake.fail("app.bsky.notification.listNotifications", 200, {"notifications": "nope"})
    with pytest.raises(SourceError, match=r"could not read|not valid"):
        poll(fake, None, sessions)


def test_unreachable_service(sessions):
    config = {"mode": "search", "service": "http://127.0.0.1:9", "query": "kestrel"}
    with pytest.raises(SourceError, match="Could not reach"):
        fetch(config, None, sessions=sessions)


@pytest.mark.parametrize(
    ("config", "cursor", "message"),
    [
        ({"mode": "timeline"}, None, "Unknown Bluesky mode"),
        ({"mode": "search"}, None, "search query"),
        ({"service": "http://bsky.example"}, None, "https://"),
        ({"password": "x"}, None, "Bluesky handle"),
        ({"handle": "me.bsky.social"}, None, "set BLUESKY_APP_PASSWORD"),
        ({"mode": "search", "query": "q", "handle": "me.bsky.social"}, None, "app password"),
        ({"mode": "search", "query": "q"}, "not json", "cursor is unreadable"),
        ({"mode": "search", "query": "q"}, '{"seen": [], "newest": "soon"}', "unreadable"),
    ],
)
def test_config_errors(config, cursor, message):
    with pytest.raises(SourceError, match=message):
        fetch(config, cursor, sessions={})
