"""The social inbox: support's queue (open items, most urgent first, with why), every
mention newest first with filters, one mention's page with its triage (status,
assignee, notes, the label people give it), and linking mentions to contacts."""

from __future__ import annotations

import hashlib
from datetime import datetime, time, timedelta

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_login import current_user, login_required

from social import networks, sentiment
from webapp.extensions import db
from webapp.htmx import render
from webapp.inputs import id_field
from webapp.models import CannedReply
from webapp.models.triage import SNOOZED, STATUSES
from webapp.services import (
    authors,
    canned,
    contact_search,
    contacts,
    inbox_bulk,
    lexicon,
    mentions,
    presence,
    replies,
    routing,
    triage,
)
from webapp.services import sources as source_service
from webapp.services.errors import ValidationError
from webapp.services.permissions import can
from webapp.templating import user_zone
from webapp.views import counted, undo_flash

bp = Blueprint("inbox", __name__, url_prefix="/inbox")


@bp.before_request
@login_required
def signed_in():
    """Every inbox page needs a signed-in user."""


def _filters() -> dict:
    matched = request.args.get("matched")
    network = request.args.get("network")
    source_id = id_field(request.args, "source")
    return {
        # Sources are for those the role table lets see them.
        "source_id": source_id if can(current_user, "source.view") else None,
        "network": network if network in networks.NETWORKS else None,
        "label": request.args.get("label")
        if request.args.get("label") in (*sentiment.LABELS, "unscored")
        else None,
        "matched": {"yes": True, "no": False}.get(matched),
    }


# What the inbox can show: a status's queue, or every mention newest first.
VIEWS = (*STATUSES, "all")
ASSIGNEES = ("me", "none")


def _view() -> str:
    """The status asked for; triage staff start on the open queue, readers on all."""
    view = request.args.get("status")
    if view in VIEWS:
        return view
    return "open" if can(current_user, "mention.triage") else "all"


@bp.get("/")
def index():
    """The open queue (or another status's), most urgent first, or every mention newest
    first (status=all); filters and scrolling answer with rows for htmx. With live=1
    (the page's poll) it answers 304 when the first page and the counts are as the page
    has them (v), else the fresh list and counts."""
    view = _view()
    fragment, context = _queue(view) if view != "all" else _everything()
    if request.args.get("live"):
        return _live(context)
    return render("inbox/index.html", fragment, **context)


def _everything() -> tuple[str, dict]:
    filters = _filters()
    before = id_field(request.args, "before")
    through = id_field(request.args, "upto")
    if through and not before:
        page = mentions.list_through(db.session, current_user, through, **filters)
    else:
        page = mentions.list_mentions(db.session, current_user, before=before, **filters)
    counts = _counts()
    return ("inbox/_rows.html" if before else "inbox/_list.html"), {
        "view": "all",
        "counts": counts,
        "page": page,
        "page_size": mentions.PAGE_SIZE,
        "sources": _sources(),
        "capped": source_service.capped_sources(db.session),
        "args": _kept_args("source", "network", "label", "matched", "status"),
        "version": _version(page.mentions, counts),
    }


def _version(rows, counts: dict | None) -> str:
    """What the first page shows, in a few characters: a poll that brings the same
    version back gets a 304."""
    shown = [(m.id, m.priority, m.status, m.assignee_id, m.label, m.contact_id) for m in rows]
    return _digest((shown, counts))


def _digest(shown: object) -> str:
    return hashlib.sha1(repr(shown).encode(), usedforsecurity=False).hexdigest()[:16]


def _polled(version: str, fresh):
    """A poll's answer: 304 with no body when it brings back version (as v, or as an
    If-None-Match), else fresh() rendered; never kept by a cache without asking."""
    etag = f'"{version}"'
    if request.args.get("v") == version or request.headers.get("If-None-Match") == etag:
        response = current_app.response_class(status=304)
    else:
        response = current_app.make_response(fresh())
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "no-cache, private"
    return response


