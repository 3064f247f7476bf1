"""What templates get beyond Flask's own: filters and globals, each defined once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from flask import Flask, request, url_for
from flask_login import current_user

from social import networks, sentiment
from webapp.extensions import db
from webapp.models.activities import CALL_OUTCOMES, KIND_LABELS, WHEN_LABELS
from webapp.models.base import utcnow
from webapp.models.deals import LOST_REASONS, STAGE_KINDS
from webapp.models.sources import SOURCE_KIND_LABELS
from webapp.models.tasks import TASK_KINDS, TASK_STATUSES
from webapp.models.users import ROLE_LABELS
from webapp.services import money, notifications, once
from webapp.services.permissions import can
from webapp.services.tasks import FOLLOW_UPS, zone


@dataclass(frozen=True)
class Place:
    """A destination of the main navigation: where it goes, what it is called, its icon,
    and what the role table asks of those who see it (None: everyone signed in)."""

    endpoint: str
    label: str
    icon: str
    action: str | None = None


# In the order they appear; each role's own start page goes first.
PLACES = (
    Place("today.index", "Today", "today", "today.view"),
    Place("contacts.index", "Contacts", "contacts", "contact.view"),
    Place("deals.index", "Deals", "deals", "deal.view"),
    Place("nearby.index", "Nearby", "nearby", "nearby.view"),
    Place("inbox.index", "Inbox", "inbox", "mention.view"),
    Place("tasks.index", "Tasks", "tasks", "task.view"),
    Place("notifications.index", "Notifications", "bell", "notification.view"),
    Place("sources.index", "Sources", "sources", "source.view"),
    Place("users.index", "Users", "users", "user.view"),
    Place("users.audit_log", "Audit log", "audit", "audit.view"),
)
# How many places a phone's tab bar holds before the rest go under "More".
TABS = 4


def places(user) -> list[Place]:
    """The places user may go, the role's start page first."""
    from webapp.views import home_for

    allowed = [p for p in PLACES if p.action is None or can(user, p.action)]
    home = home_for(user)
    return sorted(allowed, key=lambda p: p.endpoint != home)


def nav(user) -> dict:
    """The main navigation for user: the tabs a phone shows, what goes under More, and
    which place the current page belongs to."""
    shown = places(user)
    tabs, more = (shown, []) if len(shown) <= TABS else (shown[: TABS - 1], shown[TABS - 1 :])
    current = next((p.endpoint for p in shown if request.endpoint == p.endpoint), None) or next(
        (p.endpoint for p in shown if request.blueprint == p.endpoint.partition(".")[0]), None
    )
    return {"tabs": tabs, "more": more, "current": current}


def may(action: str, obj: Any = None) -> bool:
    """Whether the signed-in user may do action (to obj): the role table, for templates."""
    return can(current_user, action, obj)


def user_zone():
    """The zone this browser reported (a cookie app.js sets), else UTC."""
    return zone(request.cookies.get("tz"))


def unread_notifications() -> int:
    """How many notifications the signed-in user has not read (the badge by its place)."""
    if not current_user.is_authenticated:
        return 0
    return notifications.unread_count(db.session, current_user)


def icon_url(name: str) -> str:
    """The address of an icon in the sprite."""
    return f"{url_for('static', filename='icons/sprite.svg')}#{name}"


def mailto(address: str) -> str:
    """A mailto: link for address: everything a link could read as more than the
    address (?, &, #, %) is escaped, so no one can add recipients or a subject."""
    return "mailto:" + quote(address, safe="@+")


def money_totals(totals: dict[str, int]) -> str:
    """Sums in several currencies, one beside the other (never added together)."""
    if not totals:
        return "0"
    return " + ".join(money.format_money(v, c) for c, v in sorted(totals.items()))


def local_time(moment, tz=None, fmt: str = "%a %d %b, %H:%M") -> str:
    """A UTC moment as the clock reads in zone tz (a name or a ZoneInfo; UTC when none)."""
    if moment is None:
        return ""
    tz = zone(tz) if tz is None or isinstance(tz, str) else tz
    return moment.astimezone(tz).strftime(fmt)


def coordinate(value: float | None) -> str:
    """A latitude or longitude as a form shows it: six decimals (about 10 cm), or ""."""
    return "" if value is None else f"{value:.6f}".rstrip("0").rstrip(".")


def distance(metres: float) -> str:
    """A distance as a person reads it: "350 m", "1.2 km", "12 km"."""
    if metres < 995:
        return f"{max(10, round(metres, -1)):.0f} m"
    if metres < 9950:
        return f"{metres / 1000:.1f} km"
    return f"{metres / 1000:,.0f} km"


def duration(start: datetime, end: datetime | None) -> str:
    """How long from start to end: "25 min", "1 h 05 min"."""
    if end is None:
        return ""
    minutes = max(0, round((end - start).total_seconds() / 60))
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def map_link(latitude: float, longitude: float) -> str:
    """A link that opens a map app (or the web map) at a point."""
    return "https://www.google.com/maps/search/?api=1&query=" + quote(
        f"{latitude:.6f},{longitude:.6f}", safe=""
    )


def init_app(app: Flask) -> None:
    """Register the filters and globals."""
    app.add_template_filter(mailto)
    app.add_template_filter(coordinate)
    app.add_template_filter(distance)
    app.add_template_global(duration)
    app.add_template_global(map_link)
    app.add_template_global(CALL_OUTCOMES, "CALL_OUTCOMES")
    app.add_template_global(WHEN_LABELS, "WHEN_LABELS")
    app.add_template_filter(networks.label, "network")
    app.add_template_filter(lambda kind: KIND_LABELS.get(kind, kind), "kind")
    app.add_template_filter(lambda role: ROLE_LABELS.get(role, role), "role")
    app.add_template_filter(money.format_money, "money")
    app.add_template_filter(money_totals)
    app.add_template_global(may, "can")
    app.add_template_global(sorted(money.CURRENCIES), "CURRENCIES")
    app.add_template_global(LOST_REASONS, "LOST_REASONS")
    app.add_template_global(STAGE_KINDS, "STAGE_KINDS")
    app.add_template_global(KIND_LABELS, "KIND_LABELS")
    app.add_template_global(networks.LABELS, "NETWORK_LABELS")
    app.add_template_global(ROLE_LABELS, "ROLE_LABELS")
    app.add_template_global(SOURCE_KIND_LABELS, "SOURCE_KIND_LABELS")
    app.add_template_global(sentiment.LABELS, "SENTIMENT_LABELS")
    app.add_template_global(nav)
    app.add_template_global(unread_notifications)
    app.add_template_global(utcnow, "now_utc")
    app.add_template_global(user_zone)
    app.add_template_global(TASK_KINDS, "TASK_KINDS")
    app.add_template_global(FOLLOW_UPS, "FOLLOW_UPS")
    app.add_template_filter(lambda kind: TASK_KINDS.get(kind, kind), "task_kind")
    app.add_template_filter(lambda status: TASK_STATUSES.get(status, status), "task_status")
    app.add_template_filter(local_time)
    app.add_template_global(icon_url)
    app.add_template_global(once.new_key, "new_form_key")
