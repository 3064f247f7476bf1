"""Activities: calls, meetings, visits, emails and notes on a contact's timeline."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

ACTIVITY_KINDS = ("call", "visit", "meeting", "email", "note")


class Activity(db.Model):
    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Made by the client (a form render, or the phone while offline): a replay stores nothing.
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text, default="")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    author = relationship("User", lazy="joined")
    contact = relationship("Contact")

    __table_args__ = (
        Index("ix_activities_contact_timeline", "contact_id", "occurred_at", "id"),
        Index("ix_activities_author_id", "author_id"),
    )
