"""Notifications: what the app has to tell someone (a task due), kept as a list in the
app for everyone and pushed to the phones that subscribed; and the secrets the app makes
once for itself (the VAPID keys push is signed with), kept in the database so that every
machine uses the same."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow


class Notification(db.Model):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # What it is about and the one occasion, e.g. "task-due:42:2026-12-01T09:00:00+00:00":
    # the same reminder, however often its job runs, is one row.
    key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(String(500), default="/")
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set once it has been handed to every push subscription of its user.
    pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_notifications_user", "user_id", "id"),
        # The reminder sweep: has this task been reminded since its due time?
        Index("ix_notifications_task", "task_id", "created_at"),
        Index(
            "ix_notifications_unread",
            "user_id",
            sqlite_where=sql_text("read_at IS NULL"),
            postgresql_where=sql_text("read_at IS NULL"),
        ),
    )


class PushSubscription(db.Model):
    """A browser's Web Push subscription: where to send, and the keys to encrypt for."""

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(String(1000), unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_push_subscriptions_user", "user_id"),)


class AppSecret(db.Model):
    """A secret the app made for itself once (the VAPID key pair), shared by every
    machine through the database rather than kept on one machine's disk."""

    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
