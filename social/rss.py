"""RSS and Atom feeds: fetched through the outbound guard, parsed by feedparser, as Mentions.

What belongs here: the one `fetch` the poll job calls for a feed source, the download
(through social.net, which refuses internal addresses and caps size and time, with
redirects followed here by hand so that each hop is a web address and counted), the
cursor (conditional-request validators and the entry ids already seen), and the mapping
of feed entries to `Mention`s with plain-text bodies.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser
import httpx

from social import net
from social.mention import TEXT_LIMIT, FetchResult, Mention, SourceError, fetched_time
from social.text import html_to_text

MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
# Enough for any feed's current entries plus the recent past, small enough for a cursor.
SEEN_LIMIT = 500
USER_AGENT = "FieldCRM feed reader (+https://github.com/fieldcrm)"
ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.1"
_REDIRECTS = {301, 302, 303, 307, 308}


def fetch(
    config: dict[str, Any], cursor: str | None, *, allow_private: bool = False, timeout: float = 10
) -> FetchResult:
    """Entries of the feed at config["url"] not seen before, oldest first.

    allow_private (the OUTBOUND_ALLOW_PRIVATE setting) lets tests reach 127.0.0.1.
    :raise SourceError: saying why, in words.
    """
    url = config.get("url")
    url = url.strip() if isinstance(url, str) else ""
    if not url:
        raise SourceError("A feed source needs a URL.")
    state = _load_cursor(cursor)
    fetched = _download(url, state, allow_private=allow_private, timeout=timeout)
    if fetched.status == 304:
        return FetchResult(mentions=[], cursor=cursor, reads=0)

    # No content-location: feedparser would resolve a plain guid ("42") against the feed
    # URL, dropping its query, and two feeds at one path would share their entries' ids.
    # Links are resolved here instead, against the address the feed came from.
    parsed = feedparser.parse(
        io.BytesIO(fetched.body), response_headers={"content-type": fetched.content_type}
    )
    if not parsed.get("version") and not parsed.entries:
        raise SourceError("That address did not return an RSS or Atom feed.")

    now = datetime.now(UTC)
    seen = set(state["seen"])
    current: dict[str, None] = {}  # ordered set
    mentions: list[Mention] = []
    for entry in parsed.entries:
        external_id = _entry_id(entry, url, fetched.url)
        if external_id in current:
            continue
        current[external_id] = None
        if external_id not in seen and _earlier_id(entry, fetched.url) not in seen:
            mentions.append(_mention(entry, external_id, parsed.feed, url, fetched.url, now))
    mentions.sort(key=lambda m: m.created_at)  # stable: feed order among equal times

    keep = list(current) + [i for i in state["seen"] if i not in current]
    next_cursor = {
        "etag": fetched.etag,
        "modified": fetched.modified,
        "seen": keep[: max(SEEN_LIMIT, len(current))],
    }
    # Feeds cost nothing per read: reads counts billable reads only.
    return FetchResult(mentions=mentions, cursor=json.dumps(next_cursor), reads=0)


def _load_cursor(cursor: str | None) -> dict[str, Any]:
    """The cursor's validators and seen ids; an unreadable cursor counts as none."""
    state: dict[str, Any] = {"etag": None, "modified": None, "seen": []}
    if not cursor:
        return state
    try:
        data = json.loads(cursor)
    except ValueError:
        return state
    if isinstance(data, dict):
        for key in ("etag", "modified"):
            if isinstance(data.get(key), str):
                state[key] = data[key]
        if isinstance(data.get("seen"), list):
            state["seen"] = [str(i) for i in data["seen"]]
    return state


@dataclass
class _Fetched:
    status: int
    url: str
    body: bytes = b""
    content_type: str = ""
    etag: str | None = None
    modified: str | None = None


