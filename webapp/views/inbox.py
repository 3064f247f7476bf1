"""The social inbox: mentions newest first with filters, and linking them to contacts."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_required

from social import networks, sentiment
from webapp.extensions import db
from webapp.htmx import render
from webapp.inputs import id_field
from webapp.services import contact_search, contacts, mentions
from webapp.services import sources as source_service
from webapp.services.errors import ValidationError
from webapp.services.permissions import can
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


@bp.get("/")
def index():
    """Mentions, newest first; filters and scrolling answer with rows for htmx."""
    filters = _filters()
    before = id_field(request.args, "before")
    through = id_field(request.args, "upto")
    if through and not before:
        page = mentions.list_through(db.session, current_user, through, **filters)
    else:
        page = mentions.list_mentions(db.session, current_user, before=before, **filters)
    may_see = can(current_user, "source.view")
    sources = source_service.list_sources(db.session, current_user) if may_see else []
    capped = source_service.capped_sources(db.session)
    args = {
        k: v
        for k, v in request.args.items()
        if k in {"source", "network", "label", "matched"} and v
    }
    fragment = "inbox/_rows.html" if before else "inbox/_list.html"
    return render(
        "inbox/index.html",
        fragment,
        page=page,
        page_size=mentions.PAGE_SIZE,
        sources=sources,
        capped=capped,
        args=args,
    )


@bp.get("/<int:mention_id>")
def show(mention_id: int):
    """One mention with its author, sentiment, the contacts it may be, and a search of
    every contact to link it to (?q=, answered with the results alone for htmx)."""
    mention = mentions.get_mention(db.session, current_user, mention_id)
    query = request.args.get("q", "").strip()[:200]
    found = (
        contact_search.list_contacts(db.session, current_user, query, limit=10) if query else None
    )
    return render(
        "inbox/show.html",
        "inbox/_link_search.html",
        mention=mention,
        suggestions=contact_search.suggestions(db.session, mention),
        q=query,
        found=found.contacts if found else None,
    )


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
