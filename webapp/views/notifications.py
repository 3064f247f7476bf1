"""Notifications: the in-app list (open one, mark read), the phone's push subscription
(JSON, for static/js/push.js), and the push settings page for admins."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from webapp.extensions import db
from webapp.inputs import json_body
from webapp.services import notifications, push
from webapp.services.errors import ValidationError
from webapp.views import safe_next

bp = Blueprint("notifications", __name__)
MAX_BODY = 8_000


@bp.before_request
@login_required
def signed_in():
    """Every page here needs a signed-in user (the JSON ones answer 401)."""


@bp.get("/notifications")
def index():
    """The user's notifications, newest first."""
    rows = notifications.recent(db.session, current_user)
    _, public_key = push.keys(db.session, current_app.config)
    db.session.commit()  # the key pair, if this was the first to need it
    return render_template("notifications/index.html", rows=rows, public_key=public_key)


@bp.get("/notifications/<int:notification_id>")
def open_one(notification_id: int):
    """Open what the notification is about, marking it read. :raise 404:"""
    row = notifications.get(db.session, current_user, notification_id)
    notifications.mark_read(db.session, current_user, row.id)
    db.session.commit()
    return redirect(safe_next(row.url, url_for("notifications.index")), 303)


@bp.post("/notifications/<int:notification_id>/read")
def read(notification_id: int):
    """Mark one notification read. :raise 404:"""
    notifications.mark_read(db.session, current_user, notification_id)
    db.session.commit()
    return redirect(url_for("notifications.index"), 303)


@bp.post("/notifications/read")
def read_all():
    """Mark all the user's notifications read."""
    notifications.mark_read(db.session, current_user)
    db.session.commit()
    return redirect(url_for("notifications.index"), 303)


@bp.get("/push")
def settings():
    """Whether push can be sent, and why not (admins). :raise 403:"""
    state = push.status(db.session, current_user, current_app.config)
    db.session.commit()
    return render_template("notifications/push.html", state=state)


@bp.post("/api/push/subscription")
def subscribe():
    """Keep this phone's push subscription (PushSubscription.toJSON()): 201, or 422."""
    data = json_body(MAX_BODY)
    try:
        row = push.subscribe(
            db.session,
            current_user,
            data,
            current_app.config,
            request.headers.get("User-Agent", ""),
        )
    except ValidationError as exc:
        db.session.rollback()
        return jsonify(errors=exc.errors), 422
    db.session.commit()
    return jsonify(status="subscribed", id=row.id), 201


@bp.post("/api/push/unsubscribe")
def unsubscribe():
    """Forget this phone's subscription (its endpoint, as JSON)."""
    data = json_body(MAX_BODY)
    endpoint = data.get("endpoint") if isinstance(data, dict) else None
    removed = push.unsubscribe(db.session, current_user, endpoint)
    db.session.commit()
    return jsonify(status="unsubscribed", removed=removed)


@bp.after_request
def never_stored(response):
    """Subscription answers are nobody's cache's business."""
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    return response