def _check_url(url: httpx.URL) -> None:
    """Refuse what is no web address before anything is resolved or connected."""
    if url.scheme not in ("http", "https"):
        raise SourceError("A feed URL must start with http:// or https://.")
    if not url.raw_host:
        raise SourceError("The feed URL has no host.")


def _download(url: str, state: dict[str, Any], *, allow_private: bool, timeout: float) -> _Fetched:
    """GET url, following up to MAX_REDIRECTS redirects, each hop checked before connecting."""
    deadline = time.monotonic() + timeout
    try:
        current = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise SourceError("That is not a valid feed URL.") from None
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    if state["etag"]:
        headers["If-None-Match"] = state["etag"]
    if state["modified"]:
        headers["If-Modified-Since"] = state["modified"]
    guard = net.Guard(
        "a feed source", allow_private=allow_private, max_bytes=MAX_BYTES, timeout=timeout
    )
    with net.httpx_client(guard, follow_redirects=False) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            _check_url(current)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SourceError(f"The feed took longer than {timeout:g} s.")
            request = client.build_request(
                "GET", current.copy_with(fragment=None), headers=headers, timeout=remaining
            )
            try:
                response = client.send(request, stream=True)
            except httpx.TimeoutException:
                raise SourceError(f"The feed took longer than {timeout:g} s.") from None
            except httpx.HTTPError as exc:
                raise SourceError(f"Could not reach the feed ({type(exc).__name__}).") from None
            try:
                if response.status_code in _REDIRECTS:
                    current = _next_hop(current, response)
                    continue
                return _result(current, response, deadline, timeout)
            finally:
                response.close()
    raise SourceError(f"The feed redirected more than {MAX_REDIRECTS} times.")


def _next_hop(current: httpx.URL, response: httpx.Response) -> httpx.URL:
    """Where a redirect points, relative to the URL that answered it."""
    location = response.headers.get("location")
    if not location:
        raise SourceError("The feed server redirected without saying where.")
    try:
        return current.join(location)
    except (httpx.InvalidURL, ValueError):
        raise SourceError("The feed server redirected to an invalid URL.") from None


def _result(
    current: httpx.URL, response: httpx.Response, deadline: float, timeout: float
) -> _Fetched:
    """A final (non-redirect) response: not modified, an error, or the capped body."""
    if response.status_code == 304:
        return _Fetched(status=304, url=str(current))
    if not 200 <= response.status_code < 300:
        reason = f" {response.reason_phrase}" if response.reason_phrase else ""
        raise SourceError(f"The feed server answered {response.status_code}{reason}.")
    return _Fetched(
        status=response.status_code,
        url=str(current),
        body=_read(response, deadline, timeout),
        content_type=response.headers.get("content-type", ""),
        etag=response.headers.get("etag"),
        modified=response.headers.get("last-modified"),
    )


def _read(response: httpx.Response, deadline: float, timeout: float) -> bytes:
    """The body (decoded and capped in size by the guarded transport), within the deadline."""
    out = bytearray()
    try:
        for chunk in response.iter_raw():
            out += chunk
            if time.monotonic() > deadline:
                raise SourceError(f"The feed took longer than {timeout:g} s.")
    except httpx.TimeoutException:
        raise SourceError(f"The feed took longer than {timeout:g} s.") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"The feed download failed ({type(exc).__name__}).") from None
    return bytes(out)


def _text_of(value: str | None, detail: dict[str, Any] | None) -> str:
    """Plain text of a feed text construct, whatever its declared type."""
    if not value:
        return ""
    kind = (detail or {}).get("type", "text/html")
    if "html" in kind:
        return html_to_text(value)
    return "\n".join(" ".join(line.split()) for line in value.splitlines() if line.strip())


def _resolved(value: Any, base: str) -> str:
    """value (a link as the feed wrote it) as an absolute URL against base, or "" if none."""
    raw = str(value or "").strip()
    if not raw:
        return ""
    try:
        return str(httpx.URL(base).join(raw))
    except (httpx.InvalidURL, ValueError):
        return raw


