"""Activities: calls, meetings, visits, emails and notes on a contact's timeline."""

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

KIND_LABELS = {
    "call": "Call",
    "visit": "Visit",
    "meeting": "Meeting",
    "email": "Email",
    "note": "Note",
}
ACTIVITY_KINDS = tuple(KIND_LABELS)
# How a call went, when it was logged with one.
CALL_OUTCOMES = {"reached": "Reached", "no_answer": "No answer", "voicemail": "Left a voicemail"}
# When an entry happened, as the log form offers it ("at": the date and time given).
WHEN_LABELS = {
    "now": "Just now",
    "15m": "15 minutes ago",
    "30m": "30 minutes ago",
    "1h": "An hour ago",
    "2h": "2 hours ago",
    "4h": "4 hours ago",
    "yesterday": "Yesterday, this time",
    "at": "At the time below",
}
# A social mention on the timeline: added by matching, never logged by hand.
MENTION_KIND = "mention"


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
    mention_id: Mapped[int | None] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="SET NULL"))
    outcome: Mapped[str | None] = mapped_column(String(16))
    # A visit checked in on the spot: where the phone was, how sure it was (metres),
    # and when the rep checked out again.
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Deleted by its author: off the timeline, kept so a replay of its UUID finds it.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    author = relationship("User", lazy="joined")
    contact = relationship("Contact")
    mention = relationship("Mention", lazy="joined")

    __table_args__ = (
        Index("ix_activities_contact_timeline", "contact_id", "occurred_at", "id"),
        Index("ix_activities_author_id", "author_id"),
        # A mention sits on one timeline once: matching twice adds nothing.
        Index("uq_activities_mention_id", "mention_id", unique=True),
    )
