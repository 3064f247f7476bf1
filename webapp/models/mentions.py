"""Social mentions as stored: one row per post per network, with sentiment and match."""

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow
from webapp.models.triage import OPEN, SNOOZED


class Mention(db.Model):
    __tablename__ = "mentions"

    id: Mapped[int] = mapped_column(primary_key=True)
    network: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(512))
    # The source that stored it first; the same post reached through another is not stored again.
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    author_handle: Mapped[str] = mapped_column(String(320))
    author_name: Mapped[str] = mapped_column(String(200), default="")
    author_followers: Mapped[int | None] = mapped_column()
    author_id: Mapped[str | None] = mapped_column(String(512))
    text: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2000))
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    in_reply_to: Mapped[str | None] = mapped_column(String(512))
    language: Mapped[str | None] = mapped_column(String(16))
    extra: Mapped[dict] = mapped_column(JSON, default=dict)
    compound: Mapped[float | None] = mapped_column()
    pos: Mapped[float | None] = mapped_column()
    neu: Mapped[float | None] = mapped_column()
    neg: Mapped[float | None] = mapped_column()
    label: Mapped[str | None] = mapped_column(String(16))
    sentiment_status: Mapped[str] = mapped_column(String(16))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    matched_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    # Triage (webapp.services.triage): where the mention is in support's work, who has it,
    # and how urgent it is. The priority is stored, with the parts it is made of, and
    # changed by the events that change it, so the inbox never computes it per request.
    status: Mapped[str] = mapped_column(String(16), default=OPEN, server_default=OPEN)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    priority: Mapped[int] = mapped_column(default=0, server_default="0")
    priority_parts: Mapped[dict | None] = mapped_column(JSON)
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The service-level targets as times, moved later by the time spent pending or
    # snoozed (the clock stops then); when the warning and the breach were announced.
    first_response_due: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution_due: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sla_paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sla_warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sla_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    source = relationship("Source")
    contact = relationship("Contact")
    assignee = relationship("User", foreign_keys=[assignee_id])

    __table_args__ = (
        UniqueConstraint("network", "external_id", name="uq_mentions_network_external_id"),
        # Newest first, with what the inbox's filters test: a walk past many mentions
        # tests them in the index and reads the table only for those it shows.
        Index("ix_mentions_posted", "posted_at", "id", "network", "label", "contact_id"),
        # Matched mentions only: read when a contact is deleted (its foreign key).
        Index(
            "ix_mentions_contact",
            "contact_id",
            sqlite_where=sql_text("contact_id IS NOT NULL"),
            postgresql_where=sql_text("contact_id IS NOT NULL"),
        ),
        # The few mentions VADER could not judge: the inbox's "unscored" filter, which
        # on the newest-first index alone would walk everything when there are none.
        Index(
            "ix_mentions_unscored",
            "posted_at",
            "id",
            "network",
            "contact_id",
            sqlite_where=sql_text("label IS NULL"),
            postgresql_where=sql_text("label IS NULL"),
        ),
        Index("ix_mentions_author", "network", "author_handle"),
        # What the snooze sweep wakes, and the open items the SLA sweep watches.
        Index(
            "ix_mentions_snoozed",
            "snoozed_until",
            sqlite_where=sql_text(f"status = '{SNOOZED}'"),
            postgresql_where=sql_text(f"status = '{SNOOZED}'"),
        ),
        Index(
            "ix_mentions_sla",
            "resolution_due",
            sqlite_where=sql_text("sla_breached_at IS NULL AND resolution_due IS NOT NULL"),
            postgresql_where=sql_text("sla_breached_at IS NULL AND resolution_due IS NOT NULL"),
        ),
        # Mentions from a source (imports have none): the inbox's source filter.
        Index(
            "ix_mentions_source",
            "source_id",
            "posted_at",
            sqlite_where=sql_text("source_id IS NOT NULL"),
            postgresql_where=sql_text("source_id IS NOT NULL"),
        ),
    )


# The triage queue, most urgent first (priority down, then the longest waiting), and each
# person's own queue: in the queue's own order, so a page is read off the index with no
# sort, with what its filters test (migration 0017).
Index(
    "ix_mentions_queue",
    Mention.status,
    Mention.priority.desc(),
    Mention.posted_at,
    Mention.id,
    Mention.assignee_id,
    Mention.network,
    Mention.label,
)
Index(
    "ix_mentions_assignee",
    Mention.assignee_id,
    Mention.status,
    Mention.priority.desc(),
    Mention.posted_at,
    Mention.id,
    Mention.network,
    Mention.label,
    sqlite_where=sql_text("assignee_id IS NOT NULL"),
    postgresql_where=sql_text("assignee_id IS NOT NULL"),
)
