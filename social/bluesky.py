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

`reply` answers one post from the signed-in account (the same reused session): the
parent and root as strong refs, the author named by a mention facet, and the record
written under a record key made from the reply's key, so a retried attempt meets the
record the first one wrote instead of posting twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from atproto_client import Client, models
from atproto_client.client.session import Session
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
from atproto_client.utils import TextBuilder
from atproto_core.exceptions import AtProtocolError
from pydantic import ValidationError

from social import net, replies
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
_SESSIONS: dict[str, str] = {}


@dataclass(frozen=True)
class _Item:
    uri: str
    indexed_at: datetime
    mention: Mention | None  # None for items we page past but do not keep (likes…)


def prepare() -> None:
    """Build atproto's models of what posting a reply sends and reads, in a process
    about to fork work-horses: each would otherwise build them again (pydantic completes
    a model on its first use), which costs a reply more than its own requests."""
    for model in (
        models.ComAtprotoServerCreateSession.Response,
        models.AppBskyFeedGetPosts.Response,
        models.AppBskyFeedDefs.PostView,
        models.AppBskyFeedPost.Record,
        models.AppBskyFeedPost.ReplyRef,
        models.AppBskyRichtextFacet.Main,
        models.ComAtprotoRepoStrongRef.Main,
        models.ComAtprotoRepoCreateRecord.Data,
        models.ComAtprotoRepoCreateRecord.Response,
        models.ComAtprotoRepoGetRecord.Response,
        models.ComAtprotoRepoListRecords.Response,
    ):
        model.model_rebuild()


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
    service = _service(config, allow_private)
    mode = config.get("mode", "notifications")
    if mode not in ("notifications", "search"):
        raise SourceError(f"Unknown Bluesky mode {mode!r}: use notifications or search.")
    query = str(config.get("query") or "").strip()
    if mode == "search" and not query:
        raise SourceError("Set the search query for this Bluesky source.")
    state = _load_cursor(cursor)
    credentials = _credentials(config, required=mode == "notifications")
    sessions = _SESSIONS if sessions is None else sessions
    key = f"{service}|{credentials[0]}" if credentials else ""
    host = urlsplit(service).netloc

    for attempt in (1, 2):
        active = client or _client(service, allow_private)
        reused = False
        try:
            if credentials and client is None:
                reused = _sign_in(active, credentials, sessions.get(key))
            if mode == "notifications":
                page = _notifications_page(active)
            else:
                page = _search_page(active, query)
            items, new_state = _walk(page, state)
            if credentials and client is None:
                sessions[key] = active.export_session_string()
        except AtProtocolError as exc:
            if reused and attempt == 1 and _session_expired(exc):
                # A stale saved session: forget it and sign in afresh, once.
                sessions.pop(key, None)
                continue
            raise _translate(exc, host, signed_in=bool(credentials)) from None
        except ValidationError:
            raise SourceError(f"{host} sent a reply that is not valid Bluesky JSON.") from None
        finally:
            if client is None:
                active.request.close()
        mentions = [item.mention for item in items if item.mention]
        return FetchResult(mentions=mentions, cursor=_dump_cursor(new_state))
    raise AssertionError("unreachable")  # pragma: no cover


def _client(service: str, allow_private: bool) -> Client:
    """An atproto client for service whose requests all go through the outbound guard."""
    guard = net.Guard("a Bluesky source", allow_private=allow_private, timeout=REQUEST_TIMEOUT)
    # atproto's Request hands its keyword arguments to the httpx.Client it builds.
    request = Request(
        timeout=REQUEST_TIMEOUT, transport=net.httpx_transport(guard), trust_env=False
    )
    return Client(base_url=service, request=request)


def _service(config: dict[str, Any], allow_private: bool) -> str:
    """The service's base URL. :raise SourceError: when it is not one to talk to."""
    raw = str(config.get("service") or DEFAULT_SERVICE).strip().rstrip("/")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError("The Bluesky service must be an address like https://bsky.social.")
    if not net.may_send_credentials(raw, allow_private):
        raise SourceError("The Bluesky service must be an https:// address.")
    return raw


def _credentials(config: dict[str, Any], required: bool) -> tuple[str, str] | None:
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