def _entry_id(entry: dict[str, Any], feed_url: str, base: str) -> str:
    """A stable id: the entry's guid, else its link, else a hash of title and date.

    A guid that is no URI ("42", "/p/42") is only unique within one feed, so it is keyed
    by the feed URL (query included): two feeds' posts must not stand in for each other.
    A guid that is a URI, and a link (resolved against base, the address the feed came
    from), name the post itself and stand as they are.
    """
    guid = str(entry.get("id") or "").strip()
    raw = guid or _resolved(entry.get("link"), base)
    if raw and ":" in raw:
        external_id = raw
    elif raw:
        external_id = f"{feed_url}#{raw}"
    else:
        when = dict.get(entry, "published") or dict.get(entry, "updated") or ""
        basis = f"{entry.get('title', '')}\n{when}"
        external_id = f"{feed_url}#sha256:{hashlib.sha256(basis.encode()).hexdigest()}"
    if len(external_id) > 512:
        external_id = "sha256:" + hashlib.sha256(external_id.encode()).hexdigest()
    return external_id


def _earlier_id(entry: dict[str, Any], base: str) -> str | None:
    """The id an entry with a guid that is no URI had before guids were keyed by feed:
    the guid resolved against the feed's address. Seen under it, it is not new again."""
    guid = str(entry.get("id") or "").strip()
    if not guid or ":" in guid:
        return None
    earlier = _resolved(guid, base)
    return earlier if len(earlier) <= 512 else None


def _when(entry: dict[str, Any], fallback: datetime) -> datetime:
    """Published, else updated (feedparser gives UTC struct_times), else fetch time; the
    fetch time too for a date later than it (see fetched_time)."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get: feedparser's own get maps a missing updated to published, warning.
        value = dict.get(entry, key)
        if value:
            try:
                when = datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, OSError, ValueError):
                continue
            return fetched_time(when, fallback)
    return fallback


def _web_link(value: Any) -> str | None:
    """value if it is an http(s) URL: a javascript: link must never reach a template."""
    if isinstance(value, str) and value.lower().startswith(("https://", "http://")):
        return value
    return None


def _host(url: str | None) -> str | None:
    """The host of url, or None if it has none or is malformed."""
    if not url:
        return None
    try:
        return httpx.URL(url).host or None
    except (httpx.InvalidURL, ValueError):
        return None


def _mention(
    entry: dict[str, Any],
    external_id: str,
    feed: dict[str, Any],
    feed_url: str,
    base: str,
    now: datetime,
) -> Mention:
    """One feed entry as a Mention. The handle is the site's host (feeds have no
    accounts); the name is the entry's author, else the feed's, else its title."""
    title = _text_of(entry.get("title"), entry.get("title_detail"))
    body = ""
    if entry.get("summary"):
        body = _text_of(entry["summary"], entry.get("summary_detail"))
    elif entry.get("content"):
        body = _text_of(entry["content"][0].get("value"), entry["content"][0])
    if title and body.startswith(title):
        title = ""
    text = "\n\n".join(part for part in (title, body) if part)[:TEXT_LIMIT]
    host = _host(_web_link(_resolved(feed.get("link"), base))) or _host(feed_url) or "feed"
    feed_title = _text_of(feed.get("title"), feed.get("title_detail"))
    detail = entry.get("summary_detail") or entry.get("title_detail") or {}
    language = detail.get("language") or feed.get("language")
    extra = {"feed_url": feed_url}
    if feed_title:
        extra["feed_title"] = feed_title
    return Mention(
        network="rss",
        external_id=external_id,
        author_handle=host.lower()[:320],
        author_name=(entry.get("author") or feed.get("author") or feed_title or host)[:200],
        text=text,
        url=_web_link(_resolved(entry.get("link"), base)),
        created_at=_when(entry, now),
        language=str(language)[:16] if language else None,
        extra=extra,
    )
