"""Support triage of mentions: status, assignment, the stored priority and why, notes,
label corrections, canned replies, and the queue the inbox shows.

What belongs here: the rules of a mention's triage state (which status may follow
which, what a snooze and a new post by the author do, who may hold how many) and of its
priority; each change in the caller's transaction, audited. Replies (their records and
the job that sends them) are webapp.services.replies'; the scoring and its explanation
are social.sentiment's.

The priority is a number from 0 to 100, stored on the mention with its parts, and made
again when something it depends on changes (a correction, a link to a contact, a deal
won, time passing while nobody answers): the inbox orders by the stored number and
never computes it per request. Its parts, each with its ceiling:

- sentiment, 40: how negative VADER's compound is (-1 gives 40); a person's correction
  to "negative" counts as at least half, to "positive" or "neutral" as nothing;
- reach, 25: the author's followers on a log scale (a million or more gives 25);
- customer, 20: a contact with a won deal 20, with an open deal 15, a contact 5;
- waiting, 15: hours without an answer, 24 hours or more giving 15.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, cast, func, select, tuple_, union_all, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from social import sentiment
from webapp.models import (
    Contact,
    Deal,
    LabelCorrection,
    Mention,
    MentionNote,
    Stage,
    User,
)
from webapp.models.base import utcnow
from webapp.models.triage import OPEN, PENDING, RESOLVED, SNOOZED, STATUSES
from webapp.services import audit, routing, sla
from webapp.services.errors import ValidationError
from webapp.services.permissions import require

STATUS_LABELS = {OPEN: "Open", PENDING: "Pending", SNOOZED: "Snoozed", RESOLVED: "Resolved"}
# Who triage is for: whom items may be assigned to, and who the round robin chooses.
TRIAGE_ROLES = routing.TEAM_ROLES
PAGE_SIZE = 30
# The navigation's counts stop here ("99+"): counting every open item of a big inbox
# on every page would cost more than the number is worth.
COUNT_CAP = 99
NOTE_MAX = 5_000
REASON_MAX = 300
SNOOZE_MAX = timedelta(days=90)

CEILINGS = {"sentiment": 40, "reach": 25, "customer": 20, "waiting": 15}
CUSTOMER_POINTS = {"won": 20, "open": 15, "contact": 5}
WAITING_FULL = timedelta(hours=24)
# The queue's order, the order of its index (migration 0017): most urgent first, then
# the longest waiting.
URGENT_FIRST = (Mention.priority.desc(), Mention.posted_at, Mention.id)


class ConflictError(Exception):
    """Someone else changed the item first; the message says what it is now (409)."""


# -- priority -------------------------------------------------------------------------


def parts(
    compound: float | None,
    followers: int | None,
    waited: timedelta | None,
    customer: str | None = None,
    corrected: str | None = None,
) -> dict[str, int]:
    """The parts of a priority (see the module's docstring): waited is how long the
    author has waited for an answer (None: answered or resolved), customer "won",
    "open", "contact" or None, corrected the label a person gave, if any."""
    feeling = round(CEILINGS["sentiment"] * max(0.0, -compound)) if compound is not None else 0
    if corrected == "negative":
        feeling = max(feeling, CEILINGS["sentiment"] // 2)
    elif corrected in ("positive", "neutral"):
        feeling = 0
    reach = round(CEILINGS["reach"] * min(1.0, math.log10(1 + max(followers or 0, 0)) / 6))
    waiting = 0
    if waited is not None:
        waiting = round(CEILINGS["waiting"] * min(1.0, max(waited, timedelta(0)) / WAITING_FULL))
    return {
        "sentiment": feeling,
        "reach": reach,
        "customer": CUSTOMER_POINTS.get(customer or "", 0),
        "waiting": waiting,
    }


def priority_parts(
    mention: Mention, customer: str | None, now: datetime, corrected: str | None = None
) -> dict[str, int]:
    """The parts of the stored mention's priority as things stand at now."""
    waiting = mention.status != RESOLVED and mention.first_response_at is None
    return parts(
        mention.compound,
        mention.author_followers,
        now - mention.posted_at if waiting else None,
        customer,
        corrected,
    )


def why(mention: Mention) -> list[str]:
    """The priority's parts in words, largest first, for the inbox row and the page."""
    parts = mention.priority_parts or {}
    words = {
        "sentiment": lambda: (
            f"negative ({mention.compound:+.2f})" if mention.compound is not None else "negative"
        ),
        "reach": lambda: f"{mention.author_followers or 0:,} followers",
        "customer": lambda: "customer",
        "waiting": lambda: "waiting for an answer",
    }
    return [
        f"{words[name]()} +{points}"
        for name, points in sorted(parts.items(), key=lambda kv: -kv[1])
        if points and name in words
    ]


def customer_values(session: Session, contact_ids: set[int]) -> dict[int, str]:
    """For each live contact: "won" if it has a won deal, else "open" for an open deal,
    else "contact". One statement."""
    if not contact_ids:
        return {}
    rows = session.execute(
        select(Contact.id, Stage.kind)
        .outerjoin(Deal, and_(Deal.contact_id == Contact.id, Deal.deleted_at.is_(None)))
        .outerjoin(Stage, Stage.id == Deal.stage_id)
        .where(Contact.id.in_(contact_ids), Contact.deleted_at.is_(None))
    ).all()
    values: dict[int, str] = {}
    rank = {"won": 2, "open": 1}
    for contact_id, kind in rows:
        best = values.get(contact_id, "contact")
        if rank.get(kind or "", 0) > rank.get(best, 0):
            best = kind
        values[contact_id] = best
    return values


def reprioritize(session: Session, mentions: list[Mention], now: datetime | None = None) -> None:
    """Make the stored priority of these mentions again from what they depend on now:
    two statements for the lot (their contacts' deals, their corrections)."""
    if not mentions:
        return
    now = now or utcnow()
    customers = customer_values(session, {m.contact_id for m in mentions if m.contact_id})
    corrections = dict(
        session.execute(
            select(LabelCorrection.mention_id, LabelCorrection.label).where(
                LabelCorrection.mention_id.in_([m.id for m in mentions])
            )
        ).all()
    )
    for mention in mentions:
        made = priority_parts(
            mention,
            customers.get(mention.contact_id) if mention.contact_id else None,
            now,
            corrections.get(mention.id),
        )
        if made != mention.priority_parts:
            mention.priority_parts = made
            mention.priority = sum(made.values())


def after_ingest(session: Session, inserted: list[tuple[int, int | None]]) -> None:
    """New mentions were stored (id, contact id): those with a contact rank as the
    customer they are, and their authors' waiting items reopen."""
    matched = [mention_id for mention_id, contact_id in inserted if contact_id]
    if matched:
        reprioritize(session, list(session.scalars(select(Mention).where(Mention.id.in_(matched)))))
    author_wrote_again(session, [mention_id for mention_id, _ in inserted])
    routing.assign_waiting(session)


def refresh_waiting(session: Session, now: datetime | None = None, limit: int = 2000) -> int:
    """The waiting part of unanswered open items grows with time: make it again for
    those posted in the last day and a bit (older ones are at its ceiling already, and
    were made so by an earlier sweep). Return how many were looked at."""
    now = now or utcnow()
    recent = session.scalars(
        select(Mention)
        .where(
            Mention.posted_at > now - WAITING_FULL - timedelta(hours=1),
            Mention.status == OPEN,
            Mention.first_response_at.is_(None),
        )
        .order_by(Mention.posted_at)
        .limit(limit)
    ).all()
    reprioritize(session, list(recent), now)
    return len(recent)


def refresh_all(session: Session, batch: int = 1000) -> int:
    """Make every unresolved item's priority again (after an upgrade, or a change of
    the rules), in batches committed as they go; return how many."""
    done, last = 0, 0
    while True:
        rows = session.scalars(
            select(Mention)
            .where(Mention.id > last, Mention.status != RESOLVED)
            .order_by(Mention.id)
            .limit(batch)
        ).all()
        if not rows:
            return done
        reprioritize(session, list(rows))
        session.commit()
        done += len(rows)
        last = rows[-1].id


def contact_changed(session: Session, contact_id: int) -> None:
    """A contact's deals or mentions changed: its open mentions rank again."""
    mentions = session.scalars(
        select(Mention).where(Mention.contact_id == contact_id, Mention.status != RESOLVED)
    ).all()
    reprioritize(session, list(mentions))


# -- the queue ------------------------------------------------------------------------


@dataclass
class QueuePage:
    mentions: list[Mention]
    next_after: str | None


def _cursor(mention: Mention) -> str:
    """Where a queue page ends: priority, posted time in microseconds, id."""
    micros = int(mention.posted_at.timestamp() * 1_000_000)
    return f"{mention.priority}:{micros}:{mention.id}"


def _parse_cursor(value: str | None) -> tuple[int, datetime, int] | None:
    """A queue cursor as (priority, posted_at, id); None if absent or not one of ours."""
    try:
        priority, micros, mention_id = (int(part) for part in (value or "").split(":"))
        posted = datetime.fromtimestamp(micros / 1_000_000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return priority, posted, mention_id


def queue(
    session: Session,
    user: User,
    status: str = OPEN,
    assignee: str | None = None,
    network: str | None = None,
    label: str | None = None,
    source_id: int | None = None,
    after: str | None = None,
    limit: int = PAGE_SIZE,
    people: dict[int, User] | None = None,
) -> QueuePage:
    """Items with this status, most urgent first (priority, then the oldest waiting);
    assignee is "me", "none" (unassigned) or None (anyone). Keyset pages: after is the
    previous page's next_after. people: users the caller has loaded already (the team,
    by id), who are then the items' assignees without a statement of their own."""
    require(user, "mention.view")
    conditions = [Mention.status == status]
    if assignee == "me":
        conditions.append(Mention.assignee_id == user.id)
    elif assignee == "none":
        conditions.append(Mention.assignee_id.is_(None))
    if network:
        conditions.append(Mention.network == network)
    if source_id:
        conditions.append(Mention.source_id == source_id)
    if label == "unscored":
        conditions.append(Mention.label.is_(None))
    elif label:
        conditions.append(Mention.label == label)
    cursor = _parse_cursor(after)
    if cursor:
        # The filters hold inside; outside, the page is its ids alone.
        conditions = [Mention.id.in_(_after(conditions, cursor, limit + 1))]
    loads = [selectinload(Mention.contact)]
    if people is None:
        loads.append(selectinload(Mention.assignee))
    stmt = select(Mention).options(*loads).where(*conditions).order_by(*URGENT_FIRST)
    rows = list(session.scalars(stmt.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    if people is not None:
        _attach_assignees(session, rows, people)
    return QueuePage(rows, _cursor(rows[-1]) if more else None)


def _attach_assignees(session: Session, rows: list[Mention], people: dict[int, User]) -> None:
    """Each item's assignee from people, loading only those not in it (someone who left
    the team still holds what they held)."""
    missing = {m.assignee_id for m in rows if m.assignee_id and m.assignee_id not in people}
    if missing:
        people = {
            **people,
            **{u.id: u for u in session.scalars(select(User).where(User.id.in_(missing)))},
        }
    for m in rows:
        set_committed_value(m, "assignee", people.get(m.assignee_id) if m.assignee_id else None)


def _after(conditions: list, cursor: tuple[int, datetime, int], limit: int) -> Any:
    """The ids of the first items after the cursor in the queue's order: the rest of the
    cursor's priority, then the priorities below it, each a range of the queue index
    from its first item on. One condition with an OR instead is no range: it reads every
    item of the cursor's priority before it (961 ms deep in the 67,000 resolved items of
    one priority at 1,000,000 mentions on PostgreSQL, 0.8 ms this way) and SQLite sorts
    all below it."""
    priority, posted, mention_id = cursor
    same = (
        select(Mention.id)
        .where(
            *conditions,
            Mention.priority == priority,
            tuple_(Mention.posted_at, Mention.id) > (posted, mention_id),
        )
        .order_by(Mention.posted_at, Mention.id)
        .limit(limit)
        .subquery()
    )
    lower = (
        select(Mention.id)
        .where(*conditions, Mention.priority < priority)
        .order_by(*URGENT_FIRST)
        .limit(limit)
        .subquery()
    )
    return union_all(select(same.c.id), select(lower.c.id))


def counts(session: Session, user: User) -> dict[str, int]:
    """Open items, the user's open items and the unassigned open ones, each counted up
    to COUNT_CAP + 1 (shown as "99+"): three index walks that stop early."""

    def capped(*conditions: Any) -> Any:
        inner = select(Mention.id).where(Mention.status == OPEN, *conditions).limit(COUNT_CAP + 1)
        return select(func.count()).select_from(inner.subquery()).scalar_subquery()

    row = session.execute(
        select(
            capped(),
            capped(Mention.assignee_id == user.id),
            capped(Mention.assignee_id.is_(None)),
        )
    ).one()
    return {"open": row[0], "mine": row[1], "unassigned": row[2]}


def shown_count(n: int) -> str:
    """A count as the navigation shows it."""
    return f"{COUNT_CAP}+" if n > COUNT_CAP else str(n)


# -- changes --------------------------------------------------------------------------


def set_status(
    session: Session,
    user: User,
    mention: Mention,
    status: str,
    snooze_until: datetime | None = None,
    now: datetime | None = None,
    route: bool = True,
) -> None:
    """Move the item to status. A snooze needs a time in the future (at most 90 days);
    the SLA clock stops while pending or snoozed and starts again when it reopens.
    route=False leaves the round robin to the caller (one run after many changes).
    :raise ValidationError:"""
    require(user, "mention.triage")
    now = now or utcnow()
    if status not in STATUSES:
        raise ValidationError({"status": "Choose open, pending, snoozed or resolved."})
    if status == SNOOZED:
        if snooze_until is None:
            raise ValidationError({"until": "Say until when to snooze it."})
        if snooze_until <= now:
            raise ValidationError({"until": "Snooze it until a time in the future."})
        if snooze_until > now + SNOOZE_MAX:
            raise ValidationError({"until": "Snooze it for at most 90 days."})
    if mention.status == status and (status != SNOOZED or mention.snoozed_until == snooze_until):
        return
    hours = _paused_hours(session, [mention])
    _recorded_move(session, user, mention, status, now, hours, snooze_until)
    reprioritize(session, [mention], now)
    if route and (mention.assignee_id is not None or status == OPEN):
        # A holder freed up, or an item came back: the round robin goes on.
        routing.assign_waiting(session, now)


def _paused_hours(session: Session, mentions: list[Mention]) -> dict | None:
    """The SLA policy's business hours, read once for the moves of mentions, and only if
    one of them has a clock that stands still (the only moves that need them)."""
    if not any(m.sla_paused_at is not None for m in mentions):
        return None
    policy = sla.active_policy(session)
    return policy.business_hours if policy else None


def _recorded_move(
    session: Session,
    actor: User | None,
    mention: Mention,
    status: str,
    now: datetime,
    business_hours: dict | None,
    snooze_until: datetime | None = None,
) -> None:
    """The status change, in the audit log (actor None: the system, as a snooze that
    wakes or an author who writes again); business_hours as _paused_hours gives them."""
    before = mention.status
    _move(mention, status, now, snooze_until, business_hours)
    audit.record(
        session,
        actor,
        "mention.status",
        "mention",
        mention.id,
        label=f"@{mention.author_handle}",
        changes={"status": (before, status)},
    )


def _move(
    mention: Mention,
    status: str,
    now: datetime,
    snooze_until: datetime | None,
    business_hours: dict | None,
) -> None:
    """The status change itself, with what it does to the timers."""
    paused = mention.status in (PENDING, SNOOZED)
    pausing = status in (PENDING, SNOOZED)
    if paused and not pausing and mention.sla_paused_at is not None:
        # The clock starts again: the targets move by the (working) time it stood still.
        stood_since = mention.sla_paused_at
        if mention.first_response_due and mention.first_response_at is None:
            mention.first_response_due = sla.resumed(
                mention.first_response_due, stood_since, now, business_hours
            )
        if mention.resolution_due:
            mention.resolution_due = sla.resumed(
                mention.resolution_due, stood_since, now, business_hours
            )
        mention.sla_paused_at = None
    elif pausing and not paused:
        mention.sla_paused_at = now
    mention.status = status
    mention.status_at = now
    mention.snoozed_until = snooze_until if status == SNOOZED else None
    mention.resolved_at = now if status == RESOLVED else None


def wake_snoozed(session: Session, now: datetime | None = None, limit: int = 500) -> int:
    """Reopen the snoozed items whose time has come; return how many."""
    now = now or utcnow()
    due = session.scalars(
        select(Mention)
        .where(Mention.status == SNOOZED, Mention.snoozed_until <= now)
        .order_by(Mention.snoozed_until)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    hours = _paused_hours(session, due)
    for mention in due:
        _recorded_move(session, None, mention, OPEN, now, hours)
    reprioritize(session, list(due), now)
    return len(due)


def author_wrote_again(session: Session, new_ids: list[int], now: datetime | None = None) -> int:
    """New mentions by authors whose earlier items wait (pending or snoozed): those
    reopen, since the author has more to say. Return how many reopened."""
    if not new_ids:
        return 0
    now = now or utcnow()
    authors = (
        select(Mention.network, Mention.author_handle).where(Mention.id.in_(new_ids)).distinct()
    )
    waiting = session.scalars(
        select(Mention).where(
            Mention.status.in_((PENDING, SNOOZED)),
            tuple_(Mention.network, Mention.author_handle).in_(authors),
            Mention.id.not_in(new_ids),
        )
    ).all()
    hours = _paused_hours(session, waiting)
    for mention in waiting:
        _recorded_move(session, None, mention, OPEN, now, hours)
    return len(waiting)


def assignable(session: Session) -> list[User]:
    """Everyone items may be assigned to: active triage staff, by name."""
    return list(session.scalars(routing.staff().order_by(User.name)))


def assign(
    session: Session,
    user: User,
    mention: Mention,
    assignee_id: int | None,
    expected: int | str | None = "any",
    now: datetime | None = None,
    route: bool = True,
) -> None:
    """Give the item to assignee_id (None: unassign). expected is the assignee the
    person saw: when someone else assigned it meanwhile, nothing changes and
    ConflictError says to whom. One conditional update, so two people assigning at
    once give one result. route=False leaves the round robin to the caller.
    :raise ValidationError: :raise ConflictError:"""
    require(user, "mention.triage")
    now = now or utcnow()
    if assignee_id is not None:
        target = session.get(User, assignee_id)
        if (
            target is None
            or target.role not in TRIAGE_ROLES
            or target.disabled_at is not None
            or target.removed_at is not None
        ):
            raise ValidationError({"assignee": "Choose someone on the support team."})
    stmt = update(Mention).where(Mention.id == mention.id)
    if expected != "any":
        stmt = stmt.where(
            Mention.assignee_id.is_(None) if expected is None else Mention.assignee_id == expected
        )
    before = mention.assignee_id
    done = session.execute(
        stmt.values(assignee_id=assignee_id, assigned_at=now if assignee_id else None),
        execution_options={"synchronize_session": False},
    ).rowcount
    session.refresh(mention)
    if not done:
        holder = mention.assignee.name if mention.assignee else "nobody"
        raise ConflictError(f"Someone changed it first: it is now assigned to {holder}.")
    if before != assignee_id:
        names = {
            u.id: u.name
            for u in session.scalars(
                select(User).where(User.id.in_({before, assignee_id} - {None}))
            )
        }
        audit.record(
            session,
            user,
            "mention.assign",
            "mention",
            mention.id,
            label=f"@{mention.author_handle}",
            changes={"assignee": (names.get(before), names.get(assignee_id))},
        )
        if route:
            # Whoever held it has room again (or it is back in the pool).
            routing.assign_waiting(session, now)


def add_note(session: Session, user: User, mention: Mention, body: str) -> MentionNote:
    """An internal note on the item. :raise ValidationError:"""
    require(user, "mention.triage")
    body = (body or "").strip()
    if not body:
        raise ValidationError({"note": "Write the note first."})
    if len(body) > NOTE_MAX:
        raise ValidationError({"note": f"Keep a note under {NOTE_MAX:,} characters."})
    note = MentionNote(mention_id=mention.id, author_id=user.id, body=body, created_at=utcnow())
    session.add(note)
    return note


def notes(session: Session, mention: Mention) -> list[MentionNote]:
    return list(
        session.scalars(
            select(MentionNote)
            .options(selectinload(MentionNote.author))
            .where(MentionNote.mention_id == mention.id)
            .order_by(MentionNote.id)
        )
    )


def correct_label(
    session: Session, user: User, mention: Mention, label: str, reason: str = ""
) -> LabelCorrection:
    """A person's label for the mention; VADER's score stays as it was. A second
    correction replaces the first (the audit log keeps both). :raise ValidationError:"""
    require(user, "mention.triage")
    if label not in sentiment.LABELS:
        raise ValidationError({"label": "Choose positive, neutral or negative."})
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        raise ValidationError({"reason": f"Keep the reason under {REASON_MAX} characters."})
    correction = session.scalar(
        select(LabelCorrection).where(LabelCorrection.mention_id == mention.id)
    )
    before = correction.label if correction else mention.label
    if correction is None:
        correction = LabelCorrection(mention_id=mention.id)
        session.add(correction)
    correction.label = label
    correction.scored_label = mention.label
    correction.reason = reason
    correction.user_id = user.id
    correction.created_at = utcnow()
    session.flush()
    audit.record(
        session,
        user,
        "mention.correct",
        "mention",
        mention.id,
        label=f"@{mention.author_handle}",
        changes={"label": (before, label)},
    )
    reprioritize(session, [mention])
    return correction


def correction(session: Session, mention: Mention) -> LabelCorrection | None:
    return session.scalar(
        select(LabelCorrection)
        .options(selectinload(LabelCorrection.user))
        .where(LabelCorrection.mention_id == mention.id)
    )


def agreement(session: Session) -> list[dict[str, Any]]:
    """How often people agreed with VADER's label, per network and language: the
    corrections where the person's label is VADER's, out of all corrections."""
    rows = session.execute(
        select(
            Mention.network,
            Mention.language,
            func.count(),
            func.sum(cast(LabelCorrection.label == LabelCorrection.scored_label, Integer)),
        )
        .join(Mention, Mention.id == LabelCorrection.mention_id)
        .group_by(Mention.network, Mention.language)
        .order_by(Mention.network, Mention.language)
    ).all()
    return [
        {"network": n, "language": lang or "unknown", "checked": total, "agreed": int(agreed or 0)}
        for n, lang, total, agreed in rows
    ]
