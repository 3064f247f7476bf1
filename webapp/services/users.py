"""Users: creating accounts, roles, disabling, ending sessions and removal, with the
rule that an active admin always remains (invite and password-reset links are in
account_links); every change goes into the audit log in the same transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from webapp.models import ROLES, AccountLink, Contact, User, UserSession
from webapp.models.base import utcnow
from webapp.models.users import REMOVED_EMAIL
from webapp.services import audit
from webapp.services.auth import end_all_sessions
from webapp.services.contacts import EMAIL_RE
from webapp.services.errors import NotFoundError, PermissionDenied, ValidationError
from webapp.services.passwords import MIN_LENGTH, hash_password
from webapp.services.permissions import require

# What a removed user's password hash becomes: no hash at all, so no password matches.
NOT_A_HASH = "!removed"


def _clean_email(email: str | None) -> tuple[str, str | None]:
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        return email, "Enter an email address like name@example.com."
    return email, None


def new_user_errors(
    session: Session,
    email: str,
    name: str,
    role: str,
    taken: str = "A user with this email exists already.",
) -> dict[str, str]:
    """Messages by field for a user who would have this email, name and role; taken is
    the message for an email a user has already."""
    errors: dict[str, str] = {}
    email, problem = _clean_email(email)
    if problem:
        errors["email"] = problem
    elif session.scalar(select(User.id).where(User.email == email)):
        errors["email"] = taken
    if not name or len(name) > 120:
        errors["name"] = "Enter a name of at most 120 characters."
    if role not in ROLES:
        errors["role"] = f"Choose one of: {', '.join(ROLES)}."
    return errors


def create_user(session: Session, email: str, name: str, role: str, password: str) -> User:
    """Add a user. :raise ValidationError: bad email, role, name or short password."""
    email = (email or "").strip().lower()
    name = (name or "").strip()
    errors = new_user_errors(session, email, name, role)
    if len(password or "") < MIN_LENGTH:
        errors["password"] = f"Use at least {MIN_LENGTH} characters."
    if errors:
        raise ValidationError(errors)
    user = User(email=email, name=name, role=role, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, viewer: User, user_id: int) -> User:
    """A user, removed ones included, for those who may see users. :raise NotFoundError:"""
    require(viewer, "user.view")
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"user {user_id}")
    return user


def _managed(session: Session, actor: User, user: User, what: str) -> None:
    """Check that actor may change user: an admin, not on themselves, a user not removed."""
    require(actor, "user.manage")
    if actor.id == user.id:
        raise PermissionDenied(f"an admin cannot {what} their own account")
    if user.removed_at is not None:
        raise NotFoundError(f"user {user.id} is removed")


def list_users(session: Session, viewer: User) -> list[User]:
    """Everyone who is not removed, by name."""
    require(viewer, "user.view")
    return list(session.scalars(select(User).where(User.removed_at.is_(None)).order_by(User.name)))


def removed_users(session: Session, viewer: User) -> list[User]:
    """Removed users, the most recently removed first."""
    require(viewer, "user.view")
    return list(
        session.scalars(
            select(User).where(User.removed_at.is_not(None)).order_by(User.removed_at.desc())
        )
    )


def _session_count(session: Session, user: User) -> int:
    return session.scalar(select(func.count()).where(UserSession.user_id == user.id)) or 0


def end_user_sessions(session: Session, user: User) -> int:
    """End every session of user; how many there were."""
    count = _session_count(session, user)
    end_all_sessions(session, user)
    return count


# The last admin --------------------------------------------------------------------


def _is_active_admin(user: User) -> bool:
    return user.role == "admin" and user.is_active


def _active_admins():
    return select(User.id).where(
        User.role == "admin", User.disabled_at.is_(None), User.removed_at.is_(None)
    )


def _lock_admins(session: Session) -> None:
    """Take the active admins' rows (PostgreSQL; SQLite has one writer at a time anyway),
    so that two admins demoting each other at once are served one after the other."""
    session.execute(_active_admins().order_by(User.id).with_for_update())


def _check_an_admin_remains(session: Session, user: User) -> None:
    """After a change to user is flushed: refuse it if no active admin remains.

    Counting after writing matters on SQLite: the write waits for any other writer, so
    the count sees what that one committed. :raise ValidationError:
    """
    session.flush()
    remaining = session.scalar(select(func.count()).select_from(_active_admins().subquery()))
    if not remaining:
        raise ValidationError(
            {"user": f"{user.name} is the last active admin: make someone else admin first."}
        )


# Roles, disabling, sessions ---------------------------------------------------------


def set_role(session: Session, actor: User, user: User, role: str) -> bool:
    """Give user another role; False when it is their role already.

    :raise PermissionDenied: not an admin, or their own role. :raise ValidationError:
    an unknown role, or the last active admin demoted.
    """
    _managed(session, actor, user, "change the role of")
    if role not in ROLES:
        raise ValidationError({"role": f"Choose one of: {', '.join(ROLES)}."})
    if role == user.role:
        return False
    guard = _is_active_admin(user)
    if guard:
        _lock_admins(session)
    before = user.role
    user.role = role
    if guard:
        _check_an_admin_remains(session, user)
    audit.record(
        session,
        actor,
        "user.role_changed",
        "user",
        user.id,
        label=user.name,
        changes={"role": (before, role)},
    )
    return True


def set_disabled(session: Session, actor: User, user: User, disabled: bool) -> bool:
    """Disable (ending all sessions) or re-enable a user; False when nothing changed.
    Admins only; not oneself; never the last active admin. :raise ValidationError:"""
    _managed(session, actor, user, "disable")
    now = utcnow()
    if disabled and user.disabled_at is None:
        guard = _is_active_admin(user)
        if guard:
            _lock_admins(session)
        user.disabled_at = now
        if guard:
            _check_an_admin_remains(session, user)
        ended = end_user_sessions(session, user)
        audit.record(
            session,
            actor,
            "user.disabled",
            "user",
            user.id,
            label=user.name,
            changes={"disabled_at": (None, now), "sessions": (ended, 0)},
        )
        return True
    if not disabled and user.disabled_at is not None:
        before = user.disabled_at
        user.disabled_at = None
        audit.record(
            session,
            actor,
            "user.enabled",
            "user",
            user.id,
            label=user.name,
            changes={"disabled_at": (before, None)},
        )
        return True
    return False


def end_sessions(session: Session, actor: User, user: User) -> int:
    """Sign user out on every device (a lost phone); how many sessions ended."""
    _managed(session, actor, user, "sign out")
    ended = end_user_sessions(session, user)
    audit.record(
        session,
        actor,
        "user.signed_out",
        "user",
        user.id,
        label=user.name,
        changes={"sessions": (ended, 0)},
    )
    return ended


# Removal ----------------------------------------------------------------------------


def owned_contacts(session: Session, user: User) -> int:
    """How many contacts user owns (deleted ones included: they come back with Undo)."""
    return session.scalar(select(func.count()).where(Contact.owner_id == user.id)) or 0


def successors(session: Session, user: User) -> list[User]:
    """Who may take over user's contacts: everyone else who can sign in."""
    return [u for u in list_active(session) if u.id != user.id]


