"""Social sources: where mentions come from, how often, and how each poll went."""

from datetime import datetime

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

SOURCE_KIND_LABELS = {
    "x": "X (mentions or search)",
    "mastodon": "Mastodon (mentions or hashtag)",
    "bluesky": "Bluesky (notifications or search)",
    "rss": "RSS or Atom feed",
    "webhook": "Inbound webhook",
    "demo": "Demo (sample mentions)",
}
SOURCE_KINDS = tuple(SOURCE_KIND_LABELS)


class Source(db.Model):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    # Non-secret settings of the connector (account, query, feed URL, instance…).
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    # Token, app password or webhook secret: stored, used, never rendered back or logged.
    secret: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    interval_seconds: Mapped[int] = mapped_column(default=300)
    cursor: Mapped[str | None] = mapped_column(Text)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set from a 429's reset time: no poll is enqueued before it.
    retry_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    mentions_stored: Mapped[int] = mapped_column(default=0)
    # What the last poll brought: how many mentions it fetched, how many of them were new
    # and stored, how many were stored already. None when it failed or fetched nothing yet.
    last_fetched: Mapped[int | None] = mapped_column()
    last_stored: Mapped[int | None] = mapped_column()
    last_duplicates: Mapped[int | None] = mapped_column()
    # X bills every post and user read: counted per calendar month (UTC).
    reads_month: Mapped[str | None] = mapped_column(String(7))
    reads_this_month: Mapped[int] = mapped_column(default=0)
    monthly_cap_usd: Mapped[float | None] = mapped_column()
    capped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Soft delete: not polled nor listed from then on; Undo within UNDO_MINUTES, and the
    # purge job removes it later (its mentions stay).
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_sources_enabled", "enabled"),)

    def __repr__(self) -> str:
        return f"<Source {self.id} {self.kind} {self.name!r}>"
