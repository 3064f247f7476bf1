"""People who sign in, their roles, their sessions (one row per signed-in device), and the
record of failed sign-ins used for throttling."""

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

ROLES = ("admin", "manager", "rep", "support", "marketer")


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def is_active(self) -> bool:
        """A disabled user can neither sign in nor keep a session."""
        return self.disabled_at is None

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
