"""Service-level targets for mentions: a first response and a resolution within so many
minutes, in business hours where the policy sets them; the clock stops while an item
is pending or snoozed (services.triage moves the targets when it starts again).

What belongs here: the active policy and its checks, the arithmetic of business time,
the targets a new mention gets, what an item's clock says now (time left, about to
breach, breached), and the sweep that warns the assignee before a breach and tells the
assignee and the leads (managers and admins) when one happens, once each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from webapp.models import Mention, SlaPolicy, User
from webapp.models.base import utcnow
from webapp.models.triage import OPEN
from webapp.services import audit
from webapp.services.errors import ValidationError
from webapp.services.permissions import require

# The longest a target may be: a quarter of a year of minutes.
MAX_MINUTES = 90 * 24 * 60
LEADS = ("manager", "admin")
# The warning ahead of a target when no policy says otherwise.
DEFAULT_WARN = timedelta(minutes=30)
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def active_policy(session: Session) -> SlaPolicy | None:
    return session.scalar(
        select(SlaPolicy).where(SlaPolicy.active.is_(True)).order_by(SlaPolicy.id.desc())
    )


def _hours(policy_hours: dict | None) -> tuple[ZoneInfo, set[int], time, time] | None:
    if not policy_hours:
        return None
    zone = ZoneInfo(policy_hours["zone"])
    return (
        zone,
        set(policy_hours["days"]),
        time.fromisoformat(policy_hours["start"]),
        time.fromisoformat(policy_hours["end"]),
    )


def add_working(start: datetime, minutes: int, policy_hours: dict | None) -> datetime:
    """start plus minutes of working time: calendar time without business hours, else
    only the minutes inside them (a Friday-evening mention's hour starts on Monday)."""
    hours = _hours(policy_hours)
    if hours is None:
        return start + timedelta(minutes=minutes)
    zone, days, opens, closes = hours
    left = timedelta(minutes=minutes)
    at = start.astimezone(zone)
    for _ in range(MAX_MINUTES // 60 + 800):  # days walked: bounded whatever the policy
        day = at.date()
        window_start = datetime.combine(day, opens, tzinfo=zone)
        window_end = datetime.combine(day, closes, tzinfo=zone)
        if day.weekday() in days and at < window_end:
            begin = max(at, window_start)
            if begin + left <= window_end:
                return (begin + left).astimezone(start.tzinfo)
            left -= window_end - begin
        at = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return at.astimezone(start.tzinfo)


def working_between(start: datetime, end: datetime, policy_hours: dict | None) -> timedelta:
    """The working time from start to end (nothing if end is not later): calendar time
    without business hours, else only the time inside them."""
    if end <= start:
        return timedelta(0)
    hours = _hours(policy_hours)
    if hours is None:
        return end - start
    zone, days, opens, closes = hours
    total = timedelta(0)
    at, stop = start.astimezone(zone), end.astimezone(zone)
    for _ in range(MAX_MINUTES // 60 + 800):  # days walked: bounded whatever the policy
        if at >= stop:
            break
        day = at.date()
        if day.weekday() in days:
            begin = max(at, datetime.combine(day, opens, tzinfo=zone))
            finish = min(stop, datetime.combine(day, closes, tzinfo=zone))
            if finish > begin:
                total += finish - begin
        at = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return total


def resumed(due: datetime, paused_at: datetime, now: datetime, policy_hours: dict | None):
    """A target once its clock starts again at now, having stood still since paused_at.
    Without business hours it moves by the time it stood; with them, the working time
    that was left at the pause counts on from now, so a pause over a weekend moves it by
    no working time (a target already missed at the pause stays where it was)."""
    if _hours(policy_hours) is None:
        return due + (now - paused_at)
    left = working_between(paused_at, due, policy_hours)
    if left <= timedelta(0):
        return due
    return add_working(now, math.ceil(left / timedelta(minutes=1)), policy_hours)


def targets(policy: SlaPolicy | None, start: datetime) -> tuple[datetime | None, datetime | None]:
    """The first-response and resolution targets of an item that reached us at start."""
    if policy is None:
        return None, None
    return (
        add_working(start, policy.first_response_minutes, policy.business_hours),
        add_working(start, policy.resolution_minutes, policy.business_hours),
    )


@dataclass(frozen=True)
class Clock:
    """What an item's clock says: which target is next, when, and its state."""

    target: str  # "first response" or "resolution"
    due: datetime
    state: str  # "ok", "soon", "breached", "paused"

    def words(self, now: datetime) -> str:
        gap = abs(self.due - now)
        span = _span(gap)
        if self.state == "paused":
            return f"{self.target.capitalize()}: clock stopped"
        if self.state == "breached":
            return f"{self.target.capitalize()} overdue by {span}"
        return f"{self.target.capitalize()} due in {span}"


def _span(gap: timedelta) -> str:
    minutes = int(gap.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes // (24 * 60)} days"


def clock(mention: Mention, now: datetime, warn: timedelta = DEFAULT_WARN) -> Clock | None:
    """The item's next target, or None (no policy applied, resolved, or every target met)."""
    if mention.status == "resolved":
        return None
    if mention.first_response_at is None and mention.first_response_due is not None:
        target, due = "first response", mention.first_response_due
    elif mention.resolution_due is not None:
        target, due = "resolution", mention.resolution_due
    else:
        return None
    if mention.sla_paused_at is not None:
        return Clock(target, due, "paused")
    if due <= now:
        return Clock(target, due, "breached")
    return Clock(target, due, "soon" if due - now <= warn else "ok")


def warn_after(session: Session) -> timedelta:
    """How long before a target its assignee is warned, by the active policy."""
    policy = active_policy(session)
    return timedelta(minutes=policy.warn_minutes) if policy else DEFAULT_WARN


def sweep(session: Session, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Warn the assignees of open items about to breach, and tell assignees and leads of
    items that breached; each once (the times are stored, the notifications keyed)."""
    # Notifications build on tasks and contacts, which build on ingest, which builds on
    # this module: imported when a sweep runs.
    from webapp.services import notifications

    now = now or utcnow()
    warn = warn_after(session)
    watched = session.scalars(
        select(Mention)
        .where(
            Mention.status == OPEN,
            Mention.sla_breached_at.is_(None),
            or_(
                Mention.resolution_due <= now + warn,
                Mention.first_response_due <= now + warn,
            ),
        )
        .order_by(Mention.id)
        .limit(limit)
    ).all()
    leads = None
    counts = {"warned": 0, "breached": 0}
    for mention in watched:
        state = clock(mention, now, warn)
        if state is None or state.state in ("ok", "paused"):
            continue
        url = f"/inbox/{mention.id}"
        if state.state == "breached":
            mention.sla_breached_at = now
            if leads is None:
                leads = session.scalars(
                    select(User.id).where(
                        User.role.in_(LEADS), User.disabled_at.is_(None), User.removed_at.is_(None)
                    )
                ).all()
            for user_id in {*leads, *([mention.assignee_id] if mention.assignee_id else [])}:
                notifications.add(
                    session,
                    user_id,
                    f"sla-breach:{mention.id}:{user_id}",
                    "sla",
                    f"SLA breached: {state.target} for @{mention.author_handle}",
                    (mention.text or "")[:200],
                    url,
                )
            counts["breached"] += 1
        elif mention.sla_warned_at is None:
            mention.sla_warned_at = now
            if mention.assignee_id:
                notifications.add(
                    session,
                    mention.assignee_id,
                    f"sla-warn:{mention.id}:{state.target}",
                    "sla",
                    f"{state.words(now)}: @{mention.author_handle}",
                    (mention.text or "")[:200],
                    url,
                )
            counts["warned"] += 1
    return counts


# -- the policy ------------------------------------------------------------------------


def save_policy(session: Session, user: User, form: dict) -> SlaPolicy:
    """Set the active policy from the admin's form. :raise ValidationError:"""
    require(user, "sla.manage")
    errors: dict[str, str] = {}

    def minutes(name: str, label: str) -> int | None:
        raw = str(form.get(name) or "").strip()
        if not raw.isdigit() or len(raw) > 6 or not 1 <= int(raw) <= MAX_MINUTES:
            errors[name] = f"{label}: a number of minutes from 1 to {MAX_MINUTES:,}."
            return None
        return int(raw)

    first = minutes("first_response_minutes", "First response")
    resolution = minutes("resolution_minutes", "Resolution")
    warn = minutes("warn_minutes", "Warning")
    if first and resolution and first > resolution:
        errors["resolution_minutes"] = "Resolution cannot come before the first response."
    hours = None
    if form.get("business_hours"):
        try:
            zone = str(form.get("zone") or "UTC")[:64]
            ZoneInfo(zone)
            start = time.fromisoformat(str(form.get("start") or ""))
            end = time.fromisoformat(str(form.get("end") or ""))
            days = sorted({int(d) for d in form.get("days", []) if str(d) in "0123456"})
        except (ValueError, ZoneInfoNotFoundError, TypeError):
            errors["business_hours"] = "Business hours need a zone, a start and an end time."
        else:
            if end <= start or not days:
                errors["business_hours"] = "Choose at least one day, and an end after the start."
            hours = {
                "zone": zone,
                "days": days,
                "start": start.isoformat("minutes"),
                "end": end.isoformat("minutes"),
            }
    if errors:
        raise ValidationError(errors)
    for old in session.scalars(select(SlaPolicy).where(SlaPolicy.active.is_(True))):
        old.active = False
    policy = SlaPolicy(
        name=str(form.get("name") or "Support")[:80] or "Support",
        first_response_minutes=first,
        resolution_minutes=resolution,
        warn_minutes=warn,
        business_hours=hours,
        active=True,
        created_at=utcnow(),
    )
    session.add(policy)
    session.flush()
    audit.record(
        session,
        user,
        "sla.set",
        "setting",
        policy.id,
        label="SLA policy",
        changes={"first_response_minutes": (None, first), "resolution_minutes": (None, resolution)},
    )
    return policy


def describe(policy: SlaPolicy | None) -> str:
    if policy is None:
        return "No SLA policy: items have no targets."
    text = (
        f"First response within {_span(timedelta(minutes=policy.first_response_minutes))}, "
        f"resolution within {_span(timedelta(minutes=policy.resolution_minutes))}"
    )
    hours = policy.business_hours
    if hours:
        days = ", ".join(DAY_NAMES[d] for d in hours["days"])
        text += f", counted {days} {hours['start']}-{hours['end']} ({hours['zone']})"
    return text + "."
