"""Who may do what: the role table of the design, in one place for views, API and CLI."""

from __future__ import annotations

from typing import Any

from webapp.models import Activity, Contact, User
from webapp.services.errors import PermissionDenied

EVERYONE = {"admin", "manager", "rep", "support", "marketer"}
MANAGERS = {"admin", "manager"}


def _owns(user: User, obj: Any) -> bool:
    if isinstance(obj, Contact):
        return obj.owner_id == user.id
    if isinstance(obj, Activity):
        return obj.author_id == user.id
    return False


def can(user: User | None, action: str, obj: Any = None) -> bool:
    """True when user may perform action (on obj, where the rule depends on ownership)."""
    if user is None or not user.is_active:
        return False
    role = user.role
    if action == "contact.view" or action == "activity.view":
        return role in EVERYONE
    if action == "contact.create":
        return role in MANAGERS | {"rep"}
    if action in {"contact.edit", "contact.delete"}:
        return role in MANAGERS or (role == "rep" and obj is not None and _owns(user, obj))
    if action == "contact.edit_handles":
        return can(user, "contact.edit", obj) or role == "support"
    if action == "activity.create":
        return role in MANAGERS | {"rep", "support"}
    if action == "activity.edit":
        return role in MANAGERS or (
            role in {"rep", "support"} and obj is not None and _owns(user, obj)
        )
    if action == "mention.view":
        return role in EVERYONE
    if action == "mention.create_contact":
        return role in MANAGERS | {"support"}
    if action == "mention.triage":
        return role in MANAGERS | {"support"}
    if action == "source.view":
        return role in MANAGERS
    if action == "source.manage":
        return role == "admin"
    if action == "user.view":
        return role in MANAGERS
    if action == "user.manage":
        return role == "admin"
    if action == "audit.view":
        return role == "admin"
    raise ValueError(f"unknown action {action!r}")


def require(user: User | None, action: str, obj: Any = None) -> None:
    """Raise PermissionDenied unless can(user, action, obj)."""
    if not can(user, action, obj):
        raise PermissionDenied(action)
