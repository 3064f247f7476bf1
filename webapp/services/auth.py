"""Signing in: password checks, throttling that cannot be turned against the account's
owner, and sessions kept on the server so that signing out ends them.

Throttling follows the device-cookie pattern: a browser where the account signed in
before carries a signed device id (the view reads and writes that cookie), and its
attempts count against that device alone. Attempts from anywhere else count against
the account and the client address, and past a few failures each further attempt
must wait longer, up to a limit, rather than being locked out: someone who knows an
email can slow down guesses from strangers' devices, never the owner's own phone.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from social.text import storable
from webapp.models import LoginFailure, Notification, User, UserSession
from webapp.models.base import utcnow
from webapp.services import passwords

# The wait after the last allowed failure; it doubles with each further one.
FIRST_DELAY = timedelta(seconds=30)
# A session's last-seen time is written at most this often, not on every request.
SEEN_EVERY = timedelta(minutes=5)
EMAIL_LIMIT = 254


@dataclass(frozen=True)
class Throttle:
    """How many failures a key may have within window before each attempt must wait; the
    wait starts at FIRST_DELAY and doubles, but never exceeds window."""

    max_failures: int
    window: timedelta

    def wait(self, failures: int) -> timedelta:
        """How long after the last failure the next attempt must wait."""
        if failures < self.max_failures:
            return timedelta(0)
        doublings = min(failures - self.max_failures, 30)
        return min(FIRST_DELAY * 2**doublings, self.window)


class LoginThrottled(Exception):
    """Too many recent failures; seconds says how long until the next attempt."""

    def __init__(self, seconds: int):
        super().__init__(f"throttled for {seconds} s")
        self.seconds = seconds


def _keys(email: str, client: str, device: str | None) -> list[tuple[str, int]]:
    """The failure keys an attempt counts against, with how many failures each allows
    (as a multiple of the throttle's): the trusted device alone, or the account and the
    client address, which many people may share behind one proxy."""
    if device:
        return [(f"device:{device}", 1)]
    return [(f"account:{email[:EMAIL_LIMIT]}", 1), (f"client:{client[:56]}", 4)]


def _check(session: Session, key: str, throttle: Throttle, now: datetime) -> None:
    count, last = session.execute(
        select(func.count(), func.max(LoginFailure.at)).where(
            LoginFailure.key == key, LoginFailure.at > now - throttle.window
        )
    ).one()
    wait = throttle.wait(count)
    if wait and last is not None and now < last + wait:
        raise LoginThrottled(math.ceil((last + wait - now).total_seconds()))


def authenticate(
    session: Session,
    email: str,
    password: str,
    client: str,
    throttle: Throttle,
    device_user: tuple[int, str] | None = None,
) -> User | None:
    """Return the active user with this email and password, or None.

    device_user is (user id, device id) from a trusted-device cookie, if the request has
    a valid one: it counts only when it belongs to this email's account and has not
    failed too often itself. Success clears every counter the attempt touched.
    :raise LoginThrottled: before the password is checked.
    """
    email = (email or "").strip().lower()
    now = utcnow()
    user = None
    if len(email) <= EMAIL_LIMIT:
        user = session.scalar(select(User).where(User.email == email))
    device = None
    if device_user and user is not None and device_user[0] == user.id:
        device = device_user[1]
        try:
            _check(session, f"device:{device}", throttle, now)
        except LoginThrottled:
            device = None  # a device that guesses is a stranger again
    keys = _keys(email, client, device)
    for key, factor in keys:
        _check(session, key, Throttle(throttle.max_failures * factor, throttle.window), now)

    ok = passwords.verify(user.password_hash if user else None, password or "")
    if not ok or user is None or not user.is_active:
        session.add_all(LoginFailure(key=key, at=now) for key, _ in keys)
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    cleared = [key for key, _ in keys] + [f"account:{email}", f"client:{client[:56]}"]
    session.execute(delete(LoginFailure).where(LoginFailure.key.in_(set(cleared))))
    user.last_login_at = now
    return user


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def start_session(session: Session, user: User, user_agent: str, address: str) -> str:
    """Record a new signed-in device for user; return its key (for the cookie only)."""
    key = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            user_id=user.id,
            key_hash=_hash(key),
            user_agent=storable(user_agent or "")[:200],
            address=storable(address or "")[:64],
        )
    )
    session.flush()
    user.session_key = key
    return key


def session_user(session: Session, key: str | None, lifetime: timedelta) -> User | None:
    """The active user of the live session with this key, or None; one query, which also
    counts the user's unread notifications (user.unread_count: the badge every page's
    navigation shows, which was a round trip of its own). Marks the session seen, at most
    every SEEN_EVERY."""
    if not key or len(key) > 100:
        return None
    now = utcnow()
    unread = (
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == User.id, Notification.read_at.is_(None))
        .scalar_subquery()
    )
    row = session.execute(
        select(User, UserSession.id, UserSession.last_seen_at, unread)
        .join(UserSession, UserSession.user_id == User.id)
        .where(UserSession.key_hash == _hash(key), UserSession.created_at > now - lifetime)
    ).first()
    if row is None or not row[0].is_active:
        return None
    user, session_id, seen, user.unread_count = row
    if now - seen > SEEN_EVERY:
        session.execute(
            update(UserSession).where(UserSession.id == session_id).values(last_seen_at=now)
        )
        session.commit()
    user.session_key = key
    return user


def end_session(session: Session, key: str | None) -> None:
    """Sign out the device whose session has this key."""
    if key:
        session.execute(delete(UserSession).where(UserSession.key_hash == _hash(key)))


def end_session_of(session: Session, user: User, session_id: int) -> bool:
    """Sign out one of user's own devices; False if it is not theirs or already ended."""
    result = session.execute(
        delete(UserSession).where(UserSession.id == session_id, UserSession.user_id == user.id)
    )
    return bool(result.rowcount)


def end_all_sessions(session: Session, user: User) -> None:
    """Sign user out on every device, at once."""
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))


def sessions_of(session: Session, user: User) -> list[UserSession]:
    """User's signed-in devices, the most recently seen first."""
    return list(
        session.scalars(
            select(UserSession)
            .where(UserSession.user_id == user.id)
            .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
        )
    )


def is_current(user: User, row: UserSession) -> bool:
    """Whether row is the session user was loaded through (this device)."""
    return bool(user.session_key) and row.key_hash == _hash(user.session_key or "")


def purge(session: Session, failures_older_than: timedelta, lifetime: timedelta) -> int:
    """Forget failures past their window and sessions past their lifetime; how many."""
    now = utcnow()
    gone = session.execute(delete(LoginFailure).where(LoginFailure.at < now - failures_older_than))
    ended = session.execute(delete(UserSession).where(UserSession.created_at < now - lifetime))
    return (gone.rowcount or 0) + (ended.rowcount or 0)
