"""The JSON API, apart from the hypermedia pages: today the inbound webhook for mentions."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, request

from social import webhook as signed
from social.mention import MentionError
from webapp.extensions import csrf, db
from webapp.inputs import read_body
from webapp.models import Source
from webapp.services import mentions, sources

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.post("/webhooks/<int:source_id>")
@csrf.exempt
def webhook(source_id: int):
    """Accept normalized mentions signed with the source's secret (HMAC-SHA256).

    401 for a missing or wrong signature, 404 for an unknown, paused or deleted source, 422 for
    a body that is not mentions; nothing is stored unless all of it is valid.
    """
    source = db.session.get(Source, source_id)
    if (
        source is None
        or source.kind != "webhook"
        or not source.enabled
        or source.deleted_at is not None
    ):
        return jsonify(error="No such webhook."), 404
    body = read_body(signed.MAX_BODY)
    try:
        signed.verify(
            source.secret or "",
            body,
            request.headers.get("X-CRM-Signature", ""),
            request.headers.get("X-CRM-Timestamp", ""),
            now=int(time.time()),
        )
    except signed.WebhookError as exc:
        return jsonify(error=str(exc)), 401
    try:
        parsed = signed.parse(
            body, namespace=str(source.id), network=sources.webhook_network(source)
        )
    except (signed.WebhookError, MentionError) as exc:
        return jsonify(error=str(exc)), 422
    outcome = mentions.ingest(db.session, parsed, source)
    db.session.commit()
    current_app.logger.info("webhook %s: %d stored", source.id, len(outcome.stored))
    return jsonify(stored=len(outcome.stored), duplicates=outcome.duplicates), 202
