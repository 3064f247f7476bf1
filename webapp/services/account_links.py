"""Invite and password-reset links: one-time links an admin makes and sends, that let a
new person set their password (an invite) or someone set a new one (a reset); only a
hash of each token is stored, and every step goes into the audit log."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.models import AccountLink, User
from webapp.models.base import utcnow
from webapp.services import audit, users
from webapp.services.errors import NotFoundError, ValidationError
from webapp.services.passwords import MIN_LENGTH, hash_password
from webapp.services.permissions import require

LINK_LIFETIME = timedelta(days=7)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_link(session: Session, link: AccountLink) -> str:
    """Store link as the one open link of its email, replacing any other; its token.

    Two requests for one email at once (a double submit): on PostgreSQL the second waits
    on the unique index for the first to commit, fails, and replaces it here instead.
    """
    token = secrets.token_urlsafe(32)
    link.token_hash = _token_hash(token)
    for attempt in (1, 2):
        users.close_links(session, link.email, "replaced", link.created_at)
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
    errors = users.new_user_errors(
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
            user = users.create_user(session, link.email, link.name, link.role or "", password)
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
    ended = users.end_user_sessions(session, user)
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