def list_active(session: Session) -> list[User]:
    """Users who can sign in, by name."""
    return list(
        session.scalars(
            select(User)
            .where(User.removed_at.is_(None), User.disabled_at.is_(None))
            .order_by(User.name)
        )
    )


def remove_user(session: Session, actor: User, user: User, new_owner_id: int | None) -> int:
    """Remove user: no sign-in, no sessions, their email free for a new invite, their row
    kept so their name stays on what they did. Their contacts go to new_owner_id (or to
    no one, for None). Returns how many contacts moved.

    :raise ValidationError: a new owner who cannot sign in, or the last active admin.
    """
    _managed(session, actor, user, "remove")
    new_owner = None
    if new_owner_id is not None:
        new_owner = session.get(User, new_owner_id)
        if new_owner is None or not new_owner.is_active or new_owner.id == user.id:
            raise ValidationError(
                {"owner": "Choose someone who can sign in to take over the contacts."}
            )
    guard = _is_active_admin(user)
    if guard:
        _lock_admins(session)
    now = utcnow()
    user.removed_at = now
    if guard:
        _check_an_admin_remains(session, user)
    moved = owned_contacts(session, user)
    session.execute(
        update(Contact).where(Contact.owner_id == user.id).values(owner_id=new_owner_id),
        execution_options={"synchronize_session": False},
    )
    ended = end_user_sessions(session, user)
    close_links(session, user.email, "removed", now)
    user.former_email = user.email
    user.email = REMOVED_EMAIL.format(user.id)
    user.password_hash = NOT_A_HASH
    audit.record(
        session,
        actor,
        "user.removed",
        "user",
        user.id,
        label=user.name,
        changes={
            "removed_at": (None, now),
            "sessions": (ended, 0),
            "contacts_owned": (moved, 0),
            "contacts_taken_over_by": (None, new_owner.name if new_owner else None),
        },
    )
    session.flush()
    return moved


def close_links(session: Session, email: str, reason: str, now: datetime) -> None:
    """Close every open link for email (a newer one replaces them, or the user went)."""
    session.execute(
        update(AccountLink)
        .where(
            AccountLink.email == email,
            AccountLink.used_at.is_(None),
            AccountLink.revoked_at.is_(None),
        )
        .values(revoked_at=now, revoked_reason=reason),
        execution_options={"synchronize_session": False},
    )
