"""Nearby contacts around where the phone is (or a place or contact given), and
checking in on a contact's visit."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from webapp.extensions import db
from webapp.htmx import render
from webapp.inputs import id_field
from webapp.services import activities, contacts, nearby
from webapp.services.errors import ValidationError
from webapp.services.permissions import require
from webapp.templating import coordinate
from webapp.views import form_data

bp = Blueprint("nearby", __name__)


@bp.before_request
@login_required
def signed_in():
    """Nearby and check-in need a signed-in user."""


@bp.get("/nearby")
def index():
    """The contacts nearest to ?latitude=&longitude= (or to ?contact=), own unless
    ?all=1; without a place, the page that asks for one. :raise 404: unknown contact."""
    require(current_user, "nearby.view")
    mine = request.args.get("all") != "1"
    form = {f: request.args.get(f, "")[:40] for f in ("latitude", "longitude", "accuracy_m")}
    errors: dict[str, str] = {}
    centre, around, results, accuracy = None, None, None, None
    contact_id = id_field(request.args, "contact")
    try:
        accuracy = nearby.parse_accuracy(form["accuracy_m"])
        if contact_id is not None:
            around = contacts.get_contact(db.session, current_user, contact_id)
            centre = nearby.centre_of(around)
            if centre is None:
                errors["contact"] = f"{around.name} has no coordinates yet: check in there first."
            form.update(
                latitude=coordinate(around.latitude), longitude=coordinate(around.longitude)
            )
        else:
            centre = nearby.parse_point(form["latitude"], form["longitude"])
    except ValidationError as exc:
        errors.update(exc.errors)
    if centre is not None:
        results = nearby.nearest(db.session, current_user, centre, mine=mine)
    context = {
        "form": form,
        "errors": errors,
        "mine": mine,
        "results": results,
        "around": around,
        "accuracy": accuracy,
    }
    status = 422 if errors else 200
    return render("nearby/index.html", "nearby/_search.html", status=status, **context)


@bp.post("/contacts/<int:contact_id>/check-in")
def check_in(contact_id: int):
    """Log a visit now, stamped with where the phone is (when it could tell); a form sent
    twice is one visit. :raise 404:"""
    contact = contacts.get_contact(db.session, current_user, contact_id)
    form = form_data("uuid", "latitude", "longitude", "accuracy_m")
    try:
        position = nearby.parse_point(form["latitude"], form["longitude"])
        accuracy = nearby.parse_accuracy(form["accuracy_m"])
        _, created = activities.log_activity(
            db.session,
            current_user,
            contact,
            "visit",
            "",
            form["uuid"],
            position=position,
            accuracy_m=accuracy,
        )
    except ValidationError as exc:
        db.session.rollback()
        message = "Not checked in: " + " ".join(exc.errors.values())
        return render_template("errors/error.html", status=422, message=message), 422
    db.session.commit()
    if created:
        flash("Checked in." if position else "Checked in (without a position).", "success")
    return redirect(url_for("contacts.show", contact_id=contact.id) + "#check-in", 303)
