"""Support triage of mentions: what staff wrote about one (notes), what they answered on
the network (replies, with their state), the answers they keep ready (canned replies),
the labels they corrected, the words they taught the scorer (lexicon rules) and the
service-level targets items are held to. A mention's own triage state (status,
assignee, priority, timers) lives on the mention row: the inbox orders and filters by
it, and a second table would be a join on every page."""

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

OPEN, PENDING, SNOOZED, RESOLVED = "open", "pending", "snoozed", "resolved"
STATUSES = (OPEN, PENDING, SNOOZED, RESOLVED)

# A reply's life: a record first (so a double tap or a retried job finds it), then the
# one attempt that is under way, then its outcome.
QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"
REPLY_STATES = (QUEUED, SENDING, SENT, FAILED)


class MentionNote(db.Model):
    """An internal note on a mention: for the team, never sent anywhere."""

    __tablename__ = "mention_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    author = relationship("User")

    __table_args__ = (Index("ix_mention_notes_mention", "mention_id", "id"),)


class Reply(db.Model):
    """Our answer to a mention, posted on its network as a reply to that post.

    `key` is the client's UUID for the tap that asked for it: a double tap or a resent
    form finds the same row. The network's id and address arrive when it is sent;
    `error` says in words why it failed."""

    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(36), unique=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    external_id: Mapped[str | None] = mapped_column(String(512))
    url: Mapped[str | None] = mapped_column(String(2000))
    error: Mapped[str | None] = mapped_column(String(500))
    # When a retry is due (a rate limit's reset, a backoff): not sent again before.
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    author = relationship("User")

    __table_args__ = (
        Index("ix_replies_mention", "mention_id", "id"),
        Index("ix_replies_state", "state", "id"),
    )


class CannedReply(db.Model):
    """A ready answer, found by its short code ("/refund"); {first_name}, {name},
    {handle} and {agent_name} are filled in when it is inserted."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    short_code: Mapped[str] = mapped_column(String(32), unique=True)
    body: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LabelCorrection(db.Model):
    """A person's label for a mention where they disagree with (or confirm) VADER.

    VADER's own score stays on the mention, never overwritten; this row says what the
    person thinks and why, and is what the agreement figures count. One per mention:
    a later correction replaces the earlier (the audit log keeps both)."""

    __tablename__ = "label_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(16))
    # What VADER said when the person looked: the agreement figures compare the two.
    scored_label: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(300), default="")
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    user = relationship("User")

    __table_args__ = (UniqueConstraint("mention_id", name="uq_label_corrections_mention"),)


class LexiconRule(db.Model):
    """A word or phrase and the valence the scorer gives it in new mentions (VADER's
    scale, -4 to +4), added by an admin for what VADER reads wrongly in this business
    ("war zone" in a paintball shop's mentions)."""

    __tablename__ = "lexicon_rules"
    __table_args__ = (
        Index(
            "uq_lexicon_rules_live_phrase",
            "phrase",
            unique=True,
            sqlite_where=text("removed_at IS NULL"),
            postgresql_where=text("removed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phrase: Mapped[str] = mapped_column(String(60))
    valence: Mapped[float] = mapped_column(Float)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A rule taken back or changed stays, so older mentions are explained by the rules
    # that scored them.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    created_by = relationship("User", foreign_keys=[created_by_id])
    removed_by = relationship("User", foreign_keys=[removed_by_id])


class SlaPolicy(db.Model):
    """The targets mentions are held to: a first response and a resolution within so
    many minutes of the mention, counted in business hours when they are set
    ({"zone": "Europe/Paris", "days": [0..6], "start": "09:00", "end": "17:00"}). The clock
    stops while a mention is pending or snoozed. One policy is active at a time."""

    __tablename__ = "sla_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    first_response_minutes: Mapped[int] = mapped_column()
    resolution_minutes: Mapped[int] = mapped_column()
    # How long before a target the item is flagged as about to breach.
    warn_minutes: Mapped[int] = mapped_column(default=30)
    business_hours: Mapped[dict | None] = mapped_column(db.JSON)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