def _live(context: dict):
    """The queue's poll: nothing new, or the list and the counts to swap in; the list
    waits behind a notice while items are selected for a bulk action."""
    held = bool(request.args.getlist("ids"))
    return _polled(
        context["version"],
        lambda: render("inbox/_live.html", "inbox/_live.html", held=held, oob=True, **context),
    )


def _kept_args(*names: str) -> dict[str, str]:
    """The filters of this request that the next page's link carries on."""
    return {k: v for k, v in request.args.items() if k in names and v}


def _sources() -> list:
    """The sources to filter by, for those the role table lets see them."""
    if not can(current_user, "source.view"):
        return []
    return source_service.list_sources(db.session, current_user)


def _counts() -> dict | None:
    """Open, mine and unassigned, for those who triage."""
    if not can(current_user, "mention.triage"):
        return None
    return triage.counts(db.session, current_user)


@bp.post("/available")
def available():
    """Switch oneself in or out of the round robin; switching in hands over what waits."""
    if not can(current_user, "mention.triage"):
        abort(403)
    on = request.form.get("available") == "1"
    given = routing.set_available(db.session, current_user, current_user, on)
    db.session.commit()
    if on:
        got = f" and got {counted(given, 'waiting item')}" if given else ""
        flash(f"You are taking new items{got}.", "success")
    else:
        flash("You are not taking new items; what you hold stays yours.", "success")
    return redirect(url_for("inbox.index", status="open", assignee="me"), 303)


def _assignee_from_form() -> int | None:
    """Whom a form assigns to: oneself ("me", or the "Assign to me" button, since the
    form's select sends its choice as well), nobody ("" or "none"), or a user's id.
    :raise ValidationError:"""
    raw = request.form.get("assignee", "")
    if request.form.get("assign_me") or raw == "me":
        return current_user.id
    if raw in ("", "none"):
        return None
    assignee = id_field(request.form, "assignee")
    if assignee is None:
        raise ValidationError({"assignee": "Choose someone on the support team."})
    return assignee


def _queue_back():
    """Where a bulk action returns: the queue it was made from (a path of the inbox)."""
    back = request.form.get("back", "")
    if back.startswith("/inbox/") and "//" not in back and "\\" not in back:
        return redirect(back, 303)
    return redirect(url_for("inbox.index"), 303)


@bp.post("/bulk")
def bulk():
    """Assign, resolve or label the selected items (a resolve can be undone)."""
    if not can(current_user, "mention.triage"):
        abort(403)
    action = request.form.get("action", "")
    value: str | int | None = None
    try:
        ids = inbox_bulk.parse_ids(request.form.getlist("ids"))
        if action == "assign":
            value = _assignee_from_form()
        elif action == "label":
            value = request.form.get("label", "")
        done = inbox_bulk.apply(db.session, current_user, ids, action, value)
    except ValidationError as exc:
        db.session.rollback()
        for message in exc.errors.values():
            flash(message, "error")
        return _queue_back()
    db.session.commit()
    text = _bulk_text(action, done)
    if done.restore:
        undo_flash(text, url_for("inbox.bulk_undo"), restore=",".join(done.restore))
    else:
        flash(text, "success")
    return _queue_back()


def _bulk_text(action: str, done: inbox_bulk.BulkResult) -> str:
    verb = {"assign": "Assigned", "resolve": "Resolved", "label": "Labelled"}[action]
    parts = [f"{verb} {counted(done.changed, 'item')}."]
    if done.unchanged:
        parts.append(f"{done.unchanged} already so.")
    if done.missing:
        parts.append(f"{done.missing} no longer there.")
    return " ".join(parts)


@bp.post("/bulk/undo")
def bulk_undo():
    """Put back what a bulk resolve moved."""
    if not can(current_user, "mention.triage"):
        abort(403)
    try:
        back = inbox_bulk.restore(db.session, current_user, request.form.get("restore", ""))
    except ValidationError as exc:
        db.session.rollback()
        flash(next(iter(exc.errors.values())), "error")
        return redirect(url_for("inbox.index"), 303)
    db.session.commit()
    flash(f"Put back {counted(back, 'item')}.", "success")
    return redirect(url_for("inbox.index"), 303)


