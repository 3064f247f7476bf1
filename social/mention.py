"""The normalized mention: what every connector yields and `crm mentions import` reads.

One JSON object per line in import files (see DESIGN.md, "Normalized mention"). Fields
this module does not know are kept in `extra`, never dropped. A line is parsed once: a
typed decode checks the common line in C, and anything it does not take at once goes
through the checks in Python, which say what is wrong. Checked mentions travel to the
workers as MessagePack (pack, unpack), so no worker parses or checks them again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec

from social.networks import NETWORKS
from social.text import unstorable

KNOWN = frozenset(
    {
        "source",
        "external_id",
        "author_handle",
        "author_name",
        "author_followers",
        "author_id",
        "text",
        "url",
        "created_at",
        "in_reply_to",
        "language",
    }
)
TEXT_LIMIT = 100_000
# The author_followers column is a 4-byte integer on PostgreSQL.
FOLLOWERS_MAX = 2**31 - 1
# Deeper than any real post's fields; a JSON value much deeper than this would exhaust
# the stack when it is written out again.
MAX_NESTING = 64
# A post dated later than this past its fetch would sit on top of every list for ever.
FUTURE_SLACK = timedelta(minutes=5)
TOO_DEEP = f"the JSON is nested more than {MAX_NESTING} levels deep"


class MentionError(ValueError):
    """A mention that cannot be stored; the message says which field and why."""


@dataclass(slots=True)
class Mention:
    network: str
    external_id: str
    author_handle: str
    author_name: str
    text: str
    created_at: datetime
    url: str | None = None
    author_followers: int | None = None
    # A stable id of the author where the network has one (X user id, Bluesky DID):
    # handles change, ids do not.
    author_id: str | None = None
    in_reply_to: str | None = None
    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The normalized JSON object for this mention (extra fields included)."""
        data = {
            **self.extra,
            "source": self.network,
            "external_id": self.external_id,
            "author_handle": self.author_handle,
            "author_name": self.author_name,
            "author_followers": self.author_followers,
            "author_id": self.author_id,
            "text": self.text,
            "url": self.url,
            "created_at": self.created_at.isoformat(),
            "in_reply_to": self.in_reply_to,
            "language": self.language,
        }
        return {k: v for k, v in data.items() if v is not None}


def _string(
    data: dict[str, Any], name: str, required: bool = True, limit: int = 2000
) -> str | None:
    value = data.get(name)
    if type(value) is str and value and len(value) <= limit and not unstorable(value):
        return value  # the common case, decided at once
    if value is None or value == "":
        if required:
            raise MentionError(f"{name} is missing")
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise MentionError(f"{name} must be a string")
    value = str(value)
    if len(value) > limit:
        raise MentionError(f"{name} is longer than {limit} characters")
    if problem := unstorable(value):
        raise MentionError(f"{name} {problem}")
    return value


def parse_time(value: Any) -> datetime:
    """An ISO 8601 time as an aware UTC datetime. :raise MentionError:"""
    if not isinstance(value, str):
        raise MentionError("created_at must be an ISO 8601 string")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MentionError(f"created_at is not an ISO 8601 time: {value[:40]!r}") from None
    if when.tzinfo is None:
        raise MentionError("created_at needs a time zone (Z or +hh:mm)")
    try:
        return when.astimezone(UTC)
    except OverflowError:
        raise MentionError(
            f"created_at is out of range: {value[:40]!r} falls outside the years 1-9999 in UTC"
        ) from None


def fetched_time(value: Any, fetched_at: datetime) -> datetime:
    """A post's time as a network sent it (an aware datetime or ISO 8601 text), in UTC;
    fetched_at when it is missing, unreadable, outside the years 1-9999 once in UTC, or
    later than fetched_at plus FUTURE_SLACK. For polled posts, where refusing the post
    would fail its poll again at every retry."""
    when: datetime | None = None
    try:
        if isinstance(value, datetime):
            when = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        elif isinstance(value, str):
            when = parse_time(value)
    except (MentionError, OverflowError, ValueError):
        when = None
    if when is None or when > fetched_at + FUTURE_SLACK:
        return fetched_at
    return when


def fetched_followers(value: Any) -> int | None:
    """A follower count as a network sent it, made storable: a whole number from 0,
    capped at FOLLOWERS_MAX; anything else (text, a fraction, a negative) is dropped."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return None
    return min(value, FOLLOWERS_MAX)


def _nested_deeper(value: Any, limit: int) -> bool:
    """Whether value (parsed JSON) nests lists and objects more than limit levels deep."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return False


def from_json(data: Any, default_network: str | None = None) -> Mention:
    """Build a Mention from a normalized JSON object. :raise MentionError: saying why."""
    if not isinstance(data, dict):
        raise MentionError("a mention is a JSON object")
    network = data.get("source") or default_network
    if network not in NETWORKS:
        raise MentionError(f"source must be one of {', '.join(NETWORKS)}")
    followers = data.get("author_followers")
    if followers is not None and (
        not isinstance(followers, int) or isinstance(followers, bool) or followers < 0
    ):
        raise MentionError("author_followers must be a whole number or null")
    if followers is not None and followers > FOLLOWERS_MAX:
        raise MentionError(f"author_followers is larger than {FOLLOWERS_MAX:,}")
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise MentionError("text is missing")
    if len(text) > TEXT_LIMIT:
        raise MentionError(f"text is longer than {TEXT_LIMIT} characters")
    if problem := unstorable(text):
        raise MentionError(f"text {problem}")
    extra = {} if data.keys() <= KNOWN else {k: v for k, v in data.items() if k not in KNOWN}
    if extra and _nested_deeper(extra, MAX_NESTING - 1):
        raise MentionError(TOO_DEEP)
    return Mention(
        network=network,
        external_id=_string(data, "external_id", limit=512),
        author_handle=_string(data, "author_handle", limit=320),
        author_name=_string(data, "author_name", required=False, limit=200) or "",
        author_followers=followers,
        author_id=_string(data, "author_id", required=False, limit=512),
        text=text,
        url=_string(data, "url", required=False),
        created_at=parse_time(data.get("created_at")),
        in_reply_to=_string(data, "in_reply_to", required=False, limit=512),
        language=_string(data, "language", required=False, limit=16),
        extra=extra,
    )


