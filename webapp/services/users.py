"""Users: creating accounts, password checks with throttling, ending sessions, disabling."""

from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from webapp.models import ROLES, LoginFailure, User
from webapp.models.base import utcnow
from webapp.services.contacts import EMAIL_RE
from webapp.services.errors import PermissionDenied, ValidationError
from webapp.services.permissions import require

MIN_PASSWORD = 10
_hasher = PasswordHasher()
_dummy_hash: str | None = None


def configure_hasher(profile: str) -> None:
    """Use an argon2-cffi parameter profile (RFC_9106_LOW_MEMORY unless told otherwise).

    Hashes made with other parameters still verify, and are rehashed at next sign-in.
    """
    global _hasher, _dummy_hash
    names = ("RFC_9106_LOW_MEMORY", "RFC_9106_HIGH_MEMORY", "CHEAPEST")
    if profile not in names:
        raise ValueError(f"ARGON2_PROFILE must be one of {', '.join(names)}, not {profile!r}")
    _hasher = PasswordHasher.from_parameters(getattr(profiles, profile))
    _dummy_hash = None


def _dummy() -> str:
    """A hash to verify against when the email is unknown, so that a wrong email costs
    as long as a wrong password."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("not a password of anyone")
    return _dummy_hash


class LoginThrottled(Exception):
    """Too many failures for this account or address; minutes says how long to wait."""

    def __init__(self, minutes: int):
        super().__init__(f"throttled for {minutes} min")
        self.minutes = minutes


def hash_password(password: str) -> str:
    """An argon2id hash of password."""
    return _hasher.hash(password)


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
    if len(password or "") < MIN_PASSWORD:
        errors["password"] = f"Use at least {MIN_PASSWORD} characters."
    if errors:
        raise ValidationError(errors)
    user = User(email=email, name=name, role=role, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def _recent_failures(session: Session, key: str, window: timedelta) -> int:
    return session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.key == key, LoginFailure.at > utcnow() - window)
    )


def authenticate(
    session: Session,
    email: str,
    password: str,
    client: str,
    max_failures: int,
    lock: timedelta,
) -> User | None:
    """Return the active user with this email and password, or None.

    Each failure is recorded against the account and the client address; past
    max_failures within the lock window, sign-in is refused before the password is
    even checked. :raise LoginThrottled:
    """
    email = (email or "").strip().lower()
    keys = [f"account:{email}", f"client:{client}"]
    limits = [max_failures, max_failures * 4]
    for key, limit in zip(keys, limits, strict=True):
        if _recent_failures(session, key, lock) >= limit:
            raise LoginThrottled(int(lock.total_seconds() // 60))

    user = session.scalar(select(User).where(User.email == email))
    ok = False
    try:
        ok = _hasher.verify(user.password_hash if user else _dummy(), password or "")
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or not user.is_active:
        session.add_all(LoginFailure(key=key) for key in keys)
        return None

    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.execute(delete(LoginFailure).where(LoginFailure.key == keys[0]))
    user.last_login_at = utcnow()
    return user


def end_all_sessions(session: Session, user: User) -> None:
    """Invalidate every session of user, on every device, at once."""
    user.session_version += 1


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


def purge_login_failures(session: Session, older_than: timedelta) -> int:
    """Delete failure records older than the lock window; return how many."""
    result = session.execute(delete(LoginFailure).where(LoginFailure.at < utcnow() - older_than))
    return result.rowcount or 0
