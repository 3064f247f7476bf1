"""Tasks: made once per client UUID (a form, a follow-up chip, a phone with no signal),
due at a time in the zone it was given in, edited, done and undone, cancelled, and the
assignee's list grouped as overdue, today, upcoming and done."""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, joinedload

from webapp.models import Deal, Task, User
from webapp.models.base import utcnow
from webapp.models.tasks import DONE, OPEN, TASK_KINDS
from webapp.services.contacts import get_contact
from webapp.services.errors import NotFoundError, ValidationError
from webapp.services.permissions import can, require
from webapp.services.values import insert_once, parse_id, text_problem

FIELDS = ("title", "notes", "kind", "due_date", "due_time", "time_zone", "assignee_id")
TITLE_LIMIT = 200
NOTES_LIMIT = 5000
# Follow-ups are due at the start of a working day, in the rep's own zone.
FOLLOW_UP_HOUR = time(9, 0)
FOLLOW_UPS = {"tomorrow": ("Tomorrow", 1), "3days": ("In 3 days", 3), "nextweek": ("Next week", 7)}
# A phone's clock drifts, and a tick may wait offline for days, not years.
MAX_DONE_FUTURE = timedelta(minutes=10)
MAX_DONE_PAST = timedelta(days=90)
LIST_LIMIT = 200
# A group of the task list shows this many at a time; scrolling on loads the next.
GROUP_LIMIT = 25
# The task list's groups of open tasks, with their headings.
GROUPS = {"overdue": "Overdue", "today": "Today", "upcoming": "Upcoming"}
DONE_LIMIT = 20
# Roles whose people have tasks of their own (the assignee picker).
ASSIGNABLE_ROLES = ("rep", "manager", "admin")


def zone(name: object) -> ZoneInfo:
    """The IANA zone named, else UTC (a browser without JavaScript sends none)."""
    if isinstance(name, str) and 0 < len(name) <= 64 and name.isascii() and ".." not in name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


def clean_uuid(value: object) -> str:
    """value as a canonical UUID. :raise ValidationError:"""
    try:
        return str(uuidlib.UUID(str(value)))
    except ValueError:
        raise ValidationError({"uuid": "This form is out of date: reload the page."}) from None


def _due(data: dict[str, Any], errors: dict[str, str]) -> tuple[datetime | None, str]:
    """The due moment (aware, UTC) of a date and time given in a zone."""
    tz = zone(data.get("time_zone"))
    raw_date, raw_time = data.get("due_date"), data.get("due_time")
    try:
        day = date.fromisoformat(raw_date) if isinstance(raw_date, str) else None
    except ValueError:
        day = None
    if day is None:
        errors["due_date"] = "Give the day it is due (YYYY-MM-DD)."
        return None, tz.key
    at = FOLLOW_UP_HOUR
    if isinstance(raw_time, str) and raw_time.strip():
        try:
            at = time.fromisoformat(raw_time.strip())
        except ValueError:
            errors["due_time"] = "Give the time as HH:MM, or leave it empty for 09:00."
            return None, tz.key
    if not 2000 <= day.year <= 2100:
        errors["due_date"] = "Give a day between the years 2000 and 2100."
        return None, tz.key
    local = datetime.combine(day, at.replace(tzinfo=None, second=0, microsecond=0), tzinfo=tz)
    return local.astimezone(ZoneInfo("UTC")), tz.key


def _assignee(session: Session, user: User, raw: object, errors: dict[str, str]) -> User | None:
    if raw in (None, ""):
        return user
    assignee_id = parse_id(raw)
    if assignee_id == user.id:
        return user
    if not can(user, "task.assign_others"):
        errors["assignee_id"] = "You may give tasks only to yourself."
        return None
    assignee = session.get(User, assignee_id) if assignee_id else None
    if assignee is None or not assignee.is_active or assignee.role not in ASSIGNABLE_ROLES:
        errors["assignee_id"] = "Choose someone from the list."
        return None
    return assignee


def _clean(session: Session, user: User, data: dict[str, Any]) -> dict[str, Any]:
    """The task's values from a form. :raise ValidationError: with a message per field."""
    errors: dict[str, str] = {}
    title = data.get("title")
    title = title.strip() if isinstance(title, str) else title
    if problem := text_problem(title, TITLE_LIMIT):
        errors["title"] = problem
    elif not title:
        errors["title"] = "Say what has to be done."
    notes = data.get("notes")
    notes = notes.strip() if isinstance(notes, str) else notes
    if problem := text_problem(notes, NOTES_LIMIT):
        errors["notes"] = problem
    kind = data.get("kind") or "todo"
    if kind not in TASK_KINDS:
        errors["kind"] = "Choose to do, call, visit or meeting."
    due_at, tz = _due(data, errors)
    assignee = _assignee(session, user, data.get("assignee_id"), errors)
    if errors:
        raise ValidationError(errors)
    return {
        "title": title,
        "notes": notes or "",
        "kind": kind,
        "due_at": due_at,
        "time_zone": tz,
        "assignee_id": assignee.id,
    }


