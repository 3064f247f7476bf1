"""The audit log: the one way a change is recorded (record, called by the service that
makes the change, in its transaction), and the pages admins read it in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import AuditEvent, User
from webapp.models.base import utcnow
from webapp.services.permissions import require

PAGE_SIZE = 50
SYSTEM = "The system"
# Fields whose values never enter the log: only that they changed.
SECRET_FIELDS = frozenset(
    {
        "password",
        "password_hash",
        "secret",
        "token",
        "token_hash",
        "key_hash",
        "session_key",
        "bearer_token",
        "access_token",
    }
)
HIDDEN = "(hidden)"
# What each action says in the log, after the actor's name.
ACTION_WORDS = {
    "user.invited": "invited",
    "user.invite_revoked": "revoked the invite of",
    "user.joined": "joined through an invite:",
    "user.reset_link_made": "made a password-reset link for",
    "user.reset_link_revoked": "revoked the password-reset link of",
    "user.password_reset": "set a new password through a reset link:",
    "user.role_changed": "changed the role of",
    "user.removed": "removed",
    "user.disabled": "disabled",
    "user.enabled": "enabled",
    "user.signed_out": "ended every session of",
    "source.deleted": "deleted the source",
    "source.restored": "restored the source",
    "source.purged": "removed for good the source",
    "stage.added": "added the pipeline stage",
    "stage.changed": "changed the pipeline stage",
    "stage.deleted": "deleted the pipeline stage",
}
RECORD_TYPES = ("user", "invite", "source", "stage")


def _plain(value: Any) -> Any:
    """A value as JSON can hold it: times as ISO 8601 text (to the second), anything
    unknown as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def _masked(field: str, value: Any) -> Any:
    return HIDDEN if field in SECRET_FIELDS and value is not None else _plain(value)


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields of after whose value differs in before."""
    return {
        field: [before.get(field), value]
        for field, value in after.items()
        if before.get(field) != value
    }


def record(
    session: Session,
    actor: User | None,
    action: str,
    record_type: str,
    record_id: int | None,
    *,
    label: str = "",
    changes: dict[str, Any] | None = None,
    address: str | None = None,
) -> AuditEvent:
    """Add an entry to the log, in the caller's transaction (it commits with the change).

    actor is who acted (None: the system); its name is copied, and the client address
    is the one the views set on it unless address is given. changes maps fields to
    (before, after); secret fields are masked.
    """
    if address is None and actor is not None:
        address = actor.client_address
    event = AuditEvent(
        at=utcnow(),
        actor_id=actor.id if actor is not None else None,
        actor_name=(actor.name if actor is not None else SYSTEM)[:120],
        action=action,
        record_type=record_type,
        record_id=record_id,
        record_label=(label or "")[:200],
        changes={
            field: [_masked(field, before), _masked(field, after)]
            for field, (before, after) in (changes or {}).items()
        },
        address=address[:64] if address else None,
    )
    session.add(event)
    return event


@dataclass
class AuditPage:
    events: list[AuditEvent]
    next_before: int | None


def events(
    session: Session,
    user: User,
    *,
    before: int | None = None,
    actor_id: int | None = None,
    record_type: str | None = None,
    record_id: int | None = None,
    limit: int = PAGE_SIZE,
) -> AuditPage:
    """Entries newest first, older than the id before, optionally of one actor and of one
    record type (and id). Admins only."""
    require(user, "audit.view")
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    if actor_id is not None:
        query = query.where(AuditEvent.actor_id == actor_id)
    if record_type is not None:
        query = query.where(AuditEvent.record_type == record_type)
        if record_id is not None:
            query = query.where(AuditEvent.record_id == record_id)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(rows, rows[-1].id if more else None)
