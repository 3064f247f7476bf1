"""Social sources: settings per kind, validation, health, the X spend cap, and
recording what one poll brought (mentions and cursor together)."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from social import networks, webhook
from webapp.models import SOURCE_KINDS, Source, User
from webapp.models.base import utcnow
from webapp.services import audit, once
from webapp.services.errors import NotFoundError, ValidationError
from webapp.services.permissions import require

# Which config field carries the secret for the connector, per kind.
SECRET_FIELD = {"x": "bearer_token", "mastodon": "access_token", "bluesky": "password"}
MIN_INTERVAL, MAX_INTERVAL = 60, 24 * 3600
MAX_CAP_USD = 1_000_000
FIELDS = (
    "name",
    "kind",
    "interval_seconds",
    "mode",
    "user_id",
    "username",
    "query",
    "instance",
    "tag",
    "handle",
    "service",
    "url",
    "monthly_cap_usd",
    "secret",
    "batch",
    "network",
)
# The networks a webhook may be set to speak for (see social.webhook), with their names.
WEBHOOK_NETWORKS = {n: networks.label(n) for n in webhook.SPEAKS_FOR}


# X bills per post and per user read; an estimate an admin can override per source.
X_COST_PER_READ_USD = 0.005


# The most reads one X poll can cost (pages of posts and their authors), so a poll that
# would cross the cap is not started.
X_MAX_READS_PER_POLL = 5 * 100 * 2


def month_of(now: datetime) -> str:
    """The calendar month (UTC) X's reads are counted in: \"2026-12\"."""
    return now.strftime("%Y-%m")


def reads_this_month(source: Source, now: datetime | None = None) -> int:
    """Billable reads counted this calendar month (0 once a new month starts)."""
    return source.reads_this_month if source.reads_month == month_of(now or utcnow()) else 0


def spend_usd(source: Source, now: datetime | None = None) -> float:
    """Estimated spend of this source this month."""
    rate = float(source.config.get("cost_per_read_usd", X_COST_PER_READ_USD))
    return round(reads_this_month(source, now) * rate, 2)


def last_poll_words(source: Source) -> str:
    """What the last poll did, in words: "3 fetched, 3 already stored"."""
    if source.last_polled_at is None:
        return "No poll yet"
    if source.last_fetched is None:
        return "Nothing: the poll did not get through (see the last error)"
    if source.last_fetched == 0:
        return "0 fetched: nothing new since the poll before"
    parts = [f"{source.last_fetched} fetched"]
    if source.last_stored:
        parts.append(f"{source.last_stored} stored")
    if source.last_duplicates:
        parts.append(f"{source.last_duplicates} already stored")
    return ", ".join(parts)


def over_cap(source: Source, now: datetime | None = None) -> bool:
    """True when the next poll could take an X source past its monthly cap."""
    if source.kind != "x" or source.monthly_cap_usd is None:
        return False
    rate = float(source.config.get("cost_per_read_usd", X_COST_PER_READ_USD))
    return spend_usd(source, now) + X_MAX_READS_PER_POLL * rate > source.monthly_cap_usd


