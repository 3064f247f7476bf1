"""Activities: logging a call, visit, meeting, email or note exactly once (from a form, or
from a phone's offline outbox) at the time it happened, check-in and check-out of a
visit, a call's outcome, editing and deleting one's own entries, and the timeline."""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from webapp.models import ACTIVITY_KINDS, Activity, Contact, User
from webapp.models.activities import CALL_OUTCOMES, MENTION_KIND
from webapp.models.base import utcnow
from webapp.services.contacts import get_contact
from webapp.services.errors import NotFoundError, ValidationError
from webapp.services.nearby import POOR_ACCURACY_M, Point, parse_accuracy, parse_point
from webapp.services.permissions import require
from webapp.services.values import insert_once, parse_id, text_problem

TIMELINE_PAGE = 20
BODY_LIMIT = 5000
# A phone's clock drifts; an entry logged offline may arrive weeks late, not years.
MAX_FUTURE = timedelta(minutes=10)
MAX_PAST = timedelta(days=90)
# A visit still open this long after check-in is one the rep forgot to check out of.
OPEN_VISIT = timedelta(hours=12)
# The "when" of the log form: how long ago, or the time given in "at".
WHEN_AGO = {
    "now": timedelta(0),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "4h": timedelta(hours=4),
    "yesterday": timedelta(days=1),
}
# Offsets from UTC people live at, in minutes (JavaScript's getTimezoneOffset sign).
MAX_OFFSET_MINUTES = 14 * 60


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
    *,
    outcome: str | None = None,
    position: Point | None = None,
    accuracy_m: float | None = None,
) -> tuple[Activity, bool]:
    """Store an activity once per client UUID; return (activity, created).

    A replay of the same UUID returns the stored activity and changes nothing. A visit
    with a position is a check-in: a contact without coordinates gets the position as
    its own unless the phone was unsure of it (accuracy over POOR_ACCURACY_M).
    :raise ValidationError: bad kind, body, UUID, time or outcome.
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
    if problem := _time_problem(when, now):
        errors["occurred_at"] = problem
    if problem := _outcome_problem(kind, outcome):
        errors["outcome"] = problem
    if position is not None and kind != "visit":
        errors["latitude"] = "Only a visit is stamped with a position."
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
        "outcome": outcome or None,
        "latitude": position.latitude if position else None,
        "longitude": position.longitude if position else None,
        "accuracy_m": accuracy_m if position else None,
    }
    created = insert_once(session, Activity, values, "uuid")
    if created is None:
        # The same form or entry arrived twice at once (a double tap, the page and the
        # service worker): the other request stored it, so this one answers with that.
        return log_activity(
            session,
            user,
            contact,
            kind,
            body,
            key,
            occurred_at,
            outcome=outcome,
            position=position,
            accuracy_m=accuracy_m,
        )
    if position is not None:
        _locate(contact, position, accuracy_m, now)
    return created, True


def _locate(contact: Contact, position: Point, accuracy_m: float | None, now: datetime) -> None:
    """Give a contact without coordinates those of a check-in the phone was sure of."""
    if contact.latitude is not None or accuracy_m is None or accuracy_m > POOR_ACCURACY_M:
        return
    contact.latitude, contact.longitude = position.latitude, position.longitude
    contact.located_at = now


def _time_problem(when: datetime, now: datetime) -> str | None:
    if when.tzinfo is None:
        return "Give the time with its time zone."
    if when > now + MAX_FUTURE:
        return "That time is in the future: check the phone's clock, then fix the time."
    if when < now - MAX_PAST:
        return f"That is more than {MAX_PAST.days} days ago: fix the time."
    return None


def _outcome_problem(kind: object, outcome: object) -> str | None:
    if outcome is None or outcome == "":
        return None
    if kind != "call":
        return "Only a call has an outcome."
    if not isinstance(outcome, str) or outcome not in CALL_OUTCOMES:
        return "Choose reached, no answer or voicemail."
    return None


def parse_when(
    choice: str | None, at: str | None = None, offset: str | None = None
) -> datetime | None:
    """The time the log form says an entry happened: None for now, a moment ago
    ("15m", "1h", "yesterday", … of WHEN_AGO), or "at" a local date and time
    (YYYY-MM-DDTHH:MM, as a datetime-local input sends it) at offset minutes behind UTC
    (as JavaScript's getTimezoneOffset says; UTC when not given).

    :raise ValidationError: an unknown choice, or an unreadable time or offset.
    """
    if choice in (None, "", "now"):
        return None
    if choice in WHEN_AGO:
        return utcnow() - WHEN_AGO[choice]
    if choice != "at":
        raise ValidationError({"occurred_at": "Choose when it happened from the list."})
    minutes = 0
    if offset not in (None, ""):
        text = str(offset).strip()
        digits = text.removeprefix("-")
        if not digits.isascii() or not digits.isdigit() or abs(int(digits)) > MAX_OFFSET_MINUTES:
            raise ValidationError({"occurred_at": "The time zone is unreadable: reload the page."})
        minutes = int(text)
    try:
        local = datetime.strptime(str(at or "").strip()[:16], "%Y-%m-%dT%H:%M")
    except ValueError:
        raise ValidationError({"occurred_at": "Give the date and time it happened."}) from None
    return (local + timedelta(minutes=minutes)).replace(tzinfo=UTC)


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
    body, occurred_at; a check-in also latitude, longitude, accuracy_m) once per UUID;
    return (activity, created).

    It keeps the time the entry was made (occurred_at, ISO 8601 with a zone), within
    MAX_FUTURE and MAX_PAST of now. A replay by its author answers with the stored
    activity, even when the contact was deleted since: the phone only missed the first
    answer, and must not keep the entry as failed.
    :raise ValidationError: bad UUID, contact id, kind, body, time or position.
    :raise NotFoundError: the contact is unknown or deleted.
    :raise PermissionDenied: the user may not log on this contact.
    """
    key = _clean_uuid(entry.get("uuid"))
    target = _contact_id(entry.get("contact_id"))
    kind, body, occurred_at = entry.get("kind"), entry.get("body"), entry.get("occurred_at")
    existing = session.scalar(select(Activity).where(Activity.uuid == key))
    if existing is not None and existing.author_id == user.id and existing.contact_id == target:
        return existing, False
    position = parse_point(entry.get("latitude"), entry.get("longitude"))
    accuracy = parse_accuracy(entry.get("accuracy_m"))
    contact = get_contact(session, user, target)
    return log_activity(
        session,
        user,
        contact,
        kind,
        body,
        key,
        parse_time(occurred_at),
        outcome=entry.get("outcome"),
        position=position,
        accuracy_m=accuracy,
    )


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
    stmt = select(Activity).where(Activity.contact_id == contact.id, Activity.deleted_at.is_(None))
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


def get_entry(session: Session, user: User, activity_id: int) -> Activity:
    """An entry logged by hand, on a live contact, that user may see.

    :raise NotFoundError: unknown, deleted, a mention, or its contact deleted.
    """
    activity = session.get(Activity, activity_id)
    if activity is None or activity.deleted_at is not None or activity.kind == MENTION_KIND:
        raise NotFoundError(f"activity {activity_id}")
    get_contact(session, user, activity.contact_id)
    require(user, "activity.view", activity)
    return activity


def open_visit(session: Session, user: User, contact: Contact) -> Activity | None:
    """The user's visit to contact that is still checked in (within OPEN_VISIT), if any."""
    stmt = (
        select(Activity)
        .where(
            Activity.contact_id == contact.id,
            Activity.author_id == user.id,
            Activity.kind == "visit",
            Activity.ended_at.is_(None),
            Activity.deleted_at.is_(None),
            Activity.occurred_at > utcnow() - OPEN_VISIT,
        )
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def check_out(session: Session, user: User, activity: Activity, at: datetime | None = None) -> bool:
    """End a visit now (or at `at`, the tap on a phone with no signal); False when it had
    ended already (a second tap, or a replay, changes nothing).

    :raise PermissionDenied: not the user's to change. :raise ValidationError: not a visit,
        or `at` in the future or too long ago.
    """
    require(user, "activity.edit", activity)
    if activity.kind != "visit":
        raise ValidationError({"kind": "Only a visit is checked out of."})
    if activity.ended_at is not None:
        return False
    if at is not None and (problem := _time_problem(at, utcnow())):
        raise ValidationError({"ended_at": problem})
    # A phone's clock ahead of the server's may have stamped the check-in a little later.
    activity.ended_at = max(at or utcnow(), activity.occurred_at)
    return True


def check_out_synced(session: Session, user: User, entry: dict[str, Any]) -> Activity:
    """A check-out sent from a phone's outbox (uuid, visit_uuid: the visit's own UUID,
    ended_at): the user's visit ended at that time, once (a replay keeps the first).

    :raise ValidationError: bad UUIDs or time, not a visit. :raise NotFoundError: no such
        visit of the user's (deleted, or never stored). :raise PermissionDenied:
    """
    _clean_uuid(entry.get("uuid"))
    try:
        visit_key = _clean_uuid(entry.get("visit_uuid"))
    except ValidationError:
        raise ValidationError({"visit_uuid": "Say which visit this check-out ends."}) from None
    try:
        ended_at = parse_time(entry.get("ended_at"))
    except ValidationError as exc:
        raise ValidationError({"ended_at": exc.errors["occurred_at"]}) from None
    visit = session.scalar(
        select(Activity).where(
            Activity.uuid == visit_key,
            Activity.author_id == user.id,
            Activity.deleted_at.is_(None),
        )
    )
    if visit is None:
        raise NotFoundError("That visit is not stored, or was deleted.")
    check_out(session, user, visit, ended_at)
    return visit


def set_outcome(session: Session, user: User, activity: Activity, outcome: object) -> None:
    """Say how a call went (one of CALL_OUTCOMES), or nothing ("").

    :raise PermissionDenied: not the user's. :raise ValidationError: not a call, or no outcome.
    """
    require(user, "activity.edit", activity)
    if problem := _outcome_problem(activity.kind, outcome):
        raise ValidationError({"outcome": problem})
    activity.outcome = outcome or None


def edit_activity(
    session: Session,
    user: User,
    activity: Activity,
    body: str | None,
    occurred_at: datetime | None,
    outcome: str | None = None,
) -> bool:
    """Change an entry's text, time (None keeps it) and a call's outcome; marks it edited
    when anything changed, and returns whether it did.

    :raise PermissionDenied: not the user's. :raise ValidationError: by field.
    """
    require(user, "activity.edit", activity)
    errors: dict[str, str] = {}
    body = body.strip() if isinstance(body, str) else body
    if problem := text_problem(body, BODY_LIMIT):
        errors["body"] = problem
    elif activity.kind == "note" and not body:
        errors["body"] = "Write the note first."
    when = occurred_at or activity.occurred_at
    if occurred_at is not None and (problem := _time_problem(when, utcnow())):
        errors["occurred_at"] = problem
    elif activity.ended_at is not None and when > activity.ended_at:
        errors["occurred_at"] = "A visit starts before its check-out."
    if problem := _outcome_problem(activity.kind, outcome):
        errors["outcome"] = problem
    if errors:
        raise ValidationError(errors)
    changes = {"body": body or "", "occurred_at": when, "outcome": outcome or None}
    changed = any(getattr(activity, k) != v for k, v in changes.items())
    if changed:
        for k, v in changes.items():
            setattr(activity, k, v)
        activity.edited_at = utcnow()
    return changed


def delete_activity(session: Session, user: User, activity: Activity) -> None:
    """Take an entry off its timeline; kept (so a replay finds it) and restorable.

    :raise PermissionDenied: not the user's.
    """
    require(user, "activity.edit", activity)
    activity.deleted_at = utcnow()


def restore_activity(session: Session, user: User, activity_id: int, window: timedelta) -> Activity:
    """Put back an entry deleted within window.

    :raise NotFoundError: unknown, not deleted, or deleted longer ago.
    :raise PermissionDenied: not the user's.
    """
    activity = session.get(Activity, activity_id)
    if (
        activity is None
        or activity.deleted_at is None
        or activity.deleted_at < utcnow() - window
        or activity.kind == MENTION_KIND
    ):
        raise NotFoundError(f"deleted activity {activity_id}")
    get_contact(session, user, activity.contact_id)
    require(user, "activity.edit", activity)
    activity.deleted_at = None
    return activity
