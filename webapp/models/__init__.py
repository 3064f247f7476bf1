"""SQLAlchemy models, one module per aggregate; importing this package registers them all."""

from webapp.models.activities import ACTIVITY_KINDS, Activity
from webapp.models.contacts import NETWORKS, Contact, ContactHandle
from webapp.models.users import ROLES, LoginFailure, User

__all__ = [
    "ACTIVITY_KINDS",
    "NETWORKS",
    "ROLES",
    "Activity",
    "Contact",
    "ContactHandle",
    "LoginFailure",
    "User",
]
