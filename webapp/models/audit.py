"""The audit log: one row per change anyone made (users, invites, sources today; contacts,
deals, tasks and settings as they join), kept apart from the records it describes."""

from datetime import datetime

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow


class AuditEvent(db.Model):
    """Who changed what, when and from where.

    Nothing here points at another table with a foreign key: an entry must outlive its
    actor's removal and its record's purge, so the actor's name and a label of the record
    (a name, an email) are copied in. changes maps each field to [before, after], with
    secrets masked; it never holds a password, a hash or a token.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # None for the system itself (a purge job).
    actor_id: Mapped[int | None] = mapped_column()
    actor_name: Mapped[str] = mapped_column(String(120))
    # "<area>.<verb>", like user.invited or source.deleted.
    action: Mapped[str] = mapped_column(String(64))
    record_type: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[int | None] = mapped_column()
    record_label: Mapped[str] = mapped_column(String(200), default="")
    changes: Mapped[dict] = mapped_column(JSON, default=dict)
    address: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        # The page reads newest first by id, whole or by actor or by record.
        Index("ix_audit_events_actor", "actor_id", "id"),
        Index("ix_audit_events_record", "record_type", "record_id", "id"),
    )