def _sign_in(client: Client, credentials: tuple[str, str], saved: str | None) -> bool:
    """Sign in, reusing a saved session when there is one; say whether it was reused."""
    if saved:
        try:
            client.login(session_string=saved, fetch_bsky_profile=False)
            return True
        except (AtProtocolError, ValueError):
            pass  # unreadable: fall through to the password
    client.login(credentials[0], credentials[1], fetch_bsky_profile=False)
    return False


def _session_expired(exc: AtProtocolError) -> bool:
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


def _field(record: Any, name: str, json_name: str) -> Any:
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
    reply = _field(record, "reply", "reply")
    parent = _field(reply, "parent", "parent") if reply else None
    langs = _field(record, "langs", "langs") or []
    return Mention(
        network="bluesky",
        external_id=uri,
        author_handle=handle,
        author_name=author.display_name or handle,
        author_followers=fetched_followers(getattr(author, "followers_count", None)),
        author_id=did,
        text=_field(record, "text", "text") or "",
        url=f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}",
        created_at=_created(_field(record, "created_at", "createdAt"), indexed_at),
        in_reply_to=_field(parent, "uri", "uri") if parent else None,
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


def _translate(exc: AtProtocolError, host: str, signed_in: bool) -> SourceError:
    if isinstance(exc, RateLimitExceededError):
        now = datetime.now(UTC)
        retry_at = exc.reset_at
        if retry_at is None and exc.retry_after is not None:
            retry_at = now + timedelta(seconds=exc.retry_after)
        return RateLimited(
            f"{host} asks us to slow down; polling resumes later.",
            max(retry_at or now + DEFAULT_BACKOFF, now),
        )
    detail = _detail(exc)
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


def _detail(exc: AtProtocolError) -> str:
    content = exc.response.content if isinstance(exc, RequestErrorBase) and exc.response else None
    if isinstance(content, XrpcError):
        message = f"{content.error}: {content.message}" if content.message else content.error
        return f" ({message[:200]})"
    return ""


# Replies: answering one post from the signed-in account.

POST = "app.bsky.feed.post"
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
# A reply's record key is a TID made from its key: the time part, which nothing reads
# back, is kept in the past (2023-01-01 plus up to 2^43 microseconds).
_RKEY_EPOCH_US = 1_672_531_200 * 1_000_000
MAX_LANGS = 3  # the lexicon's bound
RECENT = 50  # our newest posts read for an earlier attempt, where record keys are refused
_THREADGATE_RULES = {
    "app.bsky.feed.threadgate#mentionRule": "people the author mentions",
    "app.bsky.feed.threadgate#followingRule": "people the author follows",
    "app.bsky.feed.threadgate#followerRule": "the author's followers",
    "app.bsky.feed.threadgate#listRule": "people on the author's lists",
}


def reply(
    config: dict[str, Any],
    target: replies.Target,
    text: str,
    *,
    key: str,
    sessions: MutableMapping[str, str] | None = None,
    allow_private: bool = False,
) -> replies.Posted:
    """Post text as a reply to the post target names, at most once per key.

    The parent is read first (its cid, the thread's root, whether its author lets us
    reply); the record is written under a record key made from key, so a retry after an
    attempt whose answer was lost collides with the record already written, which is then
    read back and returned. Signs in as fetch does, reusing the saved session.
    :raise ReplyError: NotAllowed, TooLong, RateLimited, Unavailable or Rejected.
    """
    try:
        service = _service(config, allow_private)
        credentials = _credentials(config, required=True)
    except SourceError as exc:
        raise replies.Rejected(str(exc)) from None
    assert credentials is not None
    if not _is_post_uri(target.external_id):
        raise replies.Rejected("This Bluesky mention has no post to reply to.")
    sessions = _SESSIONS if sessions is None else sessions
    session_key = f"{service}|{credentials[0]}"
    host = urlsplit(service).netloc
    for attempt in (1, 2):
        client = _client(service, allow_private)
        reused = False
        try:
            reused = _sign_in(client, credentials, sessions.get(session_key))
            # Kept at once: a reply that fails after sign-in is retried without another.
            sessions[session_key] = client.export_session_string()
            session = Session.decode(sessions[session_key])
            posted = _reply(client, session, config, target, text, key)
            sessions[session_key] = client.export_session_string()  # refreshed, maybe
            return posted
        except AtProtocolError as exc:
            if reused and attempt == 1 and _session_expired(exc):
                sessions.pop(session_key, None)
                continue
            raise _reply_error(exc, host) from None
        except ValidationError:
            raise replies.Unavailable(
                f"{host} sent a reply that is not valid Bluesky JSON."
            ) from None
        except httpx.TransportError:
            # atproto passes on httpx's protocol errors (an answer cut off) as they are.
            raise replies.Unavailable(
                f"Could not reach {host}; the reply is tried again."
            ) from None
        except SourceError as exc:
            raise replies.refused(exc) from None
        finally:
            client.request.close()
    raise AssertionError("unreachable")  # pragma: no cover