def create_task(
    session: Session,
    user: User,
    data: dict[str, Any],
    client_uuid: object,
    contact_id: int | None = None,
    deal_id: int | None = None,
) -> tuple[Task, bool]:
    """Make a task once per client UUID; return (task, created). A replay by its maker
    answers with the stored task.

    :raise ValidationError: :raise NotFoundError: the contact or deal. :raise PermissionDenied:
    """
    require(user, "task.create")
    key = clean_uuid(client_uuid)
    existing = session.scalar(select(Task).where(Task.uuid == key))
    if existing is not None:
        if existing.created_by_id != user.id:
            raise ValidationError({"uuid": "This form is out of date: reload the page."})
        return existing, False
    values = _clean(session, user, data)
    found = target(session, user, contact_id, deal_id)
    if found["deal"] is not None and contact_id is None:
        contact_id = found["deal"].contact_id
    now = utcnow()
    values.update(
        uuid=key,
        contact_id=contact_id,
        deal_id=deal_id,
        created_by_id=user.id,
        status="todo",
        created_at=now,
        updated_at=now,
    )
    task = insert_once(session, Task, values, "uuid")
    if task is None:
        # The same form at the same moment (a double tap): the other request made it.
        return create_task(session, user, data, key, contact_id, deal_id)
    return task, True


def follow_up_at(preset: str, tz: ZoneInfo, now: datetime) -> datetime:
    """When a follow-up chip's task is due: that many days on, at 09:00 local."""
    days = FOLLOW_UPS[preset][1]
    local_day = now.astimezone(tz).date() + timedelta(days=days)
    return datetime.combine(local_day, FOLLOW_UP_HOUR, tzinfo=tz).astimezone(ZoneInfo("UTC"))


def follow_up(
    session: Session,
    user: User,
    contact_id: int,
    preset: object,
    client_uuid: object,
    time_zone: object,
    kind: object = None,
    now: datetime | None = None,
) -> tuple[Task, bool]:
    """The task of a follow-up chip on a contact, once per client UUID.

    :raise ValidationError: an unknown chip. :raise NotFoundError: :raise PermissionDenied:
    """
    if not isinstance(preset, str) or preset not in FOLLOW_UPS:
        raise ValidationError({"preset": "Choose tomorrow, in 3 days or next week."})
    contact = get_contact(session, user, contact_id)
    tz = zone(time_zone)
    due = follow_up_at(preset, tz, now or utcnow()).astimezone(tz)
    data = {
        "title": f"Follow up with {contact.name}"[:TITLE_LIMIT],
        "kind": kind if kind in {"call", "visit", "meeting"} else "call",
        "due_date": due.date().isoformat(),
        "due_time": due.strftime("%H:%M"),
        "time_zone": tz.key,
    }
    return create_task(session, user, data, client_uuid, contact_id=contact.id)


def get_task(session: Session, user: User, task_id: int) -> Task:
    """A task the user may see. :raise NotFoundError: :raise PermissionDenied:"""
    task = session.get(Task, task_id)
    if task is None:
        raise NotFoundError(f"task {task_id}")
    require(user, "task.view", task)
    return task


def update_task(session: Session, user: User, task: Task, data: dict[str, Any]) -> Task:
    """Save the edit form; a new due time is reminded afresh (services/reminders.py).

    :raise ValidationError: :raise PermissionDenied:
    """
    require(user, "task.edit", task)
    data = dict(data)
    if data.get("assignee_id") in (None, "") and task.assignee_id != user.id:
        data["assignee_id"] = str(task.assignee_id)
    for name, value in _clean(session, user, data).items():
        setattr(task, name, value)
    return task


def set_done(
    session: Session, user: User, task: Task, done: bool, at: datetime | None = None
) -> bool:
    """Tick the task done (at the time given, e.g. when a phone ticked it offline) or
    back to do; True when that changed anything. Ticking a done task again keeps the
    first time. :raise PermissionDenied:"""
    require(user, "task.edit", task)
    if done and task.status == "done":
        return False
    if not done and task.status != "done":
        return False
    task.status = "done" if done else "todo"
    task.done_at = (at or utcnow()) if done else None
    return True


def cancel_task(session: Session, user: User, task: Task) -> bool:
    """Cancel a task (it is no longer reminded or listed as to do). :raise PermissionDenied:"""
    require(user, "task.edit", task)
    if task.status == "cancelled":
        return False
    task.status = "cancelled"
    task.done_at = None
    return True


def done_synced(session: Session, user: User, entry: dict[str, Any]) -> Task:
    """A tick sent from a phone's outbox (a JSON object: uuid, task_id, done_at): the task
    is done from the time the phone says, once however often the tick arrives.

    :raise ValidationError: :raise NotFoundError: :raise PermissionDenied:
    """
    clean_uuid(entry.get("uuid"))
    task_id = parse_id(entry.get("task_id"))
    if task_id is None:
        raise ValidationError({"task_id": "Say which task was done."})
    raw = entry.get("done_at")
    try:
        at = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise ValidationError({"done_at": "Give the time it was done, with its zone."})
    now = utcnow()
    if not now - MAX_DONE_PAST <= at <= now + MAX_DONE_FUTURE:
        raise ValidationError({"done_at": "That time is too far off: check the phone's clock."})
    task = get_task(session, user, task_id)
    if task.status == "cancelled":
        raise ValidationError({"task_id": "This task was cancelled while the tick waited."})
    set_done(session, user, task, True, min(at, now))
    return task


