"""Support's round robin: open items nobody holds go, oldest first, to the people taking
new items, in turn, each up to their limit of open items; whoever frees up first (by
resolving, pending, snoozing or handing on an item) gets the next.

What belongs here: who is taking new items and how many each may hold (people switch
themselves on and off; managers and admins set limits and may switch others), and
giving items out. It runs where items are freed or arrive: a status change or a
reassignment (triage), each stored batch of mentions (ingest), someone switching on,
and the minute's sweep for anything left over. Each gift is one conditional UPDATE of
an item still open and unheld, audited with no actor ("the round robin"). Runs take
turns (a transaction-scoped advisory lock on PostgreSQL, the write lock on SQLite), so
two runs at once cannot both fill the same person's last place; on PostgreSQL the
waiting items are read with SKIP LOCKED, so a run never waits on an item someone is
changing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from webapp.models import Mention, User
from webapp.models.base import utcnow
from webapp.models.triage import OPEN
from webapp.services import audit
from webapp.services.errors import NotFoundError, ValidationError
from webapp.services.permissions import require

TEAM_ROLES = ("support", "manager", "admin")
LIMIT_MAX = 500
# The most items one run gives out; the next run (the sweep, the next batch) goes on.
RUN_MAX = 500
# A number of the product's own for its advisory lock ("RR" in ASCII, and a tag).
_LOCK_KEY = 0x5252_0001


@dataclass(frozen=True)
class Member:
    """Someone on the support team as the team page shows them."""

    user: User
    holding: int


def _serialize(session: Session) -> None:
    """Take the round robin's turn before reading who has room: PostgreSQL's advisory
    lock, or on SQLite the write lock (a write that changes nothing takes it; reads
    before a transaction's first write would see others' commits land in between)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    else:
        session.execute(text("UPDATE users SET id = id WHERE 1 = 0"))


def staff():
    """Everyone on the support team who can work: support staff, managers and admins
    not disabled or removed (whom items may be given to)."""
    return select(User).where(
        User.role.in_(TEAM_ROLES), User.disabled_at.is_(None), User.removed_at.is_(None)
    )


def _holding(session: Session, user_ids: list[int]) -> dict[int, int]:
    if not user_ids:
        return {}
    rows = session.execute(
        select(Mention.assignee_id, func.count())
        .where(Mention.status == OPEN, Mention.assignee_id.in_(user_ids))
        .group_by(Mention.assignee_id)
    )
    return dict(rows.all())


def team(session: Session) -> list[Member]:
    """The support team (support staff, managers, admins), the available first, with
    the open items each holds."""
    people = list(
        session.scalars(staff().order_by(User.available.desc(), User.role.desc(), User.name))
    )
    holding = _holding(session, [p.id for p in people])
    return [Member(p, holding.get(p.id, 0)) for p in people]


def set_available(
    session: Session, actor: User, person: User, on: bool, now: datetime | None = None
) -> int:
    """Switch person in or out of the round robin (themselves, or anyone for managers and
    admins); switching in hands them what is waiting. Returns the items given out.
    :raise PermissionDenied:"""
    require(actor, "mention.triage")
    if person.id != actor.id:
        require(actor, "triage.team")
    if person.role not in TEAM_ROLES or not person.is_active:
        raise NotFoundError("There is no such person on the support team.")
    now = now or utcnow()
    _serialize(session)
    if person.available == on:
        return 0
    person.available = on
    if on:
        # The longest-waiting goes first: someone just in waits behind the others.
        person.round_robin_at = now
    audit.record(
        session,
        actor,
        "user.available",
        "user",
        person.id,
        label=person.name,
        changes={"available": (not on, on)},
    )
    session.flush()
    return assign_waiting(session, now) if on else 0


def set_limit(session: Session, actor: User, person: User, raw: object) -> None:
    """How many open items person may hold at once from the round robin; blank for no
    limit. :raise ValidationError: :raise PermissionDenied:"""
    require(actor, "triage.team")
    if person.role not in TEAM_ROLES or not person.is_active:
        raise NotFoundError("There is no such person on the support team.")
    limit: int | None
    value = raw.strip() if isinstance(raw, str) else raw
    if value in ("", None):
        limit = None
    else:
        try:
            limit = int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            limit = -1
        if not 1 <= limit <= LIMIT_MAX:
            raise ValidationError(
                {"limit": f"Give a number of items from 1 to {LIMIT_MAX}, or leave it blank."}
            )
    if limit == person.triage_limit:
        return
    audit.record(
        session,
        actor,
        "user.triage_limit",
        "user",
        person.id,
        label=person.name,
        changes={"triage_limit": (person.triage_limit, limit)},
    )
    person.triage_limit = limit
    session.flush()
    assign_waiting(session)


def assign_waiting(session: Session, now: datetime | None = None) -> int:
    """Give the oldest open unheld items to the available people with room, in turn
    (the longest since their last item first). Returns how many were given."""
    now = now or utcnow()
    available = (
        staff()
        .where(User.available.is_(True))
        .order_by(User.round_robin_at.is_not(None), User.round_robin_at, User.id)
    )
    # Most runs find nobody taking items; only a run with someone to give to takes its turn.
    if session.scalar(available.with_only_columns(User.id).limit(1)) is None:
        return 0
    _serialize(session)
    people = list(session.scalars(available))
    holding = _holding(session, [p.id for p in people])
    room = {
        p.id: RUN_MAX if p.triage_limit is None else p.triage_limit - holding.get(p.id, 0)
        for p in people
    }
    turn = deque(p for p in people if room[p.id] > 0)
    if not turn:
        return 0
    wanted = min(RUN_MAX, sum(room[p.id] for p in turn))
    waiting = (
        select(Mention.id, Mention.author_handle)
        .where(Mention.status == OPEN, Mention.assignee_id.is_(None))
        .order_by(Mention.posted_at, Mention.id)
        .limit(wanted)
        .with_for_update(skip_locked=True)
    )
    given = 0
    for mention_id, handle in session.execute(waiting).all():
        if not turn:
            break
        person = turn.popleft()
        done = session.execute(
            update(Mention)
            .where(Mention.id == mention_id, Mention.status == OPEN, Mention.assignee_id.is_(None))
            .values(assignee_id=person.id, assigned_at=now),
            execution_options={"synchronize_session": False},
        ).rowcount
        if not done:
            turn.appendleft(person)
            continue
        given += 1
        # Each gift a moment later than the last, so the order survives to the next run.
        person.round_robin_at = now + timedelta(microseconds=given)
        room[person.id] -= 1
        if room[person.id] > 0:
            turn.append(person)
        audit.record(
            session,
            None,
            "mention.assign",
            "mention",
            mention_id,
            label=f"@{handle}",
            changes={"assignee": (None, person.name), "by": (None, "round robin")},
        )
    session.flush()
    return given