def _queue(status: str) -> tuple[str, dict]:
    filters = _filters()
    assignee = request.args.get("assignee")
    assignee = assignee if assignee in ASSIGNEES else None
    after = request.args.get("after")
    picking = can(current_user, "mention.triage")
    # The team for the bulk form; the items' assignees come from it too.
    team = triage.assignable(db.session) if picking and not after else []
    page = triage.queue(
        db.session,
        current_user,
        status=status,
        assignee=assignee,
        network=filters["network"],
        label=filters["label"],
        source_id=filters["source_id"],
        after=after,
        people={u.id: u for u in team} if team else None,
    )
    counts = _counts()
    return ("inbox/_queue_rows.html" if after else "inbox/_queue.html"), {
        "view": status,
        "counts": counts,
        "queue": page,
        "assignee": assignee,
        "picking": picking,
        "assignable": team,
        "sources": _sources(),
        "capped": source_service.capped_sources(db.session),
        "args": _kept_args("source", "network", "label", "assignee", "status"),
        "version": _version(page.mentions, counts),
    }


@bp.get("/<int:mention_id>")
def show(mention_id: int):
    """One mention with its author, sentiment, the contacts it may be, and a search of
    every contact to link it to (?q=, answered with the results alone for htmx)."""
    mention = mentions.get_mention(db.session, current_user, mention_id)
    draft = ""
    canned_id = id_field(request.args, "canned")
    if canned_id and can(current_user, "mention.reply"):
        chosen = db.session.get(CannedReply, canned_id)
        if chosen is not None:
            draft = canned.fill(chosen.body, mention, current_user)
    return _page(mention, draft=draft)


@bp.get("/<int:mention_id>/presence")
def presence_check(mention_id: int):
    """The page's poll: says who is here (viewing, or replying while the reply box holds
    a draft) and hears who else is, and whether the thread changed since the page was
    loaded (seen); 304 when nothing it shows changed (v)."""
    mention = mentions.get_mention(db.session, current_user, mention_id)
    others = presence.here(
        current_app.config.get("REDIS_URL"),
        mention.id,
        current_user.id,
        current_user.name,
        request.args.get("doing", ""),
    )
    seen = request.args.get("seen", "")[:64]
    changed = seen != replies.mark(db.session, mention)
    st, who = request.args.get("st", ""), request.args.get("who", "")
    moved = (st, who) != (mention.status, str(mention.assignee_id or 0))
    version = _digest((others, changed, moved, mention.status, mention.assignee_id))
    return _polled(
        version,
        lambda: render(
            "inbox/_presence.html",
            "inbox/_presence.html",
            mention=mention,
            others=others,
            changed=changed,
            moved=moved,
            seen=seen,
            st=st,
            who=who,
            version=version,
            statuses=triage.STATUS_LABELS,
        ),
    )


def _page(
    mention,
    draft: str = "",
    news: list[str] | None = None,
    seen: str | None = None,
    status: int = 200,
):
    """The mention's page, with the reply form holding draft (and what is new in the
    thread when a reply was held back)."""
    query = request.args.get("q", "").strip()[:200]
    found = (
        contact_search.list_contacts(db.session, current_user, query, limit=10) if query else None
    )
    may_reply = can(current_user, "mention.reply")
    return render(
        "inbox/show.html",
        "inbox/_link_search.html",
        mention=mention,
        suggestions=contact_search.suggestions(db.session, mention),
        q=query,
        found=found.contacts if found else None,
        why=triage.why(mention),
        author=authors.of(db.session, current_user, mention),
        explanation=sentiment.explain(
            mention.text or "", mention.language, lexicon.in_force(db.session, mention.fetched_at)
        ),
        notes=triage.notes(db.session, mention),
        correction=triage.correction(db.session, mention),
        assignable=triage.assignable(db.session) if can(current_user, "mention.triage") else [],
        statuses=triage.STATUS_LABELS,
        snooze_choices=_snooze_choices(),
        thread=replies.thread(db.session, mention),
        reply_states=replies.STATE_LABELS,
        composer=replies.composer(mention) if may_reply else None,
        canned=[
            (c, canned.fill(c.body, mention, current_user))
            for c in canned.canned_replies(db.session)
        ]
        if may_reply
        else [],
        draft=draft,
        news=news,
        seen=seen or replies.mark(db.session, mention),
        status=status,
    )


