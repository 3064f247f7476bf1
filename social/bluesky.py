"""Bluesky connector: an account's mentions, replies and quotes, or a post search.

Everything Bluesky-specific lives here: the atproto client, signing in with an app
password (and reusing the session), walking newest-to-older pages until a post we
have seen, and translating atproto's errors into SourceError / RateLimited.

Bluesky has no since_id, so the cursor is our own JSON:
  {"seen": [recent at:// uris, newest first], "newest": "<indexedAt of the newest>"}
A poll pages from the top and stops at a seen uri (or, should those posts have been
deleted, at anything indexed well before "newest"). When MAX_PAGES runs out first,
the cursor also keeps {"resume": {"page": <API cursor>, "seen": …, "newest": …}}:
the next poll carries on down from where this one stopped to the old stop point
before it looks at the top again, so a burst bigger than one poll loses nothing.

The sign-in, the saved sessions, the guarded client and the error wording are shared
with social.bluesky_reply, where replying (posting an answer to one post) now lives.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from atproto_client import Client
from atproto_client.exceptions import (
    BadRequestError,
    LoginRequiredError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    UnauthorizedError,
)
from atproto_client.models.common import XrpcError
from atproto_client.request import Request
from atproto_core.exceptions import AtProtocolError
from pydantic import ValidationError

from social import net
from social.matching import normalize_handle
from social.mention import (
    FetchResult,
    Mention,
    MentionError,
    RateLimited,
    SourceError,
    fetched_followers,
    fetched_time,
    parse_time,
)

DEFAULT_SERVICE = "https://bsky.social"
PAGE_SIZE = 100  # the most either endpoint returns
MAX_PAGES = 5
SEEN_KEPT = 50
# Posts indexed this long before the newest we stored are surely stored already.
STOP_SLACK = timedelta(minutes=15)
DEFAULT_BACKOFF = timedelta(minutes=5)
REQUEST_TIMEOUT = 20.0
REASONS = ("mention", "reply", "quote")
_SESSION_ERRORS = {"ExpiredToken", "InvalidToken", "AuthenticationRequired", "AuthMissing"}

# createSession is rate-limited per account, tightly enough that signing in at every
# poll would soon be refused, so a session is reused between polls. This default lives
# as long as the process; a caller whose processes are short-lived passes a mapping
# that outlives them.
SESSIONS: dict[str, str] = {}


@dataclass(frozen=True)
class _Item:
    uri: str
    indexed_at: datetime
    mention: Mention | None  # None for items we page past but do not keep (likes…)


def fetch(
    config: dict[str, Any],
    cursor: str | None,
    *,
    client: Client | None = None,
    sessions: MutableMapping[str, str] | None = None,
    allow_private: bool = False,
) -> FetchResult:
    """Poll one Bluesky source for posts newer than cursor (see the module docstring).

    config: mode "notifications" (mentions, replies and quotes of handle) or "search"
    (query); handle and password (an app password), for notifications and optionally for
    search; service (default https://bsky.social). Every request, to the service or to
    the PDS it names after sign-in, goes through the outbound guard; allow_private lets
    it reach internal addresses (tests and local development only).
    :raise RateLimited: when Bluesky asks us to wait.
    :raise SourceError: saying in words what went wrong.
    """
    service = service_url(config, allow_private)
    mode = config.get("mode", "notifications")
    if mode not in ("notifications", "search"):
        raise SourceError(f"Unknown Bluesky mode {mode!r}: use notifications or search.")
    query = str(config.get("query") or "").strip()
    if mode == "search" and not query:
        raise SourceError("Set the search query for this Bluesky source.")
    state = _load_cursor(cursor)
    credentials = credentials_of(config, required=mode == "notifications")
    sessions = SESSIONS if sessions is None else sessions
    key = f"{service}|{credentials[0]}" if credentials else ""
    host = urlsplit(service).netloc

    for attempt in (1, 2):
        active = client or guarded_client(service, allow_private)
        reused = False
        try:
            if credentials and client is None:
                reused = sign_in(active, credentials, sessions.get(key))
            if mode == "notifications":
                page = _notifications_page(active)
            else:
                page = _search_page(active, query)
            items, new_state = _walk(page, state)
            if credentials and client is None:
                sessions[key] = active.export_session_string()
        except AtProtocolError as exc:
            if reused and attempt == 1 and session_expired(exc):
                # A stale saved session: forget it and sign in afresh, once.
                sessions.pop(key, None)
                continue
            raise source_error(exc, host, signed_in=bool(credentials)) from None
        except ValidationError:
            raise SourceError(f"{host} sent a reply that is not valid Bluesky JSON.") from None
        finally:
            if client is None:
                active.request.close()
        mentions = [item.mention for item in items if item.mention]
        return FetchResult(mentions=mentions, cursor=_dump_cursor(new_state))
    raise AssertionError("unreachable")  # pragma: no cover


def guarded_client(service: str, allow_private: bool) -> Client:
    """An atproto client for service whose requests all go through the outbound guard."""
    guard = net.Guard("a Bluesky source", allow_private=allow_private, timeout=REQUEST_TIMEOUT)
    # atproto's Request hands its keyword arguments to the httpx.Client it builds.
    request = Request(
        timeout=REQUEST_TIMEOUT, transport=net.httpx_transport(guard), trust_env=False
    )
    return Client(base_url=service, request=request)


def service_url(config: dict[str, Any], allow_private: bool) -> str:
    """The service's base URL. :raise SourceError: when it is not one to talk to."""
    raw = str(config.get("service") or DEFAULT_SERVICE).strip().rstrip("/")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError("The Bluesky service must be an address like https://bsky.social.")
    if not net.may_send_credentials(raw, allow_private):
        raise SourceError("The Bluesky service must be an https:// address.")
    return raw


def credentials_of(config: dict[str, Any], required: bool) -> tuple[str, str] | None:
    """The handle and app password to sign in with, or None to read without an account."""
    handle = str(config.get("handle") or "").strip().lstrip("@").lower()
    password = str(config.get("password") or "")
    if handle and password:
        return handle, password
    if required or handle:
        if not handle:
            raise SourceError("Set the Bluesky handle whose notifications to read.")
        raise SourceError(
            "Bluesky needs an app password: store one on the source, or set"
            " BLUESKY_APP_PASSWORD (and list the service's host in BLUESKY_PASSWORD_HOSTS)."
        )
    return None


def sign_in(client: Client, credentials: tuple[str, str], saved: str | None) -> bool:
    """Sign in, reusing a saved session when there is one; say whether it was reused."""
    if saved:
        try:
            client.login(session_string=saved, fetch_bsky_profile=False)
            return True
        except (AtProtocolError, ValueError):
            pass  # unreadable: fall through to the password
    client.login(credentials[0], credentials[1], fetch_bsky_profile=False)
    return False


def session_expired(exc: AtProtocolError) -> bool:
    if isinstance(exc, UnauthorizedError):
        return True
    content = exc.response.content if isinstance(exc, RequestErrorBase) and exc.response else None
    return isinstance(content, XrpcError) and content.error in _SESSION_ERRORS


Page = Callable[[str | None], tuple[list[_Item], str | None]]


def _notifications_page(client: Client) -> Page:
    def page(api_cursor: str | None) -> tuple[list[_Item], str | None]:
        params = {"limit": PAGE_SIZE, "reasons": list(REASONS), "cursor": api_cursor}
        response = client.app.bsky.notification.list_notifications(
            {k: v for k, v in params.items() if v is not None}
        )
        now = datetime.now(UTC)
        items = []
        for n in response.notifications:
            indexed = fetched_time(n.indexed_at, now)
            # Servers that ignore `reasons` send likes and follows too: page past them.
            keep = n.reason in REASONS and _is_post(n.record)
            mention = _mention(n.uri, n.author, n.record, indexed, n.reason) if keep else None
            items.append(_Item(n.uri, indexed, mention))
        return items, response.cursor

    return page


def _search_page(client: Client, query: str) -> Page:
    def page(api_cursor: str | None) -> tuple[list[_Item], str | None]:
        params = {"q": query, "sort": "latest", "limit": PAGE_SIZE, "cursor": api_cursor}
        response = client.app.bsky.feed.search_posts({k: v for k, v in params.items() if v})
        now = datetime.now(UTC)
        items = []
        for p in response.posts:
            if _is_post(p.record):
                indexed = fetched_time(p.indexed_at, now)
                items.append(_Item(p.uri, indexed, _mention(p.uri, p.author, p.record, indexed)))
        return items, response.cursor

    return page


def _walk(page: Page, state: dict[str, Any] | None) -> tuple[list[_Item], dict[str, Any] | None]:
    """Items newer than state, newest first, and the state to store for the next poll."""
    if state is None:
        # A new source starts now: the newest page, no history.
        items, _ = page(None)
        return _dedupe(items), _mark(items, None)
    resume = state.get("resume")
    stop = resume or state
    seen = set(stop.get("seen", []))
    newest = _time(stop["newest"]) if stop.get("newest") else None
    api_cursor = resume["page"] if resume else None
    collected: list[_Item] = []
    reached = False
    for _ in range(MAX_PAGES):
        items, next_cursor = page(api_cursor)
        for item in items:
            if item.uri in seen or (newest and item.indexed_at < newest - STOP_SLACK):
                reached = True
                break
            collected.append(item)
        if reached or not items or not next_cursor:
            reached = True
            break
        api_cursor = next_cursor
    collected = _dedupe(collected)
    # While catching up, the top marker set when the burst began stays in place.
    top = {k: v for k, v in state.items() if k != "resume"} if resume else _mark(collected, state)
    if not reached:
        top = {**(top or {}), "resume": {"page": api_cursor, **_marker(stop)}}
    return collected, top


def _dedupe(items: list[_Item]) -> list[_Item]:
    found: dict[str, _Item] = {}
    for item in items:
        found.setdefault(item.uri, item)
    return list(found.values())


def _mark(items: list[_Item], previous: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stop marker after items (newest first) on top of previous."""
    if not items:
        return _marker(previous) if previous else None
    old = previous or {}
    uris = [i.uri for i in items]
    seen = uris + [u for u in old.get("seen", []) if u not in set(uris)]
    newest = max(i.indexed_at for i in items)
    if old.get("newest"):
        newest = max(newest, _time(old["newest"]))
    return {"seen": seen[:SEEN_KEPT], "newest": newest.isoformat()}


def _marker(state: dict[str, Any]) -> dict[str, Any]:
    return {"seen": list(state.get("seen", [])), "newest": state.get("newest")}


def _load_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        state = json.loads(cursor)
        if not isinstance(state, dict) or not isinstance(state.get("seen", []), list):
            raise ValueError
        if state.get("newest"):
            _time(state["newest"])
        resume = state.get("resume")
        if resume is not None and not (isinstance(resume, dict) and resume.get("page")):
            raise ValueError
    except (ValueError, MentionError):
        raise SourceError("The stored Bluesky cursor is unreadable; reset the source.") from None
    return state


def _dump_cursor(state: dict[str, Any] | None) -> str | None:
    return json.dumps(state, separators=(",", ":")) if state else None


def _is_post(record: Any) -> bool:
    return getattr(record, "py_type", None) == "app.bsky.feed.post" or (
        isinstance(record, dict) and record.get("$type") == "app.bsky.feed.post"
    )


def record_field(record: Any, name: str, json_name: str) -> Any:
    if isinstance(record, dict):
        return record.get(json_name)
    return getattr(record, name, None)


def _mention(
    uri: str, author: Any, record: Any, indexed_at: datetime, reason: str | None = None
) -> Mention:
    """A post (its at:// uri, author view and app.bsky.feed.post record) as a Mention.

    A follower count that cannot be stored is dropped or capped, and a post with no text
    (images only) keeps an empty text.
    """
    did = author.did
    handle = (author.handle or "").lower()
    if not handle or handle == "handle.invalid":
        handle = did  # an unverified handle could be anyone's; the DID is the account
    with contextlib.suppress(ValueError):  # odd but real handles still get in
        handle = normalize_handle("bluesky", handle)
    reply = record_field(record, "reply", "reply")
    parent = record_field(reply, "parent", "parent") if reply else None
    langs = record_field(record, "langs", "langs") or []
    return Mention(
        network="bluesky",
        external_id=uri,
        author_handle=handle,
        author_name=author.display_name or handle,
        author_followers=fetched_followers(getattr(author, "followers_count", None)),
        author_id=did,
        text=record_field(record, "text", "text") or "",
        url=f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}",
        created_at=_created(record_field(record, "created_at", "createdAt"), indexed_at),
        in_reply_to=record_field(parent, "uri", "uri") if parent else None,
        language=langs[0] if langs else None,
        extra={"reason": reason} if reason else {},
    )


def _created(created_at: Any, indexed: datetime) -> datetime:
    """When the post was written: its createdAt, unless that is unreadable or later than
    the server indexed it (clients set createdAt themselves; a post dated in the future
    would sit on top of the inbox for ever, so the server's clock wins)."""
    try:
        created = parse_time(created_at)
    except MentionError:
        return indexed
    return indexed if created > indexed + timedelta(minutes=5) else created


def _time(value: Any) -> datetime:
    return parse_time(value)


def source_error(exc: AtProtocolError, host: str, signed_in: bool) -> SourceError:
    if isinstance(exc, RateLimitExceededError):
        now = datetime.now(UTC)
        retry_at = exc.reset_at
        if retry_at is None and exc.retry_after is not None:
            retry_at = now + timedelta(seconds=exc.retry_after)
        return RateLimited(
            f"{host} asks us to slow down; polling resumes later.",
            max(retry_at or now + DEFAULT_BACKOFF, now),
        )
    detail = error_detail(exc)
    if isinstance(exc, UnauthorizedError) and not signed_in:
        return SourceError(
            f"{host} wants an account for this{detail}: set a handle and app password, "
            "or use the public service https://public.api.bsky.app."
        )
    if isinstance(exc, UnauthorizedError):
        return SourceError(
            f"{host} refused the handle or app password{detail}: check them, and use an "
            "app password (Settings → Privacy and security → App passwords)."
        )
    if isinstance(exc, LoginRequiredError):
        return SourceError("Bluesky needs a handle and app password for this.")
    if isinstance(exc, BadRequestError):
        return SourceError(f"{host} rejected the request{detail}.")
    if isinstance(exc, NetworkError) and exc.response is None:
        return SourceError(f"Could not reach {host}: the network or the service is down.")
    if isinstance(exc, RequestErrorBase) and exc.response is not None:
        return SourceError(f"{host} answered with an error ({exc.response.status_code}){detail}.")
    return SourceError(f"{host} sent a reply we could not read.")


def error_detail(exc: AtProtocolError) -> str:
    content = exc.response.content if isinstance(exc, RequestErrorBase) and exc.response else None
    if isinstance(content, XrpcError):
        message = f"{content.error}: {content.message}" if content.message else content.error
        return f" ({message[:200]})"
    return ""