def _clean(data: dict[str, Any], kind: str, editing: bool) -> tuple[dict, dict[str, str]]:
    errors: dict[str, str] = {}
    out: dict[str, Any] = {"config": {}}
    name = (data.get("name") or "").strip()
    if not name or len(name) > 120:
        errors["name"] = "Give the source a name of at most 120 characters."
    out["name"] = name
    try:
        interval = int(data.get("interval_seconds") or 300)
        if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
            raise ValueError
        out["interval_seconds"] = interval
    except ValueError:
        errors["interval_seconds"] = "Poll every 60 to 86400 seconds."
    config = out["config"]
    mode = (data.get("mode") or "").strip()

    def need(field: str, message: str, limit: int = 500) -> str:
        value = (data.get(field) or "").strip()
        if not value or len(value) > limit:
            errors[field] = message
        return value

    if kind == "x":
        config["mode"] = mode if mode in {"mentions", "search"} else "mentions"
        if config["mode"] == "mentions":
            value = need("user_id", "Enter the numeric id of the X account.", 32)
            if value and not value.isdigit():
                errors["user_id"] = "Enter the numeric id of the X account."
            config["user_id"] = value
        else:
            config["query"] = need("query", "Enter a search query of at most 512 characters.", 512)
        # Our account's @name: X answers from the API only posts that mention it.
        username = (data.get("username") or "").strip().lstrip("@")
        if username and not re.fullmatch(r"\w{1,15}", username, re.ASCII):
            errors["username"] = "Enter the account @name: up to 15 letters, digits or _."
        elif username:
            config["username"] = username
        cap = (data.get("monthly_cap_usd") or "").strip()
        if cap:
            try:
                out["monthly_cap_usd"] = float(cap)
                # nan and inf would pass every comparison the cap is used in.
                if not 0 <= out["monthly_cap_usd"] <= MAX_CAP_USD:
                    raise ValueError
            except ValueError:
                errors["monthly_cap_usd"] = (
                    f"Enter the cap in US dollars, like 25 or 12.50 (at most {MAX_CAP_USD:,})."
                )
        else:
            out["monthly_cap_usd"] = None
    elif kind == "mastodon":
        config["mode"] = mode if mode in {"mentions", "hashtag"} else "mentions"
        config["instance"] = _url(
            need("instance", "Enter the server, like https://mastodon.social."), errors, "instance"
        )
        if config["mode"] == "hashtag":
            config["tag"] = need("tag", "Enter a hashtag.", 100).lstrip("#")
    elif kind == "bluesky":
        config["mode"] = mode if mode in {"notifications", "search"} else "notifications"
        if config["mode"] == "search":
            config["query"] = need("query", "Enter a search query.", 512)
        config["handle"] = (data.get("handle") or "").strip().lstrip("@").lower()
        if config["mode"] == "notifications" and not config["handle"]:
            errors["handle"] = "Enter the account's handle, like brand.bsky.social."
        service = (data.get("service") or "").strip()
        if service:
            config["service"] = _url(service, errors, "service")
    elif kind == "rss":
        config["url"] = _url(need("url", "Enter the feed's address.", 2000), errors, "url")
    elif kind == "webhook":
        network = (data.get("network") or "").strip()
        if network in WEBHOOK_NETWORKS:
            config["network"] = network
        elif network not in ("", "webhook"):
            errors["network"] = "Choose one of the networks listed, or the webhook's own."
    elif kind == "demo":
        config["batch"] = 3
    if kind in SECRET_FIELD:
        # Left empty, the deployment's credential is used where its setting allows.
        secret = (data.get("secret") or "").strip()
        if secret:
            out["secret"] = secret
    return out, errors


def _url(value: str, errors: dict[str, str], field: str) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        errors[field] = "Enter a full address starting with https://."
    return value


def create_source(
    session: Session, user: User, data: dict[str, Any], form_key: str | None = None
) -> tuple[Source, bool]:
    """Add a source, once per form key when one is given; (source, created).

    :raise ValidationError: with a message per field.
    """
    require(user, "source.manage")
    if form_key is not None:
        earlier = once.claim(session, user, form_key, "source")
        if earlier is not None:
            return get_source(session, user, earlier), False
    kind = data.get("kind")
    if kind not in SOURCE_KINDS:
        raise ValidationError({"kind": "Choose what kind of source this is."})
    values, errors = _clean(data, kind, editing=False)
    if errors:
        raise ValidationError(errors)
    source = Source(kind=kind, enabled=True, **values)
    if kind == "webhook":
        source.secret = secrets.token_urlsafe(32)
    session.add(source)
    session.flush()
    if form_key is not None:
        once.made(session, form_key, source.id)
    return source, True


