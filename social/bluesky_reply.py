"""Bluesky replies: answering one post from the signed-in account.

What belongs here: `reply` (posting an answer from the account social.bluesky signs in
with, reusing its saved session), the parent and root as strong refs, the author named
by a mention facet, the record key made from the reply's key (so a retried attempt
meets the record the first one wrote instead of posting twice, and on a PDS that picks
its own keys our recent posts are read first), the languages of our reply, the author's
threadgate in words, and atproto's errors while posting as ReplyErrors; and `prepare`,
which builds the models a reply uses before a worker forks. Fetching stays in
social.bluesky.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from atproto_client import Client, models
from atproto_client.client.session import Session
from atproto_client.exceptions import (
    BadRequestError,
    RateLimitExceededError,
    RequestErrorBase,
    UnauthorizedError,
)
from atproto_client.utils import TextBuilder
from atproto_core.exceptions import AtProtocolError
from pydantic import ValidationError

from social import replies
from social.bluesky import (
    SESSIONS,
    credentials_of,
    error_detail,
    guarded_client,
    record_field,
    service_url,
    session_expired,
    sign_in,
    source_error,
)
from social.mention import RateLimited, SourceError

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
        service = service_url(config, allow_private)
        credentials = credentials_of(config, required=True)
    except SourceError as exc:
        raise replies.Rejected(str(exc)) from None
    assert credentials is not None
    if not _is_post_uri(target.external_id):
        raise replies.Rejected("This Bluesky mention has no post to reply to.")
    sessions = SESSIONS if sessions is None else sessions
    session_key = f"{service}|{credentials[0]}"
    host = urlsplit(service).netloc
    for attempt in (1, 2):
        client = guarded_client(service, allow_private)
        reused = False
        try:
            reused = sign_in(client, credentials, sessions.get(session_key))
            # Kept at once: a reply that fails after sign-in is retried without another.
            sessions[session_key] = client.export_session_string()
            session = Session.decode(sessions[session_key])
            posted = _reply(client, session, config, target, text, key)
            sessions[session_key] = client.export_session_string()  # refreshed, maybe
            return posted
        except AtProtocolError as exc:
            if reused and attempt == 1 and session_expired(exc):
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
    thread = record_field(parent.record, "reply", "reply")
    root = record_field(thread, "root", "root") if thread else None
    root_ref = (
        models.ComAtprotoRepoStrongRef.Main(
            uri=record_field(root, "uri", "uri"), cid=record_field(root, "cid", "cid")
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
    detail = error_detail(exc).lower()
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
        thread = record_field(found.value, "reply", "reply")
        parent = record_field(thread, "parent", "parent") if thread else None
        same_text = record_field(found.value, "text", "text") == record.text
        if parent and record_field(parent, "uri", "uri") == parent_uri and same_text:
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
        chosen = record_field(parent_record, "langs", "langs") or (
            [target.language] if target.language else []
        )
    langs = [str(code) for code in chosen if isinstance(code, str) and 0 < len(code) <= 16]
    return langs[:MAX_LANGS] or ["en"]


def _gated(parent: Any) -> str:
    """Why the author's reply settings keep us out, in words."""
    rules = []
    gate = getattr(parent, "threadgate", None)
    allow = record_field(getattr(gate, "record", None), "allow", "allow") if gate else None
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
    thread = record_field(found.value, "reply", "reply")
    parent = record_field(thread, "parent", "parent") if thread else None
    return found.uri if parent and record_field(parent, "uri", "uri") == parent_uri else None


def _reply_error(exc: AtProtocolError, host: str) -> replies.ReplyError:
    """atproto's error while replying, as a ReplyError in words."""
    translated = source_error(exc, host, signed_in=True)
    if isinstance(translated, RateLimited):
        return replies.RateLimited(
            f"{host} asks us to slow down; the reply goes out later.", retry_at=translated.retry_at
        )
    response = exc.response if isinstance(exc, RequestErrorBase) else None
    if response is None or response.status_code >= 500:
        return replies.Unavailable(str(translated))
    detail = error_detail(exc).lower()
    if "reply" in detail and any(w in detail for w in ("not allowed", "gate", "disabled")):
        return replies.NotAllowed(
            f"{host} does not let our account reply to this post{error_detail(exc)}."
        )
    if "too long" in detail or "grapheme" in detail:
        return replies.TooLong(f"{host} says the reply is too long{error_detail(exc)}.")
    return replies.Rejected(str(translated))