def _text(limit: int) -> Any:
    """A string field as the fast path takes it: not empty, at most limit characters."""
    return Annotated[str, msgspec.Meta(min_length=1, max_length=limit)]


class _Line(msgspec.Struct):
    """The fields of an import line as most lines have them, typed and bounded as
    from_json requires: a line that fits is checked by msgspec's convert, in C. A line
    that does not (a number as an external id, an empty string, a value out of bounds)
    is not refused here but goes through from_json, which accepts what it accepts and
    says what is wrong with the rest."""

    external_id: _text(512)  # type: ignore[valid-type]
    author_handle: _text(320)  # type: ignore[valid-type]
    text: _text(TEXT_LIMIT)  # type: ignore[valid-type]
    created_at: str
    source: str | None = None
    author_name: _text(200) | None = None  # type: ignore[valid-type]
    author_followers: Annotated[int, msgspec.Meta(ge=0, le=FOLLOWERS_MAX)] | None = None
    author_id: _text(512) | None = None  # type: ignore[valid-type]
    url: _text(2000) | None = None  # type: ignore[valid-type]
    in_reply_to: _text(512) | None = None  # type: ignore[valid-type]
    language: _text(16) | None = None  # type: ignore[valid-type]


_decode_line = msgspec.json.Decoder().decode


def _checked_at_once(data: dict[str, Any], default_network: str | None) -> Mention | None:
    """The mention of a line's object when the typed check takes it as it is, else None
    (from_json then decides, and says why it refuses). NUL characters are ruled out
    before (see from_line); msgspec decodes no half surrogate."""
    if not data.keys() <= KNOWN:
        return None  # extra fields: from_json keeps them, bounded in depth
    try:
        line = msgspec.convert(data, _Line)
    except msgspec.ValidationError:
        return None
    network = line.source or default_network
    if network not in NETWORKS or not line.text.strip():
        return None
    return Mention(
        network=network,
        external_id=line.external_id,
        author_handle=line.author_handle,
        author_name=line.author_name or "",
        author_followers=line.author_followers,
        author_id=line.author_id,
        text=line.text,
        url=line.url,
        created_at=parse_time(line.created_at),
        in_reply_to=line.in_reply_to,
        language=line.language,
    )


def from_line(line: str | bytes, default_network: str | None = None) -> Mention:
    """Parse one line of an import file, once. :raise MentionError:"""
    try:
        data = _decode_line(line)
    except (msgspec.DecodeError, RecursionError):
        # Refused (invalid JSON, a half surrogate, deeper than msgspec goes, a number
        # too large for it): Python's parser decides, and says where and why.
        return _from_line_slowly(line, default_network)
    # A NUL in a decoded string can only come from a \u0000 escape in the line (JSON has
    # no raw control characters in strings): such a line gets the per-field checks,
    # which name the field. So does every line in the rare case that it has one.
    if isinstance(data, dict) and "\\u0000" not in (
        line if isinstance(line, str) else line.decode("utf-8", "replace")
    ):
        mention = _checked_at_once(data, default_network)
        if mention is not None:
            return mention
    return from_json(data, default_network)


def _from_line_slowly(line: str | bytes, default_network: str | None) -> Mention:
    """A line msgspec did not decode, parsed by Python's json. :raise MentionError:"""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise MentionError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except UnicodeDecodeError:
        raise MentionError("not valid JSON (the line is not UTF-8)") from None
    except RecursionError:
        raise MentionError(TOO_DEEP) from None
    return from_json(data, default_network)


# Checked mentions as the workers receive them: MessagePack of the Mention fields in
# order (datetimes as MessagePack timestamps), decoded straight into Mention objects.
_packer = msgspec.msgpack.Encoder()
_unpacker = msgspec.msgpack.Decoder(list[Mention])


def pack(mentions: list[Mention]) -> bytes:
    """Checked mentions as bytes for a queued batch (see unpack)."""
    return _packer.encode(mentions)


def unpack(data: bytes) -> list[Mention]:
    """The mentions pack made. :raise MentionError: if data is not such a batch."""
    try:
        return _unpacker.decode(data)
    except msgspec.DecodeError as exc:
        raise MentionError(f"not a batch of checked mentions ({exc})") from None


@dataclass
class FetchResult:
    """What one poll of a source returns: new mentions, the cursor to resume from, and
    how many billable reads the poll cost (X bills per post and user read)."""

    mentions: list[Mention]
    cursor: str | None
    reads: int = 0


class SourceError(Exception):
    """A poll failed; the message is shown to admins on the source, in words."""


class RateLimited(SourceError):
    """The network asks us to wait until retry_at; reschedule, never sleep."""

    def __init__(self, message: str, retry_at: datetime):
        super().__init__(message)
        self.retry_at = retry_at


class UsageCapped(SourceError):
    """The account's usage cap is reached: waiting does not help until the cap resets."""
