"""Users: creating accounts and disabling them (which ends their sessions)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import ROLES, User
from webapp.models.base import utcnow
from webapp.services.auth import end_all_sessions
from webapp.services.contacts import EMAIL_RE
from webapp.services.errors import PermissionDenied, ValidationError
from webapp.services.passwords import MIN_LENGTH, hash_password
from webapp.services.permissions import require


def create_user(session: Session, email: str, name: str, role: str, password: str) -> User:
    """Add a user. :raise ValidationError: bad email, role, name or short password."""
    email = (email or "").strip().lower()
    name = (name or "").strip()
    errors: dict[str, str] = {}
    if not EMAIL_RE.match(email) or len(email) > 254:
        errors["email"] = "Enter an email address like name@example.com."
    elif session.scalar(select(User.id).where(User.email == email)):
        errors["email"] = "A user with this email exists already."
    if not name or len(name) > 120:
        errors["name"] = "Enter a name of at most 120 characters."
    if role not in ROLES:
        errors["role"] = f"Choose one of: {', '.join(ROLES)}."
    if len(password or "") < MIN_LENGTH:
        errors["password"] = f"Use at least {MIN_LENGTH} characters."
    if errors:
        raise ValidationError(errors)
    user = User(email=email, name=name, role=role, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def set_disabled(session: Session, actor: User, user: User, disabled: bool) -> None:
    """Disable (ending all sessions) or re-enable a user. Admins only; not oneself."""
    require(actor, "user.manage")
    if actor.id == user.id:
        raise PermissionDenied("an admin cannot disable their own account")
    if disabled and user.disabled_at is None:
        user.disabled_at = utcnow()
        end_all_sessions(session, user)
    elif not disabled:
        user.disabled_at = None
