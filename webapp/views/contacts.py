"""Contacts: the searchable list, quick add, the contact page with its timeline, edit,
delete and undo, and logging an activity."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from webapp.extensions import db
from webapp.htmx import render, wants_fragment
from webapp.inputs import id_field
from webapp.models.activities import KIND_LABELS
from webapp.services import activities, contact_search, contacts, deals, once, tasks
from webapp.services.errors import ValidationError
from webapp.services.permissions import require
from webapp.templating import coordinate
from webapp.views import form_data, home_for, undo_flash

bp = Blueprint("contacts", __name__)
CONTACT_FIELDS = (
    *contacts.FIELDS,
    *contacts.POSITION_FIELDS,
    "handle_x",
    "handle_mastodon",
    "handle_bluesky",
)


@bp.before_request
@login_required
def signed_in():
    """Every contact page needs a signed-in user."""


@bp.get("/")
def home():
    """The app opens where the signed-in user's work is (support: the inbox)."""
    return redirect(url_for(home_for(current_user)))


def _list_context(
    query: str, mine: bool, after: int | None = None, through: int | None = None
) -> dict:
    if through and not after:
        page = contact_search.list_through(db.session, current_user, query, mine, through)
    else:
        page = contact_search.list_contacts(db.session, current_user, query, after=after, mine=mine)
    return {
        "page": page,
        "page_size": contact_search.PAGE_SIZE,
        "q": query,
        "mine": mine,
    }


@bp.get("/contacts")
def index():
    """The list; a search or a scroll answers with just the rows when htmx asks."""
    query = request.args.get("q", "")[:200]
    mine = request.args.get("mine") == "1"
    after = id_field(request.args, "after")
    ctx = _list_context(query, mine, after, id_field(request.args, "upto"))
    fragment = "contacts/_rows.html" if after else "contacts/_list.html"
    form = {"uuid": once.new_key()}
    return render("contacts/index.html", fragment, **ctx, form=form, errors={}, duplicates=[])


@bp.post("/contacts")
def create():
    """Quick add, once per form however often it is sent; on bad input, or a contact
    with the same email or phone, the list page comes back with messages by the fields."""
    data = form_data(*CONTACT_FIELDS, "uuid")
    try:
        contact, created = contacts.add_contact(
            db.session,
            current_user,
            data,
            data["uuid"],
            duplicates_ok=request.form.get("duplicate_ok") == "1",
        )
    except ValidationError as exc:
        db.session.rollback()
        ctx = _list_context("", False)
        matches = getattr(exc, "matches", [])
        return render_template(
            "contacts/index.html", **ctx, form=data, errors=exc.errors, duplicates=matches
        ), 422
    db.session.commit()
    if created:
        flash(f"Added {contact.name}.", "success")
    return redirect(url_for("contacts.show", contact_id=contact.id), 303)


def _show_context(contact, before: int | None = None, form: dict | None = None) -> dict:
    return {
        "contact": contact,
        "timeline": activities.timeline(db.session, current_user, contact, before=before),
        "contact_deals": deals.contact_deals(db.session, current_user, contact),
        "activity_form": form or {"uuid": activities.new_uuid()},
        "activity_errors": {},
        "contact_tasks": tasks.for_contact(db.session, current_user, contact),
        "open_visit": activities.open_visit(db.session, current_user, contact),
        "checkin_form": {"uuid": activities.new_uuid()},
    }


@bp.get("/contacts/<int:contact_id>")
def show(contact_id: int):
    """The contact page; ?before= pages the timeline (as rows, for htmx). :raise 404:"""
    contact = contacts.get_contact(db.session, current_user, contact_id)
    before = id_field(request.args, "before")
    ctx = _show_context(contact, before)
    fragment = "contacts/_timeline_rows.html" if before else "contacts/_timeline.html"
    return render("contacts/show.html", fragment, **ctx)


@bp.post("/contacts/<int:contact_id>/activities")
def log_activity(contact_id: int):
    """Log a call, visit, meeting, email or note; a resubmitted form is stored once."""
    contact = contacts.get_contact(db.session, current_user, contact_id)
    form = form_data("kind", "body", "uuid", "when", "at", "tz", "outcome")
    # The outcome chips say how a call went; for anything else they mean nothing.
    outcome = form["outcome"] if form["kind"] == "call" else None
    try:
        when = activities.parse_when(form["when"], form["at"], form["tz"])
        activity, created = activities.log_activity(
            db.session,
            current_user,
            contact,
            form["kind"],
            form["body"],
            form["uuid"],
            when,
            outcome=outcome or None,
        )
    except ValidationError as exc:
        ctx = _show_context(contact, form=form)
        ctx["activity_errors"] = exc.errors
        return render("contacts/show.html", "contacts/_timeline.html", status=422, **ctx)
    db.session.commit()
    if wants_fragment():
        ctx = _show_context(contact)
        ctx["logged"] = activity
        return render_template("contacts/_timeline.html", **ctx)
    if created:
        flash(f"{KIND_LABELS[activity.kind]} logged.", "success")
    # ?logged= shows the follow-up chips for the entry just logged.
    return redirect(
        url_for("contacts.show", contact_id=contact.id, logged=activity.kind) + "#timeline", 303
    )


@bp.get("/contacts/<int:contact_id>/edit")
def edit(contact_id: int):
    """The edit form (support staff see only the handles). :raise 404: :raise 403:"""
    contact = contacts.get_contact(db.session, current_user, contact_id)
    require(current_user, "contact.edit_handles", contact)
    form = {f: getattr(contact, f) or "" for f in contacts.FIELDS}
    form.update({f: coordinate(getattr(contact, f)) for f in contacts.POSITION_FIELDS})
    form.update({f"handle_{h.network}": h.handle for h in contact.handles})
    return _edit_page(contact, form, {})


def _edit_page(contact, form: dict, errors: dict, status: int = 200):
    return (
        render_template(
            "contacts/edit.html",
            contact=contact,
            form=form,
            errors=errors,
        ),
        status,
    )


@bp.post("/contacts/<int:contact_id>/edit")
def update(contact_id: int):
    """Save the edit form; bad input comes back with messages and the input kept."""
    contact = contacts.get_contact(db.session, current_user, contact_id)
    form = form_data(*CONTACT_FIELDS)
    try:
        contacts.update_contact(db.session, current_user, contact, form)
    except ValidationError as exc:
        db.session.rollback()
        return _edit_page(contact, form, exc.errors, 422)
    db.session.commit()
    flash("Saved.", "success")
    return redirect(url_for("contacts.show", contact_id=contact.id), 303)


@bp.post("/contacts/<int:contact_id>/delete")
def delete(contact_id: int):
    """Soft-delete, then back to the list with an undo button."""
    contact = contacts.get_contact(db.session, current_user, contact_id)
    contacts.delete_contact(db.session, current_user, contact)
    db.session.commit()
    undo_flash(f"Deleted {contact.name}.", url_for("contacts.restore", contact_id=contact.id))
    return redirect(url_for("contacts.index"), 303)


@bp.post("/contacts/<int:contact_id>/restore")
def restore(contact_id: int):
    """Undo a delete within the undo window. :raise 404: past the window."""
    window = timedelta(minutes=current_app.config["UNDO_MINUTES"])
    contact = contacts.restore_contact(db.session, current_user, contact_id, window)
    db.session.commit()
    flash(f"Restored {contact.name}.", "success")
    return redirect(url_for("contacts.show", contact_id=contact.id), 303)
