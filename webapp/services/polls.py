"""Polling a source: which sources are due, the X spend cap, the connector's settings
with the credentials it may be given, and recording what one poll brought (mentions and
cursor together, in the caller's transaction)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from social.mention import FetchResult, RateLimited, SourceError, UsageCapped
from webapp.models import Source
from webapp.models.base import utcnow
from webapp.services import mentions
from webapp.services.sources import SECRET_FIELD, month_of, over_cap


def still_polling(source: Source, since: str | None) -> bool:
    """After "poll now": whether the poll asked for has yet to happen, that is whether the
    source's last poll has not moved past since (its time when the poll was asked for,
    ISO 8601; empty if it had never been polled)."""
    if since is None:
        return False
    if not since:
        return source.last_polled_at is None
    try:
        asked = datetime.fromisoformat(since)
    except ValueError:
        return False
    if asked.tzinfo is None:
        return False
    return source.last_polled_at is not None and source.last_polled_at <= asked


def due_sources(session: Session, now: datetime) -> list[Source]:
    """Enabled sources whose interval has passed and that are not waiting or capped."""
    rows = session.scalars(
        select(Source).where(
            Source.enabled.is_(True),
            Source.deleted_at.is_(None),
            Source.kind != "webhook",
            or_(Source.retry_after.is_(None), Source.retry_after <= now),
        )
    ).all()
    return [
        s
        for s in rows
        if (
            s.last_polled_at is None
            or s.last_polled_at + timedelta(seconds=s.interval_seconds) <= now
        )
        and not over_cap(s, now)
    ]


@dataclass(frozen=True)
class Credentials:
    """Deployment-wide credentials for sources that store none of their own, and the
    hosts each may be sent to (from the app's settings)."""

    x_bearer_token: str | None = None
    mastodon_token: str | None = None
    mastodon_hosts: frozenset[str] = field(default_factory=frozenset)
    bluesky_password: str | None = None
    bluesky_hosts: frozenset[str] = frozenset({"bsky.social"})

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Credentials:
        """The credentials named in the app's config (see webapp/config.py)."""
        return cls(
            x_bearer_token=settings.get("X_BEARER_TOKEN"),
            mastodon_token=settings.get("MASTODON_ACCESS_TOKEN"),
            mastodon_hosts=frozenset(settings.get("MASTODON_TOKEN_HOSTS") or ()),
            bluesky_password=settings.get("BLUESKY_APP_PASSWORD"),
            bluesky_hosts=frozenset(settings.get("BLUESKY_PASSWORD_HOSTS") or ()),
        )


def _host(url: str | None) -> str:
    """The host name of url as the *_HOSTS settings list them: lower case, no dot at the end."""
    raw = (url or "").strip()
    if raw and "://" not in raw:
        raw = f"https://{raw}"
    return (urlsplit(raw).hostname or "").rstrip(".").lower()


def _deployment_secret(
    secret: str | None, host: str, allowed: frozenset[str], names: tuple[str, str]
) -> str | None:
    """secret, if it may be sent to host. :raise SourceError: naming the setting when not."""
    if not secret:
        return None
    if host not in allowed:
        variable, setting = names
        raise SourceError(
            f"{variable} is only sent to the hosts listed in {setting}, and {host or 'this host'}"
            f" is not one: add it to {setting}, or store this source's own credential."
        )
    return secret


def connector_config(source: Source, credentials: Credentials | None = None) -> dict[str, Any]:
    """The connector's settings with its credential filled in (never shown or logged): the
    source's stored secret, else the deployment's, where the source's host may have it.

    :raise SourceError: when the deployment's credential would go to a host its setting
        does not list.
    """
    config = dict(source.config)
    config.pop("token_env", None)
    config.pop("password_env", None)
    field_name = SECRET_FIELD.get(source.kind)
    if field_name and source.secret:
        config[field_name] = source.secret
        return config
    credentials = credentials or Credentials()
    secret = None
    if source.kind == "x":
        # X has one API host, fixed in the connector: the token goes nowhere else.
        secret = credentials.x_bearer_token
    elif source.kind == "mastodon" and config.get("mode", "mentions") == "mentions":
        # Hashtag timelines are public: no deployment token for them.
        secret = _deployment_secret(
            credentials.mastodon_token,
            _host(config.get("instance")),
            credentials.mastodon_hosts,
            ("MASTODON_ACCESS_TOKEN", "MASTODON_TOKEN_HOSTS"),
        )
    elif source.kind == "bluesky" and config.get("handle"):
        secret = _deployment_secret(
            credentials.bluesky_password,
            _host(config.get("service") or "https://bsky.social"),
            credentials.bluesky_hosts,
            ("BLUESKY_APP_PASSWORD", "BLUESKY_PASSWORD_HOSTS"),
        )
    if field_name and secret:
        config[field_name] = secret
    return config


def poll(
    session: Session,
    source: Source,
    fetch: Callable[[dict[str, Any], str | None], FetchResult],
    now: datetime | None = None,
    credentials: Credentials | None = None,
) -> mentions.IngestResult | None:
    """Run one poll: fetch, store the new mentions and advance the cursor together.

    Failures are recorded on the source in words; a rate limit sets retry_after, a usage
    cap marks the source capped. credentials are the deployment's (see connector_config).
    What the poll fetched, stored and found stored already is kept for its health. A
    deleted source is not polled. The caller commits.
    """
    if source.deleted_at is not None:
        return None
    now = now or utcnow()
    source.last_polled_at = now
    source.last_fetched = source.last_stored = source.last_duplicates = None
    if over_cap(source, now):
        source.capped_at = source.capped_at or now
        source.last_error = (
            "Monthly spend cap reached: polling stopped until next month or a higher cap."
        )
        source.last_error_at = now
        return None
    try:
        result = fetch(connector_config(source, credentials), source.cursor)
    except RateLimited as exc:
        source.retry_after = exc.retry_at
        source.last_error = (
            f"Rate limited by the network: next poll after {exc.retry_at:%H:%M} UTC."
        )
        source.last_error_at = now
        return None
    except UsageCapped as exc:
        # Waiting for a rate window does not help: look again in a day.
        source.capped_at = now
        source.retry_after = now + timedelta(days=1)
        source.last_error = f"The account's usage cap is reached: {exc}"
        source.last_error_at = now
        return None
    except SourceError as exc:
        source.last_error = str(exc) or "The poll failed."
        source.last_error_at = now
        return None
    outcome = mentions.ingest(session, result.mentions, source)
    source.last_fetched = len(result.mentions)
    source.last_stored = len(outcome.stored)
    source.last_duplicates = outcome.duplicates
    source.cursor = result.cursor
    month = month_of(now)
    if source.reads_month != month:
        source.reads_month, source.reads_this_month = month, 0
    source.reads_this_month += result.reads
    source.retry_after = None
    source.last_success_at = now
    source.last_error = None
    source.capped_at = now if over_cap(source, now) else None
    return outcome
