"""Handle normalization: the one spelling of an account that contacts and mentions share."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_X = re.compile(r"^[a-z0-9_]{1,15}$")
_MASTODON_USER = re.compile(r"^[a-z0-9_]([a-z0-9_.-]{0,62}[a-z0-9_])?$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_DID = re.compile(r"^did:(plc|web):[a-z0-9._:%-]{1,200}$")


def _from_url(raw: str) -> tuple[str, str] | None:
    """Split a profile URL into (host, first path segment), or None if raw is no URL."""
    if "://" not in raw:
        return None
    parts = urlsplit(raw)
    segments = [s for s in parts.path.split("/") if s]
    if not parts.hostname or not segments:
        raise ValueError("That link does not point at a profile.")
    if parts.hostname.endswith("bsky.app") and segments[0] == "profile" and len(segments) > 1:
        return parts.hostname, segments[1]
    return parts.hostname, segments[0]


def normalize_handle(network: str, raw: str) -> str:
    """Return the canonical handle for network, or raise ValueError saying what is wrong.

    x: lower-case username without '@'. mastodon: user@instance, lower-case.
    bluesky: the lower-case domain handle, or a DID (did:plc:…), which never changes.
    """
    value = raw.strip()
    if not value:
        raise ValueError("Enter a handle.")
    if len(value) > 320:
        raise ValueError("A handle is at most 320 characters.")
    url = _from_url(value)

    if network == "x":
        if url:
            host, value = url
            if host.removeprefix("www.").removeprefix("mobile.") not in {"x.com", "twitter.com"}:
                raise ValueError("That is not an X profile link.")
        value = value.lstrip("@").lower()
        if not _X.match(value):
            raise ValueError("An X handle is 1 to 15 letters, digits or underscores.")
        return value

    if network == "mastodon":
        if url:
            host, user = url
            value = f"{user.lstrip('@')}@{host}"
        value = value.lstrip("@").lower()
        user, sep, host = value.partition("@")
        if not sep or not _DOMAIN.match(host):
            raise ValueError("A Mastodon handle needs its server: user@example.social.")
        if not _MASTODON_USER.match(user):
            raise ValueError("A Mastodon username is letters, digits, dots, dashes or underscores.")
        return f"{user}@{host}"

    if network == "bluesky":
        if url:
            _host, value = url
        value = value.lstrip("@").lower()
        if _DID.match(value) or _DOMAIN.match(value):
            return value
        raise ValueError("A Bluesky handle looks like name.bsky.social.")

    raise ValueError(f"Unknown network {network!r}.")
