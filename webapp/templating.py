"""What templates get beyond Flask's own: filters and globals, each defined once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from flask import Flask, current_app, g, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from social import networks, sentiment
from webapp.extensions import db
from webapp.models.activities import CALL_OUTCOMES, KIND_LABELS, WHEN_LABELS
from webapp.models.base import utcnow
from webapp.models.deals import LOST_REASONS, STAGE_KINDS
from webapp.models.sources import SOURCE_KIND_LABELS
from webapp.models.tasks import TASK_KINDS, TASK_STATUSES
from webapp.models.users import ROLE_LABELS
from webapp.services import money, notifications, once, sla, triage
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
    # Counted as the user was loaded, except where notifications are read and marked.
    counted = getattr(current_user, "unread_count", None)
    if counted is not None and request.blueprint != "notifications":
        return counted
    return notifications.unread_count(db.session, current_user)


# Kept headers: (role, page, unread count, script root) -> HTML. Bounded, since the
# unread count can be any number; a full cache is simply started again.
NAVIGATION_KEPT = 512


def navigation() -> Markup:
    """The header with the main navigation, rendered once for each role, page and unread
    count and then kept: everything in it follows from those (the places a role may go
    ask the role table without a record), and building it anew for every page cost a
    list page about a tenth of its time."""
    user = current_user
    signed_in = bool(user.is_authenticated)
    role = user.role if signed_in else None
    unread = unread_notifications() if signed_in and can(user, "notification.view") else 0
    key = (role, request.endpoint, request.blueprint, request.script_root, unread)
    kept = current_app.extensions.setdefault("navigation", {})
    html = kept.get(key)
    if html is None:
        if len(kept) >= NAVIGATION_KEPT:
            kept.clear()
        # Rendered by Jinja with autoescaping: already escaped HTML.
        html = kept[key] = Markup(render_template("_navigation.html", unread=unread))  # noqa: S704
    return html


def sla_clock(mention):
    """The mention's SLA clock for a row or a page (the policy's warning read once a
    request), or None."""
    warn = g.get("sla_warn")
    if warn is None:
        warn = g.sla_warn = sla.warn_after(db.session)
    now = utcnow()
    state = sla.clock(mention, now, warn)
    return (state.state, state.words(now)) if state else None


def icon_url(name: str) -> str:
    """The address of an icon in the sprite; the sprite's own address is built once a
    request (a list page draws an icon on nearly every row)."""
    sprite = g.get("icon_sprite_url")
    if sprite is None:
        sprite = g.icon_sprite_url = url_for("static", filename="icons/sprite.svg")
    return f"{sprite}#{name}"


class IdUrl:
    """The address of endpoint for any id, built once: routing builds one address with a
    stand-in id and each row puts its own in the stand-in's place. A page of 50 rows
    would otherwise ask the URL map 50 times for addresses that differ only there."""

    STAND_IN = 2147483647  # the largest id a route accepts: it cannot collide with text

    def __init__(self, endpoint: str, field: str, **values: Any):
        built = url_for(endpoint, **{field: self.STAND_IN}, **values)
        self.head, _, self.tail = built.partition(str(self.STAND_IN))

    def __call__(self, record_id: int) -> Markup:
        # int() keeps anything but a number out of the address, as routing would.
        return Markup(f"{self.head}{int(record_id)}{self.tail}")  # noqa: S704 - built by routing


def id_url(endpoint: str, field: str, **values: Any) -> IdUrl:
    """Build endpoint's address once for a page's rows: id_url(...)(row.id)."""
    return IdUrl(endpoint, field, **values)


@dataclass(frozen=True)
class TaskRows:
    """What every task row of a response shares: the time they are shown at, the CSRF
    token, where their forms come back to, and their addresses."""

    now: datetime
    token: str
    back: str
    show: IdUrl
    done: IdUrl
    undone: IdUrl


def task_rows() -> TaskRows:
    """TaskRows, worked out once a request (Today and the task list have dozens of rows,
    each of which asks)."""
    kit = g.get("task_rows")
    if kit is None:
        kit = g.task_rows = TaskRows(
            utcnow(),
            generate_csrf(),
            request.path,
            IdUrl("tasks.show", "task_id"),
            IdUrl("tasks.done", "task_id"),
            IdUrl("tasks.undone", "task_id"),
        )
    return kit


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
    app.add_template_global(navigation)
    # The same on every page: serialised once, not once a page.
    app.add_template_global(htmlsafe_json_dumps(KIND_LABELS, app.json.dumps), "KIND_LABELS_JSON")
    app.add_template_global(unread_notifications)
    app.add_template_global(utcnow, "now_utc")
    app.add_template_global(user_zone)
    app.add_template_global(TASK_KINDS, "TASK_KINDS")
    app.add_template_global(FOLLOW_UPS, "FOLLOW_UPS")
    app.add_template_filter(lambda kind: TASK_KINDS.get(kind, kind), "task_kind")
    app.add_template_filter(lambda status: TASK_STATUSES.get(status, status), "task_status")
    app.add_template_filter(local_time)
    app.add_template_global(icon_url)
    app.add_template_global(id_url)
    app.add_template_global(task_rows)
    app.add_template_global(once.new_key, "new_form_key")
    app.add_template_global(triage.why, "triage_why")
    app.add_template_global(triage.shown_count)
    app.add_template_global(sla_clock)
