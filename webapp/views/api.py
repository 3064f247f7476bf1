"""The JSON API, apart from the hypermedia pages: today the inbound webhook for mentions."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, request

from social import webhook as signed
from webapp.extensions import csrf, db
from webapp.inputs import read_body
from webapp.services import webhooks
from webapp.services.errors import NotFoundError, ValidationError

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.post("/webhooks/<int:source_id>")
@csrf.exempt
def webhook(source_id: int):
    """Accept normalized mentions signed with the source's secret (HMAC-SHA256).

    401 for a missing or wrong signature, 404 for an unknown, paused or deleted source,
    422 for a body that is not mentions; nothing is stored unless all of it is valid.
    """
    try:
        source = webhooks.webhook_source(db.session, source_id)
    except NotFoundError:
        return jsonify(error="No such webhook."), 404
    body = read_body(signed.MAX_BODY)
    try:
        outcome = webhooks.receive_webhook(
            db.session,
            source,
            body,
            request.headers.get(signed.SIGNATURE_HEADER, ""),
            request.headers.get(signed.TIMESTAMP_HEADER, ""),
            now=int(time.time()),
        )
    except webhooks.WebhookRefused as exc:
        return jsonify(error=str(exc)), 401
    except ValidationError as exc:
        return jsonify(error=exc.errors["body"]), 422
    db.session.commit()
    current_app.logger.info("webhook %s: %d stored", source.id, len(outcome.stored))
    return jsonify(stored=len(outcome.stored), duplicates=outcome.duplicates), 202
