"""Tasks: what someone has to do by when, on a contact or a deal, made once per client
UUID (a form, or a phone with no signal) and reminded once at its due time."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

TASK_KINDS = {"todo": "To do", "call": "Call", "visit": "Visit", "meeting": "Meeting"}
TASK_STATUSES = {"todo": "To do", "done": "Done", "cancelled": "Cancelled"}
# "Open" written out, not bound: SQLite uses a partial index only when the query's own
# text implies the index's WHERE, which a bound parameter never does.
OPEN = sql_text("tasks.status = 'todo'")
DONE = sql_text("tasks.status = 'done'")


class Task(db.Model):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Made by the client (a form render, or the phone while offline): a replay stores nothing.
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(16), default="todo")
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The zone the due time was given in (IANA, "Europe/London"), for showing it as set.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    assignee_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="todo")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    assignee = relationship("User", foreign_keys=[assignee_id])
    contact = relationship("Contact")
    deal = relationship("Deal")

    __table_args__ = (
        # Today: an assignee's open tasks by due time.
        Index(
            "ix_tasks_open_by_assignee",
            "assignee_id",
            "due_at",
            sqlite_where=sql_text("status = 'todo'"),
            postgresql_where=sql_text("status = 'todo'"),
        ),
        # Reminders: every open task by due time.
        Index(
            "ix_tasks_open_due",
            "due_at",
            sqlite_where=sql_text("status = 'todo'"),
            postgresql_where=sql_text("status = 'todo'"),
        ),
        # The task list's "Done lately": an assignee's done tasks, latest first.
        Index(
            "ix_tasks_done_by_assignee",
            "assignee_id",
            "done_at",
            sqlite_where=sql_text("status = 'done'"),
            postgresql_where=sql_text("status = 'done'"),
        ),
        Index("ix_tasks_contact", "contact_id"),
        Index("ix_tasks_deal", "deal_id"),
    )
