"""The normalized mention: what every connector yields and `crm mentions import` reads.

One JSON object per line in import files (see DESIGN.md, "Normalized mention"). Fields
this module does not know are kept in `extra`, never dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from social.text import unstorable

NETWORKS = ("x", "mastodon", "bluesky", "rss", "webhook", "demo", "import")
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
    return when.astimezone(UTC)


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
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise MentionError("text is missing")
    if len(text) > TEXT_LIMIT:
        raise MentionError(f"text is longer than {TEXT_LIMIT} characters")
    if problem := unstorable(text):
        raise MentionError(f"text {problem}")
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
        extra={} if data.keys() <= KNOWN else {k: v for k, v in data.items() if k not in KNOWN},
    )


def from_line(line: str, default_network: str | None = None) -> Mention:
    """Parse one line of an import file. :raise MentionError:"""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise MentionError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    return from_json(data, default_network)


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
