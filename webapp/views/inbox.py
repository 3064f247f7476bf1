"""The social inbox: support's queue (open items, most urgent first, with why), every
mention newest first with filters, one mention's page with its triage (status,
assignee, notes, the label people give it), and linking mentions to contacts."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_login import current_user, login_required

from social import networks, sentiment
from webapp.extensions import db
from webapp.htmx import render
from webapp.inputs import id_field
from webapp.models import CannedReply
from webapp.models.triage import SNOOZED, STATUSES
from webapp.services import contact_search, contacts, mentions, replies, sla, triage
from webapp.services import sources as source_service
from webapp.services.errors import ValidationError
from webapp.services.permissions import can
from webapp.templating import user_zone
from webapp.views import undo_flash

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
    first (status=all); filters and scrolling answer with rows for htmx."""
    view = _view()
    if view != "all":
        return _queue(view)
    filters = _filters()
    before = id_field(request.args, "before")
    through = id_field(request.args, "upto")
    if through and not before:
        page = mentions.list_through(db.session, current_user, through, **filters)
    else:
        page = mentions.list_mentions(db.session, current_user, before=before, **filters)
    sources = _sources()
    capped = source_service.capped_sources(db.session)
    args = _kept_args("source", "network", "label", "matched", "status")
    fragment = "inbox/_rows.html" if before else "inbox/_list.html"
    return render(
        "inbox/index.html",
        fragment,
        view=view,
        counts=_counts(),
        page=page,
        page_size=mentions.PAGE_SIZE,
        sources=sources,
        capped=capped,
        args=args,
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


def _queue(status: str):
    filters = _filters()
    assignee = request.args.get("assignee")
    assignee = assignee if assignee in ASSIGNEES else None
    after = request.args.get("after")
    page = triage.queue(
        db.session,
        current_user,
        status=status,
        assignee=assignee,
        network=filters["network"],
        label=filters["label"],
        source_id=filters["source_id"],
        after=after,
    )
    args = _kept_args("source", "network", "label", "assignee", "status")
    fragment = "inbox/_queue_rows.html" if after else "inbox/_queue.html"
    return render(
        "inbox/index.html",
        fragment,
        view=status,
        counts=_counts(),
        queue=page,
        assignee=assignee,
        sources=_sources(),
        capped=source_service.capped_sources(db.session),
        args=args,
    )


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
            draft = triage.fill(chosen.body, mention, current_user)
    return _page(mention, draft=draft)


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
        explanation=sentiment.explain(mention.text or "", mention.language),
        notes=triage.notes(db.session, mention),
        correction=triage.correction(db.session, mention),
        assignable=triage.assignable(db.session) if can(current_user, "mention.triage") else [],
        statuses=triage.STATUS_LABELS,
        snooze_choices=_snooze_choices(),
        thread=replies.thread(db.session, mention),
        reply_states=replies.STATE_LABELS,
        composer=replies.composer(mention) if may_reply else None,
        canned=[
            (c, triage.fill(c.body, mention, current_user))
            for c in triage.canned_replies(db.session)
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
    until = _when(request.form.get("until")) if status == SNOOZED else None
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
    raw = request.form.get("assignee", "")
    # "Assign to me" is its own button: the form's select sends its choice as well.
    if request.form.get("assign_me") or raw == "me":
        assignee = current_user.id
    elif raw in ("", "none"):
        assignee = None
    else:
        assignee = id_field(request.form, "assignee")
        if assignee is None:
            abort(400, "Choose someone on the support team.")
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


@bp.get("/canned")
def canned():
    """The ready replies, with their short codes; adding and changing them."""
    if not can(current_user, "canned.manage"):
        abort(403)
    return render(
        "inbox/canned.html",
        "inbox/canned.html",
        canned=triage.canned_replies(db.session),
        variables=triage.VARIABLES,
        form={},
        errors={},
    )


@bp.post("/canned")
def save_canned():
    """Add a ready reply, or change one (canned_id)."""
    if not can(current_user, "canned.manage"):
        abort(403)
    canned_id = id_field(request.form, "canned_id")
    existing = db.session.get(CannedReply, canned_id) if canned_id else None
    if canned_id and existing is None:
        abort(404)
    try:
        saved = triage.save_canned(
            db.session,
            current_user,
            request.form.get("short_code", ""),
            request.form.get("body", ""),
            existing,
        )
    except ValidationError as exc:
        db.session.rollback()
        return render(
            "inbox/canned.html",
            "inbox/canned.html",
            status=422,
            canned=triage.canned_replies(db.session),
            variables=triage.VARIABLES,
            form=request.form,
            errors=exc.errors,
        )
    db.session.commit()
    flash(f"Saved /{saved.short_code}.", "success")
    return redirect(url_for("inbox.canned"), 303)


@bp.post("/canned/<int:canned_id>/delete")
def delete_canned(canned_id: int):
    triage.delete_canned(db.session, current_user, canned_id)
    db.session.commit()
    flash("Deleted.", "success")
    return redirect(url_for("inbox.canned"), 303)


@bp.route("/sla", methods=["GET", "POST"])
def sla_policy():
    """The service-level targets mentions are held to (admins set them)."""
    if not can(current_user, "sla.manage"):
        abort(403)
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = {**request.form.to_dict(), "days": request.form.getlist("days")}
        try:
            sla.save_policy(db.session, current_user, form)
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            flash("SLA policy saved: it applies to mentions from now on.", "success")
            return redirect(url_for("inbox.sla_policy"), 303)
    policy = sla.active_policy(db.session)
    return render(
        "inbox/sla.html",
        "inbox/sla.html",
        status=422 if errors else 200,
        policy=policy,
        described=sla.describe(policy),
        days=sla.DAY_NAMES,
        errors=errors,
    )
