"""Mastodon connector: mentions of an account, or a public hashtag, as Mentions.

Everything Mastodon-specific lives here: talking to an instance through Mastodon.py,
paging with min_id, reading statuses (their HTML made plain by social.text), and
translating the library's errors into SourceError / RateLimited; and `reply`, which
answers one status from our account (found on our instance by its URI first) and
translates the errors into ReplyErrors. No Flask, no database.

external_id is the status `uri`, the canonical ActivityPub id minted by the instance
the post was written on (https://origin.host/users/name/statuses/123). It carries
the origin host, as DESIGN.md asks of Mastodon ids, and unlike the numeric `id`
(which each instance assigns locally) it is the same whichever instance we read the
post through, so two configured sources that both see one post store it once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from mastodon import Mastodon
from mastodon.errors import (
    MastodonAPIError,
    MastodonError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)

from social import net, replies
from social.matching import normalize_handle
from social.mention import (
    FetchResult,
    Mention,
    RateLimited,
    SourceError,
    fetched_followers,
    fetched_time,
)
from social.text import html_to_text

PAGE_SIZE = 40  # the most Mastodon returns per page of statuses
MAX_PAGES = 10  # per poll; the cursor advances page by page, so the rest comes next poll
MAX_PARENT_LOOKUPS = 20
REQUEST_TIMEOUT = 20.0
# When a 429 carries no usable reset time, Mastodon's windows are five minutes.
DEFAULT_BACKOFF = timedelta(minutes=5)
_TAG = re.compile(r"^\w{1,100}$")


def fetch(
    config: dict[str, Any],
    cursor: str | None,
    *,
    client: Any = None,
    allow_private: bool = False,
) -> FetchResult:
    """Poll one Mastodon source for mentions newer than cursor (a min_id).

    config: instance (base URL); mode "mentions" (notifications of the account whose
    token is in access_token) or "hashtag" (tag); optional domain (the handle domain of
    local accounts, when it differs from the instance's host) and local (hashtag: this
    instance only). Every request goes through the outbound guard; allow_private lets it
    reach internal addresses (tests and local development only).
    A first poll (cursor None) takes the newest page only: a new source starts now. (If
    that page is empty the cursor stays None, and the next poll is a first poll again.)
    :raise RateLimited: when the instance asks us to wait.
    :raise SourceError: saying in words what went wrong.
    """
    base = _instance(config, allow_private)
    mode = config.get("mode", "mentions")
    if mode not in ("mentions", "hashtag"):
        raise SourceError(f"Unknown Mastodon mode {mode!r}: use mentions or hashtag.")
    own_client = client is None
    if own_client:
        client = _client(base, _token(config, mode), allow_private)
    try:
        if mode == "mentions":
            notifications, cursor = _page_newer(
                lambda **page: client.notifications(types=["mention"], **page), cursor
            )
            statuses = [n.status for n in notifications if n.get("status")]
        else:
            tag = _tag(config)
            local = bool(config.get("local", False))
            statuses, cursor = _page_newer(
                lambda **page: client.timeline_hashtag(tag, local=local, **page), cursor
            )
        parents = _parent_uris(client, statuses)
        domain = config.get("domain")
        now = datetime.now(UTC)
        mentions = [to_mention(s, domain, parents, now) for s in statuses if not s.get("reblog")]
        return FetchResult(mentions=mentions, cursor=cursor)
    except MastodonError as exc:
        raise _translate(exc, base, client) from None
    except (AttributeError, KeyError, TypeError, ValueError):
        # A status without its account or times: say so rather than fail obscurely.
        host = urlsplit(base).netloc
        raise SourceError(f"{host} sent a status we could not read.") from None
    finally:
        if own_client:
            client.session.close()


def _instance(config: dict[str, Any], allow_private: bool) -> str:
    """The instance's base URL. :raise SourceError: when it is not one to talk to."""
    raw = str(config.get("instance") or "").strip().rstrip("/")
    if "://" not in raw and raw:
        raw = f"https://{raw}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError("Set the Mastodon instance, e.g. https://mastodon.social.")
    if not net.may_send_credentials(raw, allow_private):
        raise SourceError("The Mastodon instance must be an https:// address.")
    return raw


