"""Activities: logging a call, visit, meeting, email or note exactly once (from a form, or
from a phone's offline outbox), and the timeline."""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from webapp.models import ACTIVITY_KINDS, Activity, Contact, User
from webapp.models.base import utcnow
from webapp.services.contacts import get_contact
from webapp.services.errors import ValidationError
from webapp.services.permissions import require
from webapp.services.values import insert_once, parse_id, text_problem

TIMELINE_PAGE = 20
BODY_LIMIT = 5000
# A phone's clock drifts; an entry logged offline may arrive weeks late, not years.
MAX_FUTURE = timedelta(minutes=10)
MAX_PAST = timedelta(days=90)


def _clean_uuid(value: str | None) -> str:
    try:
        return str(uuidlib.UUID(str(value)))
    except ValueError:
        raise ValidationError({"uuid": "This form is out of date: reload the page."}) from None


def log_activity(
    session: Session,
    user: User,
    contact: Contact,
    kind: str | None,
    body: str | None,
    client_uuid: str | None,
    occurred_at: datetime | None = None,
) -> tuple[Activity, bool]:
    """Store an activity once per client UUID; return (activity, created).

    A replay of the same UUID returns the stored activity and changes nothing.
    :raise ValidationError: bad kind, body, UUID or time.
    """
    require(user, "activity.create", contact)
    key = _clean_uuid(client_uuid)
    existing = session.scalar(select(Activity).where(Activity.uuid == key))
    if existing is not None:
        if existing.contact_id != contact.id or existing.author_id != user.id:
            raise ValidationError({"uuid": "This entry was already stored elsewhere."})
        return existing, False

    errors: dict[str, str] = {}
    if not isinstance(kind, str) or kind not in ACTIVITY_KINDS:
        errors["kind"] = "Choose call, visit, meeting, email or note."
    body = body.strip() if isinstance(body, str) else body
    if problem := text_problem(body, BODY_LIMIT):
        errors["body"] = problem
    elif kind == "note" and not body:
        errors["body"] = "Write the note first."
    now = utcnow()
    when = occurred_at or now
    if when.tzinfo is None:
        errors["occurred_at"] = "Give the time with its time zone."
    elif when > now + MAX_FUTURE:
        errors["occurred_at"] = (
            "That time is in the future: check the phone's clock, then fix the time."
        )
    elif when < now - MAX_PAST:
        errors["occurred_at"] = f"That is more than {MAX_PAST.days} days ago: fix the time."
    if errors:
        raise ValidationError(errors)

    values = {
        "uuid": key,
        "contact_id": contact.id,
        "author_id": user.id,
        "kind": kind,
        "body": body or "",
        "occurred_at": when,
        "created_at": now,
    }
    created = insert_once(session, Activity, values, "uuid")
    if created is None:
        # The same form or entry arrived twice at once (a double tap, the page and the
        # service worker): the other request stored it, so this one answers with that.
        return log_activity(session, user, contact, kind, body, key, occurred_at)
    return created, True


def parse_time(value: object) -> datetime:
    """An ISO 8601 time with its zone, as a phone sends the moment an entry was made.

    :raise ValidationError: missing, unreadable or without a zone.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({"occurred_at": "Give the time the entry was made."})
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(
            {"occurred_at": "Give the time as an ISO 8601 date and time with its zone."}
        ) from None
    if when.tzinfo is None:
        raise ValidationError({"occurred_at": "Give the time with its time zone."})
    return when


def _contact_id(value: object) -> int:
    contact_id = parse_id(value)
    if contact_id is None:
        raise ValidationError({"contact_id": "Say which contact this entry is for."})
    return contact_id


def log_synced(session: Session, user: User, entry: dict[str, Any]) -> tuple[Activity, bool]:
    """Store an entry sent from a phone's outbox (a JSON object: uuid, contact_id, kind,
    body, occurred_at) once per UUID; return (activity, created).

    It keeps the time the entry was made (occurred_at, ISO 8601 with a zone), within
    MAX_FUTURE and MAX_PAST of now. A replay by its author answers with the stored
    activity, even when the contact was deleted since: the phone only missed the first
    answer, and must not keep the entry as failed.
    :raise ValidationError: bad UUID, contact id, kind, body or time.
    :raise NotFoundError: the contact is unknown or deleted.
    :raise PermissionDenied: the user may not log on this contact.
    """
    key = _clean_uuid(entry.get("uuid"))
    target = _contact_id(entry.get("contact_id"))
    kind, body, occurred_at = entry.get("kind"), entry.get("body"), entry.get("occurred_at")
    existing = session.scalar(select(Activity).where(Activity.uuid == key))
    if existing is not None and existing.author_id == user.id and existing.contact_id == target:
        return existing, False
    contact = get_contact(session, user, target)
    return log_activity(session, user, contact, kind, body, key, parse_time(occurred_at))


@dataclass
class TimelinePage:
    entries: list[Activity]
    next_before: int | None


def timeline(
    session: Session,
    user: User,
    contact: Contact,
    before: int | None = None,
    limit: int = TIMELINE_PAGE,
) -> TimelinePage:
    """A page of the contact's timeline, newest first; before is the last id shown."""
    require(user, "activity.view", contact)
    stmt = select(Activity).where(Activity.contact_id == contact.id)
    if before is not None:
        last = session.get(Activity, before)
        if last is not None and last.contact_id == contact.id:
            stmt = stmt.where(
                tuple_(Activity.occurred_at, Activity.id) < (last.occurred_at, last.id)
            )
    stmt = stmt.order_by(Activity.occurred_at.desc(), Activity.id.desc()).limit(limit + 1)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return TimelinePage(rows, rows[-1].id if more else None)


def new_uuid() -> str:
    """A fresh client UUID, for a form rendered by the server."""
    return str(uuidlib.uuid4())
