"""In-app notifications: one row per occasion (its unique key is the claim, so a job run
twice makes one row), the list with its unread count, marking read; and the reminders
of tasks that fell due, claimed here for the workers to push (workers/jobs.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, joinedload

from webapp.models import Notification, Task, User
from webapp.models.base import utcnow
from webapp.models.tasks import OPEN
from webapp.services.errors import NotFoundError
from webapp.services.permissions import require
from webapp.services.tasks import zone
from webapp.services.values import insert_once

PAGE = 50
# A task more overdue than this when the sweep first sees it (every worker was down)
# is not pushed: Today shows it as overdue, and a stale buzz helps no one.
REMIND_LOOKBACK = timedelta(hours=6)
# How many due tasks one pass claims: a pass commits its claims before it pushes.
CLAIM_BATCH = 500


def add(
    session: Session,
    user_id: int,
    key: str,
    kind: str,
    title: str,
    body: str = "",
    url: str = "/",
    task_id: int | None = None,
) -> Notification | None:
    """The notification of one occasion: the new row, or None when that key was stored
    already (by an earlier run, or another worker at the same moment)."""
    values = {
        "user_id": user_id,
        "key": key[:120],
        "kind": kind,
        "title": title[:200],
        "body": body,
        "url": url[:500],
        "task_id": task_id,
        "created_at": utcnow(),
    }
    return insert_once(session, Notification, values, "key")


def reminder_key(task: Task) -> str:
    """The one occasion of a task's reminder: the task at its due time (a new due time is
    a new occasion)."""
    return f"task-due:{task.id}:{task.due_at.isoformat()}"


def due_unreminded(session: Session, now: datetime, limit: int = CLAIM_BATCH) -> list[Task]:
    """Open tasks due by now (within REMIND_LOOKBACK, and set before they fell due) with
    no reminder since their due time."""
    reminded = aliased(Notification)
    stmt = (
        select(Task)
        .options(joinedload(Task.contact))
        .where(
            OPEN,
            Task.due_at <= now,
            Task.due_at > now - REMIND_LOOKBACK,
            Task.created_at <= Task.due_at,
            ~exists().where(
                and_(
                    reminded.task_id == Task.id,
                    reminded.kind == "task-due",
                    reminded.created_at >= Task.due_at,
                )
            ),
        )
        .order_by(Task.due_at, Task.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def claim_reminders(session: Session, tasks: list[Task], task_url) -> list[int]:
    """Claim the reminder of each task in one statement; the ids of the rows this call
    inserted (only these are pushed by the caller: a key stored already, by an earlier
    run or another sweep at the same moment, is skipped by the database). task_url(task)
    is where the notification opens."""
    if not tasks:
        return []
    now = utcnow()
    rows = []
    for task in tasks:
        when = task.due_at.astimezone(zone(task.time_zone)).strftime("%H:%M")
        rows.append(
            {
                "user_id": task.assignee_id,
                "key": reminder_key(task),
                "kind": "task-due",
                "title": task.title[:200],
                "body": f"Due {when}" + (f" · {task.contact.name}" if task.contact else ""),
                "url": task_url(task)[:500],
                "task_id": task.id,
                "created_at": now,
            }
        )
    insert = (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert
    statement = (
        insert(Notification)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(Notification.id)
    )
    return list(session.scalars(statement))


def unpushed(session: Session, before: datetime, limit: int = CLAIM_BATCH) -> list[int]:
    """Reminders claimed before `before` and never pushed: their sender died between its
    claim and its push (the caller holds the sweep's lock, so no sender is on them)."""
    stmt = (
        select(Notification.id)
        .where(
            Notification.kind == "task-due",
            Notification.pushed_at.is_(None),
            Notification.created_at < before,
            Notification.created_at > before - REMIND_LOOKBACK,
        )
        .order_by(Notification.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def mark_pushed(session: Session, notification_ids: list[int]) -> None:
    """Note that these were handed to every subscription of their users."""
    if notification_ids:
        session.execute(
            update(Notification)
            .where(Notification.id.in_(notification_ids), Notification.pushed_at.is_(None))
            .values(pushed_at=utcnow())
        )


def unread_count(session: Session, user: User) -> int:
    """How many of the user's notifications are unread (the badge in the navigation)."""
    return session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
    )


def recent(session: Session, user: User, limit: int = PAGE) -> list[Notification]:
    """The user's notifications, newest first."""
    require(user, "notification.view")
    stmt = (
        select(Notification)
        .where(Notification.user_id == user.id)
        .order_by(Notification.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def get(session: Session, user: User, notification_id: int) -> Notification:
    """One of the user's notifications. :raise NotFoundError: unknown, or someone else's."""
    require(user, "notification.view")
    row = session.get(Notification, notification_id)
    if row is None or row.user_id != user.id:
        raise NotFoundError(f"notification {notification_id}")
    return row


def mark_read(session: Session, user: User, notification_id: int | None = None) -> int:
    """Mark one notification (or all the user's) read; how many changed."""
    require(user, "notification.view")
    stmt = update(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None)
    )
    if notification_id is not None:
        stmt = stmt.where(Notification.id == get(session, user, notification_id).id)
    return session.execute(stmt.values(read_at=utcnow())).rowcount or 0