def update_source(session: Session, user: User, source: Source, data: dict[str, Any]) -> Source:
    """Change a source's settings; an empty secret field keeps the stored secret."""
    require(user, "source.manage")
    values, errors = _clean(data, source.kind, editing=True)
    if errors:
        raise ValidationError(errors)
    config = {**values.pop("config")}
    for key in ("cost_per_read_usd",):
        if key in source.config:
            config[key] = source.config[key]
    source.config = config
    for key, value in values.items():
        setattr(source, key, value)
    if source.capped_at and not over_cap(source):
        source.capped_at = None
    session.flush()
    return source


def get_source(session: Session, user: User, source_id: int) -> Source:
    """A live source, for those who may see sources. :raise NotFoundError: unknown or
    deleted."""
    require(user, "source.view")
    source = session.get(Source, source_id)
    if source is None or source.deleted_at is not None:
        raise NotFoundError(f"source {source_id}")
    return source


def set_enabled(session: Session, user: User, source: Source, enabled: bool) -> None:
    """Pause or resume polling."""
    require(user, "source.manage")
    source.enabled = enabled


def delete_source(session: Session, user: User, source: Source) -> None:
    """Soft-delete a source: from now on it is neither polled nor listed, until restored
    within the undo window; the purge removes it later. Its mentions stay either way."""
    require(user, "source.manage")
    if source.deleted_at is not None:
        return
    source.deleted_at = utcnow()
    audit.record(
        session,
        user,
        "source.deleted",
        "source",
        source.id,
        label=source.name,
        changes={"deleted_at": (None, source.deleted_at)},
    )
    session.flush()


def restore_source(session: Session, user: User, source_id: int, undo_window: timedelta) -> Source:
    """Undo a delete made less than undo_window ago; polling goes on as before.

    :raise NotFoundError: unknown, not deleted, or deleted too long ago.
    """
    require(user, "source.manage")
    source = session.get(Source, source_id)
    if source is None or source.deleted_at is None:
        raise NotFoundError(f"deleted source {source_id}")
    if utcnow() - source.deleted_at > undo_window:
        raise NotFoundError(f"deleted source {source_id} is past its undo window")
    before, source.deleted_at = source.deleted_at, None
    audit.record(
        session,
        user,
        "source.restored",
        "source",
        source.id,
        label=source.name,
        changes={"deleted_at": (before, None)},
    )
    session.flush()
    return source


def recently_deleted(session: Session, user: User, undo_window: timedelta) -> list[Source]:
    """Sources deleted within undo_window, which Undo can still bring back; newest first."""
    require(user, "source.view")
    return list(
        session.scalars(
            select(Source)
            .where(Source.deleted_at > utcnow() - undo_window)
            .order_by(Source.deleted_at.desc())
        )
    )


def purge_deleted(session: Session, cutoff: datetime) -> int:
    """Remove for good the sources deleted before cutoff (their mentions stay, without a
    source), each noted in the audit log; how many. The caller commits."""
    rows = list(
        session.scalars(
            select(Source).where(Source.deleted_at.is_not(None), Source.deleted_at < cutoff)
        )
    )
    for source in rows:
        audit.record(session, None, "source.purged", "source", source.id, label=source.name)
        session.delete(source)
    session.flush()
    return len(rows)


def list_sources(session: Session, user: User) -> list[Source]:
    """Every live source, by name."""
    require(user, "source.view")
    return list(
        session.scalars(select(Source).where(Source.deleted_at.is_(None)).order_by(Source.name))
    )


def capped_sources(session: Session) -> list[Source]:
    """Live sources stopped by their spend cap (the inbox says so to everyone; only the
    kind is shown to those who may not see sources)."""
    return list(
        session.scalars(
            select(Source)
            .where(Source.deleted_at.is_(None), Source.capped_at.is_not(None))
            .order_by(Source.name)
        )
    )


def webhook_network(source: Source) -> str | None:
    """The network a webhook source speaks for, or None when its mentions are its own."""
    network = (source.config or {}).get("network")
    return network if network in WEBHOOK_NETWORKS else None