def _token(config: dict[str, Any], mode: str) -> str | None:
    """The access token the source is given (its own, or the deployment's)."""
    token = str(config.get("access_token") or "").strip()
    if not token and mode == "mentions":
        raise SourceError(
            "Mastodon mentions need an access token: store one on the source, or set"
            " MASTODON_ACCESS_TOKEN (and list the instance in MASTODON_TOKEN_HOSTS)."
        )
    return token or None


def _tag(config: dict[str, Any]) -> str:
    tag = str(config.get("tag") or "").strip().lstrip("#")
    if not _TAG.match(tag):
        raise SourceError("Set the hashtag to follow: letters, digits or underscores.")
    return tag


def _client(base: str, token: str | None, allow_private: bool) -> Mastodon:
    """A Mastodon.py client for base whose requests all go through the outbound guard."""
    guard = net.Guard("a Mastodon source", allow_private=allow_private, timeout=REQUEST_TIMEOUT)
    # "throw", not the default "wait": a worker must reschedule, never sleep for minutes.
    # version_check_mode="none" spares a request to /api/v1/instance on every poll.
    return Mastodon(
        api_base_url=base,
        access_token=token,
        ratelimit_method="throw",
        version_check_mode="none",
        request_timeout=REQUEST_TIMEOUT,
        session=net.requests_session(guard),
    )


def _page_newer(call: Callable[..., list[Any]], cursor: str | None) -> tuple[list[Any], str | None]:
    """Items newer than cursor, oldest page first, and the id to resume from.

    With min_id Mastodon returns the page immediately above the cursor (newest first
    within it), so walking upward page by page skips nothing, and stopping at
    MAX_PAGES only defers the rest to the next poll.
    """
    if cursor is None:
        page = call(limit=PAGE_SIZE)
        return list(page), str(page[0].id) if page else None
    items: list[Any] = []
    for _ in range(MAX_PAGES):
        page = call(min_id=cursor, limit=PAGE_SIZE)
        if not page:
            break
        items.extend(page)
        cursor = str(page[0].id)
        if len(page) < PAGE_SIZE:
            break
    return items, cursor


def _parent_uris(client: Any, statuses: list[Any]) -> dict[str, str]:
    """Map local in_reply_to ids to the parents' uris, so in_reply_to names the parent
    the way external_id names every post."""
    known = {str(s.id): s.uri for s in statuses}
    wanted = {str(s.in_reply_to_id) for s in statuses if s.get("in_reply_to_id")}
    found: dict[str, str] = {}
    lookups = 0
    for parent_id in sorted(wanted):
        if parent_id in known:
            found[parent_id] = known[parent_id]
            continue
        if lookups >= MAX_PARENT_LOOKUPS:
            continue
        lookups += 1
        try:
            found[parent_id] = client.status(parent_id).uri
        except MastodonRatelimitError:
            # Spend no more of the budget on an optional field; the mentions still go in.
            break
        except (MastodonAPIError, MastodonNetworkError):
            continue  # a deleted or private parent
    return found


def to_mention(
    status: Any,
    domain: str | None,
    parents: dict[str, str] | None = None,
    now: datetime | None = None,
) -> Mention:
    """A Mastodon Status entity (as Mastodon.py returns it) as a Mention.

    An instance's follower count or time that cannot be stored is dropped or replaced by
    now (the fetch time), so one odd status does not fail the poll at every retry. A
    status with no text (media only) keeps an empty text.
    """
    account = status.account
    text = html_to_text(status.get("content") or "")
    if status.get("spoiler_text"):
        # The content warning is part of what was said, and often the angriest part.
        text = f"{status.spoiler_text}\n\n{text}".strip()
    reply_id = status.get("in_reply_to_id")
    return Mention(
        network="mastodon",
        external_id=status.uri,
        author_handle=account_handle(account, domain),
        author_name=account.get("display_name") or account.username,
        author_followers=fetched_followers(account.get("followers_count")),
        author_id=account.get("url") or account.get("uri"),
        text=text,
        url=status.get("url") or status.uri,
        created_at=fetched_time(status.get("created_at"), now or datetime.now(UTC)),
        in_reply_to=(parents or {}).get(str(reply_id)) if reply_id else None,
        language=status.get("language") or None,
    )