@dataclass
class TaskList:
    overdue: list[Task] = field(default_factory=list)
    today: list[Task] = field(default_factory=list)
    upcoming: list[Task] = field(default_factory=list)
    done: list[Task] = field(default_factory=list)
    # The groups that have more than they show.
    more: set[str] = field(default_factory=set)


def day_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The start and end (UTC) of now's day in zone tz."""
    start = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
    end = datetime.combine(start.date() + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def list_tasks(session: Session, user: User, now: datetime, tz: ZoneInfo) -> TaskList:
    """The user's own tasks: the first of each group of open ones by due time (each
    group its own query, so a long overdue list never hides today's), the latest done."""
    require(user, "task.view")
    result = TaskList()
    for group in GROUPS:
        rows, more = task_group(session, user, group, now, tz)
        setattr(result, group, rows)
        if more:
            result.more.add(group)
    result.done = list(
        session.scalars(
            select(Task)
            .options(joinedload(Task.contact))
            .where(Task.assignee_id == user.id, DONE)
            .order_by(Task.done_at.desc(), Task.id.desc())
            .limit(DONE_LIMIT)
        )
    )
    return result


def task_group(
    session: Session,
    user: User,
    group: str,
    now: datetime,
    tz: ZoneInfo,
    after: int | None = None,
    limit: int = GROUP_LIMIT,
) -> tuple[list[Task], bool]:
    """One group of the user's open tasks (overdue, today or upcoming in zone tz) by due
    time, limit at a time after the task `after`; (tasks, whether more follow).
    :raise NotFoundError: an unknown group, or an after that is not the user's open task."""
    require(user, "task.view")
    start, end = day_bounds(now, tz)
    within = {
        "overdue": Task.due_at < start,
        "today": and_(Task.due_at >= start, Task.due_at < end),
        "upcoming": Task.due_at >= end,
    }
    if group not in within:
        raise NotFoundError(f"task group {group!r}")
    query = (
        select(Task)
        .options(joinedload(Task.contact))
        .where(Task.assignee_id == user.id, OPEN, within[group])
    )
    if after is not None:
        mark = session.get(Task, after)
        if mark is None or mark.assignee_id != user.id:
            raise NotFoundError(f"task {after}")
        query = query.where(
            or_(Task.due_at > mark.due_at, and_(Task.due_at == mark.due_at, Task.id > mark.id))
        )
    rows = list(session.scalars(query.order_by(Task.due_at, Task.id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def assignees(session: Session, user: User) -> list[User]:
    """Whom user may give a task to: themselves, or (managers) anyone with tasks."""
    if not can(user, "task.assign_others"):
        return [user]
    return list(
        session.scalars(
            select(User)
            .where(
                User.role.in_(ASSIGNABLE_ROLES),
                User.disabled_at.is_(None),
                User.removed_at.is_(None),
            )
            .order_by(User.name)
        )
    )


def form_values(task: Task | None, tz: ZoneInfo, now: datetime) -> dict[str, str]:
    """The task form's fields: a task's own (in its zone), or a new one due tomorrow."""
    if task is None:
        due = follow_up_at("tomorrow", tz, now).astimezone(tz)
        return {
            "uuid": str(uuidlib.uuid4()),
            "kind": "todo",
            "due_date": due.date().isoformat(),
            "due_time": due.strftime("%H:%M"),
            "time_zone": tz.key,
        }
    local = task.due_at.astimezone(zone(task.time_zone))
    return {
        "title": task.title,
        "notes": task.notes,
        "kind": task.kind,
        "due_date": local.date().isoformat(),
        "due_time": local.strftime("%H:%M"),
        "time_zone": task.time_zone,
        "assignee_id": str(task.assignee_id),
    }


def target(
    session: Session, user: User, contact_id: int | None, deal_id: int | None
) -> dict[str, Any]:
    """The contact and deal a new task form is on. :raise NotFoundError: :raise PermissionDenied:"""
    contact = get_contact(session, user, contact_id) if contact_id is not None else None
    deal = None
    if deal_id is not None:
        deal = session.get(Deal, deal_id)
        if deal is None or deal.deleted_at is not None:
            raise NotFoundError(f"deal {deal_id}")
        require(user, "deal.view", deal)
    return {"contact": contact, "deal": deal}


def for_contact(session: Session, user: User, contact) -> list[Task]:
    """The contact's open tasks the user may see, by due time (none for a role that
    sees no tasks)."""
    if not can(user, "task.view"):
        return []
    stmt = (
        select(Task)
        .options(joinedload(Task.contact))
        .where(Task.contact_id == contact.id, Task.status == "todo")
        .order_by(Task.due_at, Task.id)
        .limit(LIST_LIMIT)
    )
    if not can(user, "deal.view_all"):
        stmt = stmt.where((Task.assignee_id == user.id) | (Task.created_by_id == user.id))
    return list(session.scalars(stmt))