def _snooze_choices() -> list[tuple[str, str]]:
    """Quick snoozes as (label, ISO time in the user's zone)."""
    zone = user_zone()
    now = datetime.now(zone)
    tomorrow = datetime.combine(now.date() + timedelta(days=1), time(9), tzinfo=zone)
    monday = now.date() + timedelta(days=7 - now.weekday())
    return [
        ("1 hour", (now + timedelta(hours=1)).replace(second=0, microsecond=0).isoformat()),
        ("Tomorrow 9:00", tomorrow.isoformat()),
        ("Monday 9:00", datetime.combine(monday, time(9), tzinfo=zone).isoformat()),
    ]


def _back(mention_id: int):
    return redirect(url_for("inbox.show", mention_id=mention_id), 303)


def _refused(exc: ValidationError, mention_id: int):
    db.session.rollback()
    flash(" ".join(exc.errors.values()), "error")
    return _back(mention_id)


def _when(raw: str | None) -> datetime | None:
    """A snooze time from the form: an ISO time with its offset (the quick choices),
    or a datetime-local value in the user's zone; None if it is neither."""
    raw = (raw or "").strip()[:40]
    if not raw:
        return None
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=user_zone())


@bp.post("/<int:mention_id>/status")
def set_status(mention_id: int):
    """Open, pending, snoozed (until a time) or resolved. :raise 404: :raise 403:"""
    mention = mentions.get_mention(db.session, current_user, mention_id)
    status = request.form.get("status", "")
    # A quick choice is the tapped button's until, the field beside them is another
    # (empty unless typed); htmx sends the button's value after the field's.
    chosen = next((v for v in request.form.getlist("until") if v.strip()), None)
    until = _when(chosen) if status == SNOOZED else None
    before, before_until = mention.status, mention.snoozed_until
    try:
        triage.set_status(db.session, current_user, mention, status, until)
    except ValidationError as exc:
        return _refused(exc, mention.id)
    db.session.commit()
    if before != mention.status:
        text = f"Marked {triage.STATUS_LABELS[mention.status].lower()}."
        if mention.status == SNOOZED and until:
            local = until.astimezone(user_zone())
            text = f"Snoozed until {local.strftime('%-d %b, %H:%M')}."
        back = {"status": before}
        if before == SNOOZED and before_until:
            back["until"] = before_until.isoformat()
        undo_flash(text, url_for("inbox.set_status", mention_id=mention.id), **back)
    return _back(mention.id)


@bp.post("/<int:mention_id>/assign")
def assign(mention_id: int):
    """Give the item to someone (or to nobody), unless someone else did first."""
    mention = mentions.get_mention(db.session, current_user, mention_id)
    try:
        assignee = _assignee_from_form()
    except ValidationError as exc:
        abort(400, exc.errors["assignee"])
    seen = request.form.get("seen", "any")
    expected: int | str | None = "any"
    if seen == "none":
        expected = None
    elif seen.isdigit() and len(seen) < 10:
        expected = int(seen)
    try:
        triage.assign(db.session, current_user, mention, assignee, expected)
    except ValidationError as exc:
        return _refused(exc, mention.id)
    except triage.ConflictError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back(mention.id)
    db.session.commit()
    holder = mention.assignee.name if mention.assignee else None
    flash(f"Assigned to {holder}." if holder else "Unassigned.", "success")
    return _back(mention.id)


@bp.post("/<int:mention_id>/notes")
def add_note(mention_id: int):
    """An internal note, for the team only."""
    mention = mentions.get_mention(db.session, current_user, mention_id)
    try:
        triage.add_note(db.session, current_user, mention, request.form.get("note", ""))
    except ValidationError as exc:
        return _refused(exc, mention.id)
    db.session.commit()
    flash("Note added.", "success")
    return _back(mention.id)


