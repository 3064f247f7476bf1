"""Today: where a rep or a manager starts the day. Their overdue and due-today tasks,
the visits planned for today, what is coming in the week after, the deals that need
them, and their own contacts who complained in public since yesterday, all in the
user's own zone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, union_all
from sqlalchemy.orm import Session, joinedload

from webapp.models import Contact, Mention, Task, User
from webapp.models.tasks import OPEN
from webapp.services import deals
from webapp.services.permissions import require
from webapp.services.tasks import day_bounds

# Each section is a short list to act on; the task list has the whole.
SECTION_LIMIT = 15
# What is coming after today (the follow-ups just set, say), briefly.
COMING_DAYS = 7
COMING_LIMIT = 10
COMPLAINT_LIMIT = 20


@dataclass
class Today:
    overdue: list[Task] = field(default_factory=list)
    due_today: list[Task] = field(default_factory=list)
    visits: list[Task] = field(default_factory=list)
    coming: list[Task] = field(default_factory=list)
    deals: list[deals.Attention] = field(default_factory=list)
    complaints: list[Mention] = field(default_factory=list)
    since: datetime | None = None
    limit: int = SECTION_LIMIT


def today(session: Session, user: User, now: datetime, tz: ZoneInfo) -> Today:
    """What user has to act on today. :raise PermissionDenied:"""
    require(user, "today.view")
    start, end = day_bounds(now, tz)
    result = Today()
    mine = (Task.assignee_id == user.id, OPEN)
    # The latest overdue first: a rep who fell behind sees what slipped last, not the
    # oldest of hundreds; the task list has them all. Each section walks its own part
    # of the assignee's index, all in one statement.
    sections = [
        select(Task.id)
        .where(*mine, Task.due_at < start)
        .order_by(Task.due_at.desc(), Task.id.desc())
        .limit(SECTION_LIMIT),
        select(Task.id)
        .where(*mine, Task.due_at >= start, Task.due_at < end)
        .order_by(Task.due_at, Task.id)
        .limit(SECTION_LIMIT * 2),
        select(Task.id)
        .where(*mine, Task.due_at >= end, Task.due_at < end + timedelta(days=COMING_DAYS))
        .order_by(Task.due_at, Task.id)
        .limit(COMING_LIMIT),
    ]
    ids = union_all(*(select(part.subquery().c.id) for part in sections))
    tasks = session.scalars(
        select(Task).options(joinedload(Task.contact)).where(Task.id.in_(ids))
    ).all()
    for task in sorted(tasks, key=lambda t: (t.due_at, t.id)):
        if task.due_at < start:
            result.overdue.append(task)
        elif task.due_at >= end:
            result.coming.append(task)
        elif task.kind == "visit":
            result.visits.append(task)
        elif len(result.due_today) < SECTION_LIMIT:
            result.due_today.append(task)
    result.overdue.reverse()
    result.deals = deals.needing_attention(session, user, now, limit=SECTION_LIMIT)
    # Since the start of yesterday in the user's zone: yesterday's complaints, and today's.
    result.since = start - timedelta(days=1)
    result.complaints = list(
        session.scalars(
            select(Mention)
            .join(Contact, Contact.id == Mention.contact_id)
            .options(joinedload(Mention.contact))
            .where(
                Contact.owner_id == user.id,
                Contact.deleted_at.is_(None),
                Mention.label == "negative",
                Mention.posted_at >= result.since,
            )
            .order_by(Mention.posted_at.desc(), Mention.id.desc())
            .limit(COMPLAINT_LIMIT)
        )
    )
    return result
