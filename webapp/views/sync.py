"""The JSON API of the phone's offline outbox and offline library (static/js/offline.js).

Every answer is JSON, a missing session included (401, never a redirect: fetch would
follow it to the sign-in page's 200). An answer about an entry names its uuid: that is
the only thing the phone takes as a receipt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, jsonify, url_for
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf

from webapp.extensions import db
from webapp.inputs import json_body
from webapp.services import activities, offline, tasks
from webapp.services.errors import NotFoundError, PermissionDenied, ValidationError

bp = Blueprint("sync", __name__, url_prefix="/api")
MAX_BODY = 64_000
GONE = "This contact was deleted while the entry waited, so it was not stored."
TASK_GONE = "This task is no longer yours to tick, or was deleted, so it was not stored."
FORBIDDEN = "You may no longer log entries on this contact, so it was not stored."
VISIT_GONE = "That visit was deleted, or is not yours, so the check-out was not stored."
TASK_FORBIDDEN = "You may not add tasks for this contact, so the follow-up was not stored."


@bp.before_request
@login_required
def signed_in():
    """Every sync endpoint needs a signed-in user (else JSON 401, see security.py)."""


@bp.after_request
def never_stored(response):
    """Answers carry personal data and receipts: no cache may keep or replay them."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/csrf")
def csrf():
    """A fresh CSRF token and who is signed in, fetched before each replay of the outbox."""
    return jsonify(csrf_token=generate_csrf(), user_id=current_user.id)


def _receipt(activity, status: int):
    return jsonify(
        uuid=activity.uuid,
        id=activity.id,
        status="stored",
        contact_id=activity.contact_id,
        kind=activity.kind,
        body=activity.body,
        occurred_at=activity.occurred_at.isoformat(),
        created_at=activity.created_at.isoformat(),
    ), status


def _outbox(store: Callable[[dict], Any], gone: str, forbidden: str | None = None):
    """Store the posted outbox entry with store(entry), committed; (uuid, what store
    gave, None), or (uuid, None, the refusal): 400 not a JSON object, 422 by field, 404
    gone, 403 forbidden (404 too when forbidden is None: not the user's to see)."""
    data = json_body(MAX_BODY)
    if not isinstance(data, dict):
        return None, None, (jsonify(error="Send the entry as a JSON object."), 400)
    key = data.get("uuid") if isinstance(data.get("uuid"), str) else None
    try:
        stored = store(data)
        db.session.commit()
    except ValidationError as exc:
        db.session.rollback()
        return key, None, (jsonify(uuid=key, errors=exc.errors), 422)
    except NotFoundError:
        db.session.rollback()
        return key, None, (jsonify(uuid=key, error=gone), 404)
    except PermissionDenied:
        db.session.rollback()
        refusal = (jsonify(uuid=key, error=forbidden), 403) if forbidden else None
        return key, None, refusal or (jsonify(uuid=key, error=gone), 404)
    return key, stored, None


@bp.post("/activities")
def log_activity():
    """Store an outbox entry once per uuid: 201 stored, 200 a replay with the stored
    record, 422 invalid (errors by field), 404 contact gone, 403 not allowed."""
    _key, stored, refused = _outbox(
        lambda entry: activities.log_synced(db.session, current_user, entry), GONE, FORBIDDEN
    )
    if refused:
        return refused
    activity, created = stored
    return _receipt(activity, 201 if created else 200)


@bp.post("/tasks/done")
def task_done():
    """A task ticked done on the phone (the outbox's task-done entry: uuid, task_id,
    done_at): 200 with the task done however often it arrives (a replay keeps the
    first time), 422 invalid, 404 gone or not the user's to see."""
    key, task, refused = _outbox(
        lambda entry: tasks.done_synced(db.session, current_user, entry), TASK_GONE
    )
    if refused:
        return refused
    return jsonify(
        uuid=key, status="stored", task_id=task.id, done_at=task.done_at.isoformat()
    ), 200


@bp.post("/activities/check-out")
def check_out():
    """A check-out tapped on the phone (the outbox's check-out entry: uuid, visit_uuid,
    ended_at): 200 with the visit's end however often it arrives (a replay keeps the
    first), 422 invalid, 404 the visit not stored, deleted or not the user's."""
    key, visit, refused = _outbox(
        lambda entry: activities.check_out_synced(db.session, current_user, entry), VISIT_GONE
    )
    if refused:
        return refused
    return jsonify(
        uuid=key, status="stored", activity_id=visit.id, ended_at=visit.ended_at.isoformat()
    ), 200


def _follow_up(entry: dict):
    contact_id = entry.get("contact_id")
    is_id = isinstance(contact_id, int) and not isinstance(contact_id, bool)
    if not is_id or not 0 < contact_id < 2**31:
        raise ValidationError({"contact_id": "Say which contact."})
    zone = entry.get("time_zone")
    return tasks.follow_up(
        db.session,
        current_user,
        contact_id,
        entry.get("preset"),
        entry.get("uuid"),
        zone if isinstance(zone, str) else None,
        entry.get("kind"),
    )


@bp.post("/tasks/follow-up")
def follow_up():
    """A follow-up chip tapped on the phone (the outbox's follow-up entry: uuid,
    contact_id, preset, time_zone, kind): 201 made, 200 a replay with the task it made,
    422 invalid, 404 the contact gone, 403 not allowed."""
    key, stored, refused = _outbox(_follow_up, GONE, TASK_FORBIDDEN)
    if refused:
        return refused
    task, created = stored
    return jsonify(uuid=key, status="stored", task_id=task.id, due_at=task.due_at.isoformat()), (
        201 if created else 200
    )


@bp.get("/offline/contacts")
def offline_contacts():
    """The user's own contacts, for the phone to save for offline reading (bounded)."""
    rows = offline.own_contacts(db.session, current_user)
    return jsonify(
        user_id=current_user.id,
        limit=offline.OWN_LIMIT,
        contacts=[
            {
                "id": c.id,
                "name": c.name,
                "company": c.company or "",
                "phone": c.phone or "",
                "url": url_for("contacts.show", contact_id=c.id),
            }
            for c in rows
        ],
    )
