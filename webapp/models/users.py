"""People who sign in, their roles, their sessions (one row per signed-in device), the
one-time links that let someone set a password (invites and resets), and the record of
failed sign-ins used for throttling."""

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

ROLE_LABELS = {
    "admin": "Admin",
    "manager": "Manager",
    "rep": "Sales rep",
    "support": "Support",
    "marketer": "Marketer",
}
ROLES = tuple(ROLE_LABELS)


# What a removed user's email column holds: never an address (no @), so it matches no
# sign-in and no invite, and the address is free for a new account.
REMOVED_EMAIL = "removed:{}"


class User(UserMixin, db.Model):
    """Someone who signs in.

    Removing a user keeps the row as a tombstone rather than deleting it: activities
    (author_id), contacts (owner_id), matched mentions (matched_by_id) and the audit log
    point at users, and the history must keep saying who logged a call or owned a
    contact. Deleting the row would mean nulling those references (the name gone) or
    copying the name into every table that points here. A tombstone has removed_at set,
    no password hash, no sessions, and its email moved to former_email, so the address
    can be invited again (email stays unique among everyone, removed or not, and needs
    no partial index or table rebuild).
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    former_email: Mapped[str | None] = mapped_column(String(254))
    # Support's round robin: who takes new items now, how many open items each may hold
    # at once (None: no limit), and when the round robin last gave them one (or they
    # became available): the longest waiting gets the next.
    available: Mapped[bool] = mapped_column(default=False, server_default=sql_text("false"))
    triage_limit: Mapped[int | None] = mapped_column()
    round_robin_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_active(self) -> bool:
        """A disabled or removed user can neither sign in nor keep a session."""
        return self.disabled_at is None and self.removed_at is None

    @property
    def shown_email(self) -> str:
        """The address to show: a removed user's former one."""
        return (self.former_email or self.email) if self.removed_at else self.email

    # The client address of the request this user object acts in, set by the views: the
    # audit log records it with every change the user makes.
    client_address = None

    # The key of the session this user object was loaded through (or just created for):
    # what Flask-Login keeps in the cookie, so ending that session row ends the cookie.
    session_key = None

    def get_id(self) -> str | None:
        """What the session cookie holds: this sign-in's session key, never the user id
        alone, so a copied cookie dies with its session row."""
        return self.session_key

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class UserSession(db.Model):
    """One signed-in device. The cookie carries a random key; only its hash is stored, so
    a copy of this table signs no one in. Deleting the row signs that device out."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (Index("ix_user_sessions_user_id", "user_id"),)


class LoginFailure(db.Model):
    """One failed sign-in, keyed by account, by client address and by trusted device."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_login_failures_key_at", "key", "at"),)


LINK_KINDS = ("invite", "reset")


class AccountLink(db.Model):
    """A one-time link to set a password: an invite (used, it makes the user with the
    name and role the admin gave) or a password reset of an existing user.

    The link carries a random token; only its hash is stored, so this table lets no one
    in. A link is open until it is used, revoked or replaced (revoked_at, with the
    reason), or past expires_at; at most one link per email is open at once.
    """

    __tablename__ = "account_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str | None] = mapped_column(String(16))
    # A reset's user; an invite's once used (the user it made).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "revoked" by an admin, "replaced" by a newer link, or the user was "removed" or
    # "disabled".
    revoked_reason: Mapped[str | None] = mapped_column(String(16))

    user = relationship("User", foreign_keys=[user_id])
    created_by = relationship("User", foreign_keys=[created_by_id])

    __table_args__ = (
        # One open link per email: a double submit replaces, and a race cannot leave two.
        Index(
            "uq_account_links_open_email",
            "email",
            unique=True,
            sqlite_where=sql_text("used_at IS NULL AND revoked_at IS NULL"),
            postgresql_where=sql_text("used_at IS NULL AND revoked_at IS NULL"),
        ),
    )