@bp.post("/<int:mention_id>/label")
def correct_label(mention_id: int):
    """A person's label for the mention; VADER's score stays as it was."""
    mention = mentions.get_mention(db.session, current_user, mention_id)
    try:
        triage.correct_label(
            db.session,
            current_user,
            mention,
            request.form.get("label", ""),
            request.form.get("reason", ""),
        )
    except ValidationError as exc:
        return _refused(exc, mention.id)
    db.session.commit()
    flash(f"Labelled {request.form['label']}.", "success")
    return _back(mention.id)


def _offer_undo(mention_id: int, text: str, previous: int | None) -> None:
    """A flash that undoes a link or an unlink: back to the contact it was on, or none."""
    if previous:
        action = url_for("inbox.link", mention_id=mention_id)
        undo_flash(text, action, contact_id=previous)
    else:
        undo_flash(text, url_for("inbox.unlink", mention_id=mention_id))


@bp.post("/<int:mention_id>/link")
def link(mention_id: int):
    """Put the mention on a contact's timeline, with an undo. :raise 404: :raise 403:"""
    mention = mentions.get_mention(db.session, current_user, mention_id)
    contact = contacts.get_contact(
        db.session, current_user, id_field(request.form, "contact_id") or 0
    )
    previous = mentions.link(db.session, current_user, mention, contact)
    db.session.commit()
    _offer_undo(mention.id, f"Linked to {contact.name}.", previous)
    return redirect(url_for("inbox.show", mention_id=mention.id), 303)


@bp.post("/<int:mention_id>/unlink")
def unlink(mention_id: int):
    """Take the mention off the contact's timeline, with an undo. :raise 404: :raise 403:"""
    mention = mentions.get_mention(db.session, current_user, mention_id)
    previous = mentions.unlink(db.session, current_user, mention)
    db.session.commit()
    if previous:
        action = url_for("inbox.link", mention_id=mention.id)
        undo_flash("Unlinked.", action, contact_id=previous)
    return redirect(url_for("inbox.show", mention_id=mention.id), 303)


@bp.post("/<int:mention_id>/contact")
def create_contact(mention_id: int):
    """Make the mention's author a new contact with this handle, and link the mention."""
    mention = mentions.get_mention(db.session, current_user, mention_id)
    try:
        contact = contacts.create_from_mention(db.session, current_user, mention)
    except ValidationError as exc:
        db.session.rollback()
        flash(" ".join(exc.errors.values()), "error")
        return redirect(url_for("inbox.show", mention_id=mention.id), 303)
    db.session.commit()
    flash(f"Added {contact.name} and linked the mention.", "success")
    return redirect(url_for("contacts.show", contact_id=contact.id), 303)


@bp.post("/<int:mention_id>/reply")
def reply(mention_id: int):
    """Queue a reply to the post, sent by a worker; held back (nothing queued) when the
    thread changed since the page was loaded, with what is new and the draft kept."""
    mention = mentions.get_mention(db.session, current_user, mention_id)
    body = request.form.get("body", "")
    try:
        made, new = replies.ask(
            db.session,
            current_user,
            mention,
            body,
            request.form.get("key"),
            request.form.get("thread"),
        )
    except ValidationError as exc:
        db.session.rollback()
        flash(" ".join(exc.errors.values()), "error")
        return _page(mention, draft=body, status=422)
    except replies.ThreadChanged as exc:
        db.session.rollback()
        return _page(mention, draft=body, news=exc.new, seen=exc.mark, status=409)
    db.session.commit()
    if new:
        _send(made.id)
        flash("Reply queued: it is sent in a moment.", "success")
    return _back(mention.id)


def _send(reply_id: int) -> None:
    """Hand the reply to a worker; if Redis cannot take it now, the row waits and the
    minute's sweep queues it again."""
    from redis.exceptions import RedisError

    from workers import jobs, queues

    try:
        jobs.enqueue_reply(reply_id, queues.connect(current_app.config["REDIS_URL"]))
    except RedisError:
        current_app.logger.warning("reply %s waits for the sweep: Redis is unreachable", reply_id)