def account_handle(account: Any, domain: str | None) -> str:
    """user@instance for an Account: acct has no host for the instance's own users.

    Their host is domain when the source sets one (an instance whose handles use a
    shorter domain than its web address), else the host serving their profile URL.
    """
    acct = str(account.acct)
    if "@" not in acct:
        host = domain or urlsplit(account.get("url") or account.get("uri") or "").hostname
        acct = f"{acct}@{host}"
    try:
        return normalize_handle("mastodon", acct)
    except ValueError:
        # An odd but real handle (an IP-addressed test instance, say) still gets in.
        return acct.lower()


def _translate(exc: MastodonError, base: str, client: Any) -> SourceError:
    """Mastodon.py's error as ours, in words."""
    if isinstance(exc.__context__, SourceError):
        # The guard refused the request (Mastodon.py wraps whatever a request raised).
        return exc.__context__
    host = urlsplit(base).netloc
    if isinstance(exc, MastodonRatelimitError):
        reset = getattr(client, "ratelimit_reset", None)
        now = datetime.now(UTC)
        retry_at = datetime.fromtimestamp(reset, UTC) if reset else now + DEFAULT_BACKOFF
        return RateLimited(
            f"{host} asks us to slow down; polling resumes later.", max(retry_at, now)
        )
    if isinstance(exc, MastodonUnauthorizedError):
        return SourceError(
            f"{host} refused the access token (401): it is wrong, revoked, or for another "
            "instance. Create a new one with the read scope."
        )
    if isinstance(exc, MastodonNotFoundError):
        return SourceError(f"{host} has no such endpoint (404): is the instance address right?")
    if isinstance(exc, MastodonServerError):
        return SourceError(f"{host} had a server error ({_status(exc)}); we will try again.")
    if isinstance(exc, MastodonNetworkError):
        return SourceError(f"Could not reach {host}: the network or the instance is down.")
    if isinstance(exc, MastodonAPIError) and _status(exc) == 403:
        return SourceError(
            f"{host} forbids this (403): the token lacks the read scope, or the instance "
            "requires sign-in for hashtag timelines."
        )
    if isinstance(exc, MastodonAPIError) and _status(exc) is None:
        return SourceError(f"{host} sent a reply that is not valid Mastodon JSON.")
    return SourceError(f"{host} answered with an error ({_status(exc) or 'unknown'}).")


def _status(exc: MastodonError) -> int | None:
    code = exc.args[1] if len(exc.args) > 1 else None
    return code if isinstance(code, int) else None


# Replies: answering one status from our account.

# From most to least public; a reply takes the later of the post's and the setting's.
VISIBILITIES = ("public", "unlisted", "private", "direct")


