"""One entry of a timeline: edit it, say how a call went, check out of a visit, delete
it and undo the delete."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from webapp.extensions import db
from webapp.models.activities import KIND_LABELS
from webapp.services import activities
from webapp.services.errors import ValidationError
from webapp.services.permissions import require
from webapp.views import form_data, undo_flash

bp = Blueprint("activities", __name__, url_prefix="/activities")


@bp.before_request
@login_required
def signed_in():
    """Every entry action needs a signed-in user."""


def _back(activity, anchor: str = "timeline"):
    return redirect(url_for("contacts.show", contact_id=activity.contact_id) + f"#{anchor}", 303)


def _edit_page(activity, form: dict, errors: dict, status: int = 200):
    return render_template("activities/edit.html", entry=activity, form=form, errors=errors), status


@bp.get("/<int:activity_id>/edit")
def edit(activity_id: int):
    """The edit form of one's own entry. :raise 404: :raise 403:"""
    activity = activities.get_entry(db.session, current_user, activity_id)
    require(current_user, "activity.edit", activity)
    form = {"body": activity.body, "outcome": activity.outcome or "", "when": "keep"}
    return _edit_page(activity, form, {})


@bp.post("/<int:activity_id>/edit")
def update(activity_id: int):
    """Save the edit; bad input comes back with messages and nothing changed."""
    activity = activities.get_entry(db.session, current_user, activity_id)
    require(current_user, "activity.edit", activity)
    form = form_data("body", "outcome", "when", "at", "tz")
    try:
        # The edit form offers "as logged" in place of "just now".
        keep = form["when"] in (None, "", "keep", "now")
        when = None if keep else activities.parse_when(form["when"], form["at"], form["tz"])
        changed = activities.edit_activity(
            db.session, current_user, activity, form["body"], when, form["outcome"]
        )
    except ValidationError as exc:
        db.session.rollback()
        return _edit_page(activity, form, exc.errors, 422)
    db.session.commit()
    flash(f"{KIND_LABELS[activity.kind]} saved." if changed else "Nothing changed.", "success")
    return _back(activity, f"entry-{activity.id}")


@bp.post("/<int:activity_id>/outcome")
def outcome(activity_id: int):
    """Say how a call went (reached, no answer, voicemail)."""
    activity = activities.get_entry(db.session, current_user, activity_id)
    try:
        activities.set_outcome(db.session, current_user, activity, form_data("outcome")["outcome"])
    except ValidationError as exc:
        db.session.rollback()
        message = " ".join(exc.errors.values())
        return render_template("errors/error.html", status=422, message=message), 422
    db.session.commit()
    return _back(activity, f"entry-{activity.id}")


@bp.post("/<int:activity_id>/check-out")
def check_out(activity_id: int):
    """End a visit now; a second tap keeps the first check-out."""
    activity = activities.get_entry(db.session, current_user, activity_id)
    try:
        ended = activities.check_out(db.session, current_user, activity)
    except ValidationError as exc:
        message = " ".join(exc.errors.values())
        return render_template("errors/error.html", status=422, message=message), 422
    db.session.commit()
    if ended:
        flash("Checked out.", "success")
    return _back(activity, f"entry-{activity.id}")


@bp.post("/<int:activity_id>/delete")
def delete(activity_id: int):
    """Take one's own entry off the timeline, with Undo."""
    activity = activities.get_entry(db.session, current_user, activity_id)
    activities.delete_activity(db.session, current_user, activity)
    db.session.commit()
    undo_flash(
        f"{KIND_LABELS[activity.kind]} deleted.",
        url_for("activities.restore", activity_id=activity.id),
    )
    return _back(activity)


@bp.post("/<int:activity_id>/restore")
def restore(activity_id: int):
    """Undo a delete within the undo window. :raise 404: past the window."""
    window = timedelta(minutes=current_app.config["UNDO_MINUTES"])
    activity = activities.restore_activity(db.session, current_user, activity_id, window)
    db.session.commit()
    flash(f"{KIND_LABELS[activity.kind]} restored.", "success")
    return _back(activity, f"entry-{activity.id}")
