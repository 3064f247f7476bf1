"""The pipeline as managers read it: totals by stage, the weighted forecast by month
and owner, stuck and pushed deals, and team activity by week; one total per currency,
never added across currencies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, selectinload

from webapp.models import Activity, Deal, User
from webapp.services import board, deals
from webapp.services.errors import PermissionDenied
from webapp.services.permissions import can


def _weighted(total_times_probability: int) -> int:
    return int(total_times_probability) // 100


def pipeline(session: Session, user: User) -> list[dict]:
    """Every open stage with its count, its total per currency and its weighted total
    per currency (amount times the stage's probability); a rep sees their own."""
    columns = deals.open_stages(session)
    totals = board.totals_by_stage(session, user, [s.id for s in columns], mine=False)
    out = []
    for stage in columns:
        count, sums = totals.get(stage.id, (0, {}))
        weighted = {c: _weighted(v * stage.probability) for c, v in sums.items()}
        out.append({"stage": stage, "count": count, "totals": sums, "weighted": weighted})
    return out


def _month_starts(today: date, months: int) -> list[date]:
    starts = []
    year, month = today.year, today.month
    for _ in range(months + 1):
        starts.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return starts


def _bucket(column, bounds: list) -> case:
    """Which of the ranges [bounds[i], bounds[i+1]) column falls in, as SQL every
    database runs alike (no date functions)."""
    return case(*((column < b, i) for i, b in enumerate(bounds[1:])), else_=len(bounds) - 1)


@dataclass
class ForecastCell:
    """A month's (or an owner's month's) money, per currency."""

    weighted: dict[str, int] = field(default_factory=dict)
    unweighted: dict[str, int] = field(default_factory=dict)
    won: dict[str, int] = field(default_factory=dict)
    count: int = 0


def _add(cell: ForecastCell, kind: str, currency: str, value: int) -> None:
    sums = getattr(cell, kind)
    sums[currency] = sums.get(currency, 0) + int(value)


def forecast(session: Session, user: User, today: date, months: int = 6, tz: tzinfo = UTC) -> dict:
    """The coming months: for each, the weighted sum (amount times stage probability) and
    the plain sum of open deals expected to close in it, beside what was won in it (its
    months in zone tz, the user's); the same by owner. Sums are per currency, never
    added across currencies. A rep sees their own deals only."""
    starts = _month_starts(today, months)
    stage_list = deals.stages(session)
    open_ids = [s.id for s in stage_list if s.kind == "open"]
    won_ids = [s.id for s in stage_list if s.kind == "won"]
    probability = case(
        *((Deal.stage_id == s.id, s.probability) for s in stage_list if s.kind == "open"),
        else_=0,
    )
    month = _bucket(Deal.expected_close, starts).label("month")
    open_rows = session.execute(
        select(
            month,
            Deal.owner_id,
            Deal.currency,
            func.count(),
            func.sum(Deal.amount_minor),
            func.sum(Deal.amount_minor * probability),
        )
        .where(
            deals.live_deals(user),
            Deal.stage_id.in_(open_ids),
            Deal.expected_close >= starts[0],
            Deal.expected_close < starts[-1],
        )
        .group_by(month, Deal.owner_id, Deal.currency)
    ).all()
    bounds = [datetime.combine(d, datetime.min.time(), tz).astimezone(UTC) for d in starts]
    won_month = _bucket(Deal.closed_at, bounds).label("month")
    won_rows = session.execute(
        select(won_month, Deal.owner_id, Deal.currency, func.sum(Deal.amount_minor))
        .where(
            deals.live_deals(user),
            Deal.stage_id.in_(won_ids),
            Deal.closed_at >= bounds[0],
            Deal.closed_at < bounds[-1],
        )
        .group_by(won_month, Deal.owner_id, Deal.currency)
    ).all()
    by_month = [ForecastCell() for _ in range(months)]
    by_owner: dict[int, list[ForecastCell]] = {}
    for i, owner_id, currency, count, total, weighted in open_rows:
        for cell in (
            by_month[i],
            by_owner.setdefault(owner_id, [ForecastCell() for _ in starts[:-1]])[i],
        ):
            _add(cell, "unweighted", currency, total or 0)
            _add(cell, "weighted", currency, _weighted(weighted or 0))
            cell.count += count
    for i, owner_id, currency, total in won_rows:
        for cell in (
            by_month[i],
            by_owner.setdefault(owner_id, [ForecastCell() for _ in starts[:-1]])[i],
        ):
            _add(cell, "won", currency, total or 0)
    names = dict(session.execute(select(User.id, User.name).where(User.id.in_(by_owner))).all())
    owners = sorted(by_owner.items(), key=lambda item: names.get(item[0], "").lower())
    return {
        "months": starts[:-1],
        "by_month": by_month,
        "by_owner": [(names.get(owner_id, "?"), cells) for owner_id, cells in owners],
    }


def stuck(session: Session, user: User, now: datetime, limit: int = 50) -> list[deals.Attention]:
    """Open deals in their stage longer than its rotting days, the longest first."""
    open_list = deals.open_stages(session)
    found = session.scalars(
        select(Deal)
        .where(deals.live_deals(user), deals.stuck_condition(open_list, now))
        .order_by(Deal.stage_entered_at, Deal.id)
        .limit(limit)
        .options(selectinload(Deal.contact), selectinload(Deal.owner))
    ).all()
    return [deals.Attention(d, deals.reasons_for(d, now)) for d in found]


def pushed(session: Session, user: User, limit: int = 50) -> list[Deal]:
    """Open deals whose close date moved later PUSHED_AFTER times or more, most first."""
    return list(
        session.scalars(
            select(Deal)
            .where(
                deals.live_deals(user),
                Deal.stage_id.in_([s.id for s in deals.open_stages(session)]),
                Deal.close_date_pushes >= deals.PUSHED_AFTER,
            )
            .order_by(Deal.close_date_pushes.desc(), Deal.id)
            .limit(limit)
            .options(selectinload(Deal.contact), selectinload(Deal.owner))
        )
    )


def week_start(now: datetime, tz: tzinfo = UTC) -> datetime:
    """Monday 00:00 in zone tz of now's week there, in UTC."""
    day = now.astimezone(tz).date()
    monday = datetime.combine(day - timedelta(days=day.weekday()), datetime.min.time(), tz)
    return monday.astimezone(UTC)


def team_activity(session: Session, user: User, now: datetime, tz: tzinfo = UTC) -> list[dict]:
    """Calls, visits and meetings each person logged this week and last week (from
    Monday in zone tz, the one looking): everyone for managers, a rep's own for a rep.

    :raise PermissionDenied: a role that logs no sales work and may not see the team's.
    """
    if can(user, "team.view"):
        people = select(User).where(
            User.role.in_(("rep", "manager", "admin")),
            User.disabled_at.is_(None),
            User.removed_at.is_(None),
        )
    elif can(user, "deal.create"):
        people = select(User).where(User.id == user.id)
    else:
        raise PermissionDenied("team.view")
    this_week = week_start(now, tz)
    # A week back on the wall clock (a summer-time change makes it 167 or 169 hours).
    local = this_week.astimezone(tz).replace(tzinfo=None) - timedelta(days=7)
    last_week = local.replace(tzinfo=tz).astimezone(UTC)
    week = case((Activity.occurred_at >= this_week, 1), else_=0).label("week")
    persons = {u.id: u for u in session.scalars(people.order_by(User.name))}
    rows = session.execute(
        select(Activity.author_id, Activity.kind, week, func.count())
        .where(
            Activity.author_id.in_(persons),
            Activity.kind.in_(deals.TEAM_KINDS),
            Activity.deleted_at.is_(None),
            Activity.occurred_at >= last_week,
            Activity.occurred_at <= now,
        )
        .group_by(Activity.author_id, Activity.kind, week)
    ).all()
    counts = {uid: {w: dict.fromkeys(deals.TEAM_KINDS, 0) for w in (0, 1)} for uid in persons}
    for author_id, kind, w, n in rows:
        counts[author_id][w][kind] = n
    return [
        {"user": persons[uid], "this_week": counts[uid][1], "last_week": counts[uid][0]}
        for uid in persons
    ]