def reply(
    config: dict[str, Any],
    target: replies.Target,
    text: str,
    *,
    key: str,
    client: Any = None,
    allow_private: bool = False,
) -> replies.Posted:
    """Post text as a reply to the status target names, at most once per key.

    The status is found on our instance by its URI (a search that resolves it), for our
    instance's id of it and its visibility; the reply is never more public than the
    status (direct stays direct, private stays private, unlisted stays unlisted) and names
    the author so they are notified. The idempotency key, made from key and the status
    URI, makes the instance return the reply an earlier attempt posted instead of posting
    it again (Mastodon keeps such keys for an hour).
    :raise ReplyError: NotAllowed, TooLong, RateLimited, Unavailable or Rejected.
    """
    try:
        base = _instance(config, allow_private)
        token = _token(config, "mentions")
    except SourceError as exc:
        raise replies.Rejected(str(exc)) from None
    own = client is None
    if client is None:
        client = _client(base, token, allow_private)
    try:
        status = _resolve(client, target)
        visibility = reply_visibility(status.get("visibility"), config.get("reply_visibility"))
        posted = replies.compose("mastodon", text, target, handle=status.account.acct)
        new = client.status_post(
            posted,
            in_reply_to_id=status.id,
            visibility=visibility,
            idempotency_key=idempotency_key(key, target.external_id),
        )
        return replies.Posted(external_id=new.uri, url=new.get("url") or new.uri)
    except MastodonError as exc:
        raise _reply_error(exc, base, client) from None
    except (AttributeError, KeyError, TypeError):
        host = urlsplit(base).netloc
        raise replies.Unavailable(f"{host} sent a status we could not read.") from None
    finally:
        if own:
            client.session.close()


def idempotency_key(key: str, uri: str) -> str:
    """The Idempotency-Key for one reply: the same for every attempt at it, different for
    two replies (or two deployments' "reply-1" to two posts)."""
    return hashlib.sha256(f"{key}\n{uri}".encode()).hexdigest()


def reply_visibility(post: str | None, setting: str | None = None) -> str:
    """The visibility of a reply to a status of visibility post: never more public than
    it, nor than the source's reply_visibility setting. An unknown one is kept direct."""
    rank = VISIBILITIES.index(post) if post in VISIBILITIES else len(VISIBILITIES) - 1
    if setting in VISIBILITIES:
        rank = max(rank, VISIBILITIES.index(setting))
    return VISIBILITIES[rank]


def _resolve(client: Any, target: replies.Target) -> Any:
    """Our instance's copy of the status target names (searched by URI, resolving it)."""
    uri = target.external_id
    if not uri.startswith(("https://", "http://")):
        raise replies.Rejected("This Mastodon mention has no status URI to reply to.")
    found = client.search_v2(uri, resolve=True, result_type="statuses")
    statuses = list(found.get("statuses") or [])
    for status in statuses:
        if status.get("uri") == uri or status.get("url") == uri:
            return status
    raise replies.Rejected(
        "Our instance cannot find this status: it was deleted, or is not visible to our account."
    )


def _reply_error(exc: MastodonError, base: str, client: Any) -> replies.ReplyError:
    """Mastodon.py's error while replying, as a ReplyError in words."""
    if isinstance(exc.__context__, SourceError):
        return replies.refused(exc.__context__)
    translated = _translate(exc, base, client)
    host = urlsplit(base).netloc
    if isinstance(translated, RateLimited):
        return replies.RateLimited(
            f"{host} asks us to slow down; the reply goes out later.", retry_at=translated.retry_at
        )
    if isinstance(exc, MastodonUnauthorizedError):
        return replies.Rejected(
            f"{host} refused the access token (401): it is wrong or revoked, or lacks the "
            "write:statuses scope."
        )
    if isinstance(exc, MastodonServerError | MastodonNetworkError):
        return replies.Unavailable(str(translated))
    status = _status(exc)
    said = _said(exc)
    if status == 422 and "limit" in said.lower():
        return replies.TooLong(f"{host} says the reply is too long ({said}).")
    if status == 403:
        return replies.NotAllowed(
            f"{host} does not let our account reply to this status (403): the author may "
            f"block us, or our account is limited.{f' ({said})' if said else ''}"
        )
    if status is None:
        return replies.Unavailable(f"{host} sent a reply that is not valid Mastodon JSON.")
    return replies.Rejected(f"{host} refused the reply ({status}){f': {said}' if said else ''}.")


def _said(exc: MastodonError) -> str:
    """The instance's own words (Mastodon.py puts its error text third in the args)."""
    words = exc.args[3] if len(exc.args) > 3 else ""
    return str(words or "")[:300]
