"""Create forms that make their record once: a form rendered with a UUID claims it when
it is submitted, and a second copy (a double tap, a resend, Back and submit again)
finds what the first made instead of making another."""

from __future__ import annotations

import uuid as uuidlib
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from webapp.models import FormSubmission, User
from webapp.models.base import utcnow
from webapp.services.errors import ValidationError
from webapp.services.values import insert_once

OUT_OF_DATE = "This form is out of date: reload the page and try again."


def new_key() -> str:
    """A UUID for a form about to be rendered."""
    return str(uuidlib.uuid4())


def claim(session: Session, user: User, key: str | None, kind: str) -> int | None:
    """Claim a form's key; None for the first copy, which goes on to make its record,
    else the id of the record an earlier copy made (committed, even at the same moment:
    the database makes the second claim wait for the first).

    :raise ValidationError: no valid key, or one of another user's or form's.
    """
    try:
        key = str(uuidlib.UUID(str(key)))
    except ValueError:
        raise ValidationError({"uuid": OUT_OF_DATE}) from None
    values = {"uuid": key, "user_id": user.id, "kind": kind}
    if insert_once(session, FormSubmission, values, "uuid") is not None:
        return None
    earlier = session.get(FormSubmission, key)
    if earlier is None or earlier.user_id != user.id or earlier.kind != kind:
        raise ValidationError({"uuid": OUT_OF_DATE})
    if earlier.record_id is None:
        raise ValidationError({"uuid": OUT_OF_DATE})
    return earlier.record_id


def made(session: Session, key: str, record_id: int) -> None:
    """Note what the form with this (claimed) key made."""
    session.execute(
        update(FormSubmission)
        .where(FormSubmission.uuid == str(uuidlib.UUID(key)))
        .values(record_id=record_id)
    )


def purge(session: Session, older_than: timedelta) -> int:
    """Forget form keys older than any form still open on a phone could be."""
    result = session.execute(
        delete(FormSubmission).where(FormSubmission.created_at < utcnow() - older_than)
    )
    return result.rowcount or 0
