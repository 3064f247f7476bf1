"""Inbound webhooks: the source a signed request is for, and storing what it sent once
its signature holds."""

from __future__ import annotations

from sqlalchemy.orm import Session

from social import webhook
from social.mention import MentionError
from webapp.models import Source
from webapp.services import mentions
from webapp.services.errors import NotFoundError, ValidationError
from webapp.services.sources import webhook_network


def webhook_source(session: Session, source_id: int) -> Source:
    """The live, enabled webhook source with this id (no one is signed in: the sender
    proves itself by its signature). :raise NotFoundError:"""
    source = session.get(Source, source_id)
    if (
        source is None
        or source.kind != "webhook"
        or not source.enabled
        or source.deleted_at is not None
    ):
        raise NotFoundError(f"webhook {source_id}")
    return source


class WebhookRefused(Exception):
    """A webhook request whose signature or time does not hold; the message says why
    (never the secret)."""


def receive_webhook(
    session: Session,
    source: Source,
    body: bytes,
    signature: str,
    timestamp: str,
    now: int,
) -> mentions.IngestResult:
    """Verify a webhook body and store its mentions, all or nothing. The caller commits.

    :raise WebhookRefused: unsigned, wrongly signed or stale.
    :raise ValidationError: a body that is not mentions, with the reason under "body".
    """
    try:
        webhook.verify(source.secret or "", body, signature, timestamp, now=now)
    except webhook.WebhookError as exc:
        raise WebhookRefused(str(exc)) from None
    try:
        parsed = webhook.parse(body, namespace=str(source.id), network=webhook_network(source))
    except (webhook.WebhookError, MentionError) as exc:
        raise ValidationError({"body": str(exc)}) from None
    return mentions.ingest(session, parsed, source)
