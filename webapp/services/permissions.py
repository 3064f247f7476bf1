"""Who may do what: the role table of the design, in one place for views, API and CLI."""

from __future__ import annotations

from typing import Any

from webapp.models import Activity, Contact, Deal, Task, User
from webapp.services.errors import PermissionDenied

EVERYONE = {"admin", "manager", "rep", "support", "marketer"}
MANAGERS = {"admin", "manager"}


def _owns(user: User, obj: Any) -> bool:
    if isinstance(obj, Contact):
        return obj.owner_id == user.id
    if isinstance(obj, Activity):
        return obj.author_id == user.id
    if isinstance(obj, Deal):
        return obj.owner_id == user.id
    if isinstance(obj, Task):
        return obj.assignee_id == user.id or obj.created_by_id == user.id
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
    # Deals and tasks: a rep works their own, managers and admins all, marketers read.
    # Without a record ("deal.view" for the list), the answer is whether the role sees
    # any at all; services narrow a rep's lists to their own.
    if action in {"deal.view", "task.view"}:
        if role in MANAGERS | {"marketer"}:
            return True
        return role == "rep" and (obj is None or _owns(user, obj))
    if action in {"deal.create", "task.create"}:
        return role in MANAGERS | {"rep"}
    if action in {"deal.edit", "task.edit"}:
        return role in MANAGERS or (role == "rep" and obj is not None and _owns(user, obj))
    if action == "deal.view_all":
        return role in MANAGERS | {"marketer"}
    if action == "task.assign_others":
        return role in MANAGERS
    if action == "stage.manage":
        return role == "admin"
    if action == "forecast.view":
        return role in MANAGERS | {"marketer"}
    if action == "team.view":
        return role in MANAGERS
    if action == "nearby.view":
        return role in MANAGERS | {"rep"}
    if action == "today.view":
        return role in MANAGERS | {"rep"}
    if action == "notification.view":
        return role in EVERYONE
    if action == "push.manage":
        return role == "admin"
    if action == "mention.view":
        return role in EVERYONE
    if action == "mention.create_contact":
        return role in MANAGERS | {"support"}
    # Support, managers and admins triage and reply; reps and marketers read.
    if action in {"mention.triage", "mention.reply"}:
        return role in MANAGERS | {"support"}
    if action == "canned.manage":
        return role in MANAGERS | {"support"}
    if action == "triage.team":
        return role in MANAGERS
    if action in {"lexicon.manage", "sla.manage", "triage.stats"}:
        return role == "admin"
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
