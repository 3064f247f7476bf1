"""Mentions as a connector yields them, for tests to ingest, and counting stored rows."""

from datetime import UTC, datetime

from sqlalchemy import func, select

from social.mention import Mention as Incoming
from webapp.extensions import db


def incoming(external_id="1", network="x", handle="Someone", text="I love this product!", **kw):
    """A fetched mention: by default an X post by @Someone, on 20 November 2026."""
    return Incoming(
        network=network,
        external_id=external_id,
        author_handle=handle,
        author_name=kw.pop("name", "Some One"),
        text=text,
        created_at=kw.pop("created_at", datetime(2026, 11, 20, 9, 0, tzinfo=UTC)),
        **kw,
    )


def count(model) -> int:
    """How many rows of the model are stored."""
    return db.session.scalar(select(func.count()).select_from(model))
