"""RQ jobs: plain importable functions taking ids; they load their own rows.

They run inside the app context that `crm worker` pushes before it starts working.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from webapp.extensions import db
from webapp.models import Contact
from webapp.models.base import utcnow
from webapp.services import contacts, users

PURGE_AFTER = timedelta(days=30)
LOGIN_FAILURE_TTL = timedelta(days=1)


def purge_deleted_contacts() -> int:
    """Remove contacts soft-deleted more than 30 days ago, with their timelines."""
    ids = contacts.deleted_since(db.session, utcnow() - PURGE_AFTER)
    for start in range(0, len(ids), 500):
        db.session.execute(delete(Contact).where(Contact.id.in_(ids[start : start + 500])))
    db.session.commit()
    return len(ids)


def purge_login_failures() -> int:
    """Forget failed sign-ins older than a day (the lock window is far shorter)."""
    count = users.purge_login_failures(db.session, LOGIN_FAILURE_TTL)
    db.session.commit()
    return count
