"""Users: creating accounts, invite and password-reset links, roles, disabling, ending
sessions and removal, with the rule that an active admin always remains; every change
goes into the audit log in the same transaction."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
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

LINK_LIFETIME = timedelta(days=7)
# What a removed user's password hash becomes: no hash at all, so no password matches.
NOT_A_HASH = "!removed"


def _clean_email(email: str | None) -> tuple[str, str | None]:
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        return email, "Enter an email address like name@example.com."
    return email, None


def _new_user_errors(
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
    errors = _new_user_errors(session, email, name, role)
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


def _end_sessions(session: Session, user: User) -> int:
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
        ended = _end_sessions(session, user)
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
    ended = _end_sessions(session, user)
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
    ended = _end_sessions(session, user)
    _close_links(session, user.email, "removed", now)
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


# Invite and reset links -------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _close_links(session: Session, email: str, reason: str, now: datetime) -> None:
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


def _new_link(session: Session, link: AccountLink) -> str:
    """Store link as the one open link of its email, replacing any other; its token.

    Two requests for one email at once (a double submit): on PostgreSQL the second waits
    on the unique index for the first to commit, fails, and replaces it here instead.
    """
    token = secrets.token_urlsafe(32)
    link.token_hash = _token_hash(token)
    for attempt in (1, 2):
        _close_links(session, link.email, "replaced", link.created_at)
        try:
            # Rolled back alone on a clash, the link leaves the session again.
            with session.begin_nested():
                session.add(link)
            return token
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def invite(
    session: Session, actor: User, email: str, name: str, role: str
) -> tuple[AccountLink, str]:
    """Make a one-time invite link for a new user (replacing an open one for the email);
    the link and its token, which is shown once and never stored.

    :raise ValidationError: bad email, name or role, or a user with the email exists.
    """
    require(actor, "user.manage")
    email = (email or "").strip().lower()
    name = (name or "").strip()
    errors = _new_user_errors(
        session,
        email,
        name,
        role,
        taken="A user with this email exists already: make them a password-reset link instead.",
    )
    if errors:
        raise ValidationError(errors)
    now = utcnow()
    link = AccountLink(
        kind="invite",
        email=email,
        name=name,
        role=role,
        created_by_id=actor.id,
        created_at=now,
        expires_at=now + LINK_LIFETIME,
    )
    token = _new_link(session, link)
    audit.record(
        session,
        actor,
        "user.invited",
        "invite",
        link.id,
        label=email,
        changes={"email": (None, email), "name": (None, name), "role": (None, role)},
    )
    return link, token


def make_reset_link(session: Session, actor: User, user: User) -> tuple[AccountLink, str]:
    """Make a one-time password-reset link for user (replacing an open one); the link
    and its token. :raise ValidationError: the user is disabled."""
    require(actor, "user.manage")
    if user.removed_at is not None:
        raise NotFoundError(f"user {user.id} is removed")
    if user.disabled_at is not None:
        raise ValidationError({"user": f"{user.name} is disabled: enable them first."})
    now = utcnow()
    link = AccountLink(
        kind="reset",
        email=user.email,
        name=user.name,
        user_id=user.id,
        created_by_id=actor.id,
        created_at=now,
        expires_at=now + LINK_LIFETIME,
    )
    token = _new_link(session, link)
    audit.record(
        session,
        actor,
        "user.reset_link_made",
        "user",
        user.id,
        label=user.name,
        changes={"reset_link_expires_at": (None, link.expires_at)},
    )
    return link, token


def open_links(session: Session, viewer: User) -> list[AccountLink]:
    """Links not used nor revoked (expired ones too, marked by state), newest first."""
    require(viewer, "user.view")
    return list(
        session.scalars(
            select(AccountLink)
            .where(AccountLink.used_at.is_(None), AccountLink.revoked_at.is_(None))
            .order_by(AccountLink.id.desc())
        )
    )


def revoke_link(session: Session, actor: User, link_id: int) -> AccountLink:
    """Withdraw an open link (nothing changes for one used or closed already).

    :raise NotFoundError: no such link.
    """
    require(actor, "user.manage")
    link = session.get(AccountLink, link_id)
    if link is None:
        raise NotFoundError(f"link {link_id}")
    if link.used_at is None and link.revoked_at is None:
        now = utcnow()
        link.revoked_at, link.revoked_reason = now, "revoked"
        if link.kind == "invite":
            action, record_type, record_id = "user.invite_revoked", "invite", link.id
        else:
            action, record_type, record_id = "user.reset_link_revoked", "user", link.user_id
        audit.record(
            session,
            actor,
            action,
            record_type,
            record_id,
            label=link.email if link.kind == "invite" else link.name,
            changes={"revoked_at": (None, now)},
        )
    return link


@dataclass(frozen=True)
class LinkState:
    """What a link can do now: open (to use), or why not, in words for the person."""

    open: bool
    why: str = ""


def link_by_token(session: Session, token: str) -> AccountLink | None:
    """The link with this token, or None."""
    if not token or len(token) > 100:
        return None
    return session.scalar(select(AccountLink).where(AccountLink.token_hash == _token_hash(token)))


def link_state(link: AccountLink, now: datetime | None = None) -> LinkState:
    """Whether link can be used now, else why not."""
    now = now or utcnow()
    when = "%-d %b %Y, %H:%M UTC"
    if link.used_at is not None:
        return LinkState(
            False,
            f"This link was used already, on {link.used_at.strftime(when)}:"
            " sign in with the password set then, or ask an admin for a new link.",
        )
    if link.revoked_at is not None:
        reason = {
            "replaced": "A newer link replaced this one: use the latest link you were sent.",
            "removed": "The account this link was for is removed.",
        }.get(link.revoked_reason or "", "An admin withdrew this link.")
        return LinkState(False, f"{reason} Ask an admin if you need a new one.")
    if link.expires_at <= now:
        return LinkState(
            False,
            f"This link expired on {link.expires_at.strftime(when)}: links work for"
            f" {LINK_LIFETIME.days} days. Ask an admin for a new one.",
        )
    if link.kind == "reset" and (link.user is None or not link.user.is_active):
        return LinkState(False, "This account is disabled: ask an admin.")
    return LinkState(True)


class LinkClosed(Exception):
    """The link cannot be used (any more); the message says why, for the person."""


def use_link(session: Session, token: str, password: str, address: str | None = None) -> User:
    """Set the password through an open link: an invite makes its user, a reset sets the
    user's password and ends all their sessions. Returns the user, to sign in.

    :raise NotFoundError: no such link. :raise LinkClosed: used, expired or withdrawn
    (also when another request used it a moment ago). :raise ValidationError: a short
    password, or an invite whose email has a user by now.
    """
    link = link_by_token(session, token)
    if link is None:
        raise NotFoundError("link")
    now = utcnow()
    state = link_state(link, now)
    if not state.open:
        raise LinkClosed(state.why)
    if len(password or "") < MIN_LENGTH:
        raise ValidationError({"password": f"Use at least {MIN_LENGTH} characters."})
    # Claimed by a conditional update: of two requests at once, one finds it taken.
    claimed = session.execute(
        update(AccountLink)
        .where(
            AccountLink.id == link.id,
            AccountLink.used_at.is_(None),
            AccountLink.revoked_at.is_(None),
            AccountLink.expires_at > now,
        )
        .values(used_at=now),
        execution_options={"synchronize_session": False},
    )
    if not claimed.rowcount:
        session.refresh(link)
        raise LinkClosed(link_state(link, now).why or "This link was used already.")
    session.refresh(link)
    if link.kind == "invite":
        try:
            user = create_user(session, link.email, link.name, link.role or "", password)
        except ValidationError as exc:
            if "email" in exc.errors:
                exc.errors["email"] = (
                    "An account with this email exists already: sign in, or ask an admin"
                    " for a password-reset link."
                )
            raise
        link.user_id = user.id
        audit.record(
            session,
            user,
            "user.joined",
            "user",
            user.id,
            label=user.name,
            changes={
                "email": (None, user.email),
                "name": (None, user.name),
                "role": (None, user.role),
            },
            address=address,
        )
        return user
    user = link.user
    user.password_hash = hash_password(password)
    ended = _end_sessions(session, user)
    audit.record(
        session,
        user,
        "user.password_reset",
        "user",
        user.id,
        label=user.name,
        changes={"password": ("old", "new"), "sessions": (ended, 0)},
        address=address,
    )
    return user