def _is_post_uri(uri: str) -> bool:
    repo, _, rkey = uri.removeprefix("at://").partition(f"/{POST}/")
    return uri.startswith("at://") and bool(repo) and bool(rkey) and "/" not in rkey


def reply_rkey(key: str, parent_uri: str, did: str) -> str:
    """The record key of one reply: a TID (the record key posts use) made from the reply's
    key, the post answered and our account, the same at every attempt."""
    seed = hashlib.sha256(f"{key}\n{parent_uri}\n{did}".encode()).digest()
    bits = int.from_bytes(seed[:8], "big")
    value = ((_RKEY_EPOCH_US + (bits >> 21)) << 10) | (bits & 0x3FF)
    return "".join(TID_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def _reply(
    client: Client,
    session: Session,
    config: dict[str, Any],
    target: replies.Target,
    text: str,
    key: str,
) -> replies.Posted:
    """reply, signed in."""
    uri = target.external_id
    found = client.get_posts([uri]).posts
    if not found:
        raise replies.Rejected("The post is gone: deleted, or its author blocks our account.")
    parent = found[0]
    if parent.viewer is not None and parent.viewer.reply_disabled:
        raise replies.NotAllowed(_gated(parent))
    parent_ref = models.ComAtprotoRepoStrongRef.Main(uri=parent.uri, cid=parent.cid)
    thread = _field(parent.record, "reply", "reply")
    root = _field(thread, "root", "root") if thread else None
    root_ref = (
        models.ComAtprotoRepoStrongRef.Main(
            uri=_field(root, "uri", "uri"), cid=_field(root, "cid", "cid")
        )
        if root
        else parent_ref
    )
    handle = parent.author.handle
    named = handle if handle and handle != "handle.invalid" else None
    posted = replies.compose("bluesky", text, target, handle=named) if named else text.strip()
    if replies.graphemes(posted) > replies.BLUESKY_LIMIT:
        raise replies.TooLong(f"Bluesky takes at most {replies.BLUESKY_LIMIT} characters.")
    built = _with_mention(posted, named, parent.author.did)
    rkey = reply_rkey(key, uri, session.did)
    record = models.AppBskyFeedPost.Record(
        created_at=client.get_current_time_iso(),
        text=built.build_text(),
        facets=built.build_facets() or None,
        reply=models.AppBskyFeedPost.ReplyRef(parent=parent_ref, root=root_ref),
        langs=_langs(config, parent.record, target),
    )
    url = _post_url(session, f"at://{session.did}/{POST}/{rkey}")
    data = models.ComAtprotoRepoCreateRecord.Data(
        repo=session.did, collection=POST, rkey=rkey, record=record
    )
    try:
        created = client.com.atproto.repo.create_record(data)
    except AtProtocolError as exc:
        if _rkey_refused(exc):
            return _reply_without_rkey(client, session, record, uri)
        # A record already under our key (a PDS says so with a 500 today, or an explicit
        # error): the first attempt went through, and its record is ours to return.
        existing = _existing(client, session.did, rkey, uri) if _may_exist(exc) else None
        if existing is None:
            raise
        return replies.Posted(external_id=existing, url=url)
    return replies.Posted(external_id=created.uri, url=url)


def _rkey_refused(exc: AtProtocolError) -> bool:
    """Whether the PDS refuses a record key of our choosing for posts (the reference PDS
    did for a while: "Custom rkeys for post records are not currently supported")."""
    detail = _detail(exc).lower()
    return isinstance(exc, BadRequestError) and "rkey" in detail and "support" in detail


def _reply_without_rkey(
    client: Client, session: Session, record: Any, parent_uri: str
) -> replies.Posted:
    """The reply on a PDS that picks its record keys: our recent posts are read first, and
    a reply to the same post with the same text (an earlier attempt's) is returned."""
    recent = client.com.atproto.repo.list_records(
        models.ComAtprotoRepoListRecords.Params(repo=session.did, collection=POST, limit=RECENT)
    )
    for found in recent.records:
        thread = _field(found.value, "reply", "reply")
        parent = _field(thread, "parent", "parent") if thread else None
        same_text = _field(found.value, "text", "text") == record.text
        if parent and _field(parent, "uri", "uri") == parent_uri and same_text:
            return replies.Posted(external_id=found.uri, url=_post_url(session, found.uri))
    data = models.ComAtprotoRepoCreateRecord.Data(repo=session.did, collection=POST, record=record)
    created = client.com.atproto.repo.create_record(data)
    return replies.Posted(external_id=created.uri, url=_post_url(session, created.uri))


def _post_url(session: Session, uri: str) -> str:
    return f"https://bsky.app/profile/{session.handle}/post/{uri.rsplit('/', 1)[-1]}"


def _with_mention(text: str, handle: str | None, did: str) -> TextBuilder:
    """text with its first @handle as a mention facet, so the author is notified."""
    builder = TextBuilder()
    span = replies.find_mention("bluesky", text, handle) if handle else None
    if span is None:
        return builder.text(text)
    start, end = span
    return builder.text(text[:start]).mention(text[start:end], did).text(text[end:])


def _langs(config: dict[str, Any], parent_record: Any, target: replies.Target) -> list[str]:
    """Our reply's languages: the source's setting, else the post's, else English."""
    chosen = config.get("langs")
    if isinstance(chosen, str):
        chosen = [chosen]
    if not chosen:
        chosen = _field(parent_record, "langs", "langs") or (
            [target.language] if target.language else []
        )
    langs = [str(code) for code in chosen if isinstance(code, str) and 0 < len(code) <= 16]
    return langs[:MAX_LANGS] or ["en"]


def _gated(parent: Any) -> str:
    """Why the author's reply settings keep us out, in words."""
    rules = []
    gate = getattr(parent, "threadgate", None)
    allow = _field(getattr(gate, "record", None), "allow", "allow") if gate else None
    for rule in allow or []:
        kind = getattr(rule, "py_type", None) or (
            rule.get("$type") if isinstance(rule, dict) else None
        )
        if kind in _THREADGATE_RULES:
            rules.append(_THREADGATE_RULES[kind])
    who = f" (only {', '.join(rules)} may reply)" if rules else ""
    if allow is not None and not allow:
        who = " (nobody may reply)"
    return (
        f"The author limits who can reply to this post{who}, and our account is not among "
        "them: Bluesky would hide our reply. Open it on Bluesky to see the thread."
    )


def _may_exist(exc: AtProtocolError) -> bool:
    """Whether a failed create may mean the record is already there."""
    if isinstance(exc, RateLimitExceededError | UnauthorizedError):
        return False
    response = exc.response if isinstance(exc, RequestErrorBase) else None
    return response is not None and (
        response.status_code >= 500 or response.status_code in (400, 409)
    )


def _existing(client: Client, did: str, rkey: str, parent_uri: str) -> str | None:
    """The uri of our record under rkey when it answers parent_uri, else None."""
    try:
        found = client.com.atproto.repo.get_record(
            models.ComAtprotoRepoGetRecord.Params(repo=did, collection=POST, rkey=rkey)
        )
    except AtProtocolError:
        return None
    thread = _field(found.value, "reply", "reply")
    parent = _field(thread, "parent", "parent") if thread else None
    return found.uri if parent and _field(parent, "uri", "uri") == parent_uri else None


def _reply_error(exc: AtProtocolError, host: str) -> replies.ReplyError:
    """atproto's error while replying, as a ReplyError in words."""
    translated = _translate(exc, host, signed_in=True)
    if isinstance(translated, RateLimited):
        return replies.RateLimited(
            f"{host} asks us to slow down; the reply goes out later.", retry_at=translated.retry_at
        )
    response = exc.response if isinstance(exc, RequestErrorBase) else None
    if response is None or response.status_code >= 500:
        return replies.Unavailable(str(translated))
    detail = _detail(exc).lower()
    if "reply" in detail and any(w in detail for w in ("not allowed", "gate", "disabled")):
        return replies.NotAllowed(
            f"{host} does not let our account reply to this post{_detail(exc)}."
        )
    if "too long" in detail or "grapheme" in detail:
        return replies.TooLong(f"{host} says the reply is too long{_detail(exc)}.")
    return replies.Rejected(str(translated))
