"""What a phone keeps for reading with no signal: the user's own contacts, bounded."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.models import Activity, Contact, User
from webapp.services.permissions import require

# The phone saves each of these contact pages (static/js/offline.js states the rest of
# its bounds); a rep with more own contacts gets the ones with the latest activity.
OWN_LIMIT = 200


def own_contacts(session: Session, user: User, limit: int = OWN_LIMIT) -> list[Contact]:
    """The user's live contacts, latest activity (or edit) first, at most limit."""
    require(user, "contact.view")
    latest = (
        select(Activity.contact_id, func.max(Activity.occurred_at).label("at"))
        .join(Contact, Contact.id == Activity.contact_id)
        .where(Contact.owner_id == user.id)
        .group_by(Activity.contact_id)
        .subquery()
    )
    stmt = (
        select(Contact)
        .outerjoin(latest, latest.c.contact_id == Contact.id)
        .where(Contact.owner_id == user.id, Contact.deleted_at.is_(None))
        .order_by(func.coalesce(latest.c.at, Contact.updated_at).desc(), Contact.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))
