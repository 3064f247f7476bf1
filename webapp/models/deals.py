"""Deals and the pipeline they move along: stages (admins edit them; a default set is
seeded), deals with their money in minor units, and the history of what changed on a
deal (its stage, its expected close), read for stuck deals, pushed close dates and
forecast accuracy."""

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, String, Text
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

# Open stages hold the pipeline; a won or a lost stage ends a deal.
STAGE_KINDS = {"open": "Open", "won": "Won", "lost": "Lost"}
# What a newly set-up pipeline starts with (HubSpot's defaults): name, probability %,
# days in the stage before a deal counts as stuck, kind.
DEFAULT_STAGES = (
    ("Qualified", 20, 14, "open"),
    ("Meeting booked", 40, 14, "open"),
    ("Proposal sent", 60, 21, "open"),
    ("Negotiation", 80, 21, "open"),
    ("Won", 100, None, "won"),
    ("Lost", 0, None, "lost"),
)
LOST_REASONS = ("Price", "Went with a competitor", "No budget", "No decision", "Timing", "Other")


class Stage(db.Model):
    """A stage of the pipeline, in board order."""

    __tablename__ = "pipeline_stages"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    position: Mapped[int] = mapped_column()
    # Percent, 0 to 100: the weight of this stage's open deals in the forecast.
    probability: Mapped[int] = mapped_column()
    # A deal in this stage longer than this is stuck ("rotting"); None: never.
    rotting_days: Mapped[int | None] = mapped_column()
    kind: Mapped[str] = mapped_column(String(8), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_pipeline_stages_position", "position"),)


class Deal(db.Model):
    """Money that may come in: who owns it, with whom, how much, where it stands."""

    __tablename__ = "deals"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    company: Mapped[str | None] = mapped_column(String(200))
    # In the currency's minor unit (cents), never a float: sums stay exact.
    amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    stage_id: Mapped[int] = mapped_column(ForeignKey("pipeline_stages.id"))
    expected_close: Mapped[date | None] = mapped_column(Date)
    # Order on the board within a stage: between two cards is their mean.
    position: Mapped[float] = mapped_column(Float, default=0.0)
    next_step: Mapped[str | None] = mapped_column(String(200))
    lost_reason: Mapped[str | None] = mapped_column(String(200))
    # What the rep added to the reason, in their words.
    lost_note: Mapped[str | None] = mapped_column(String(500))
    notes: Mapped[str | None] = mapped_column(Text)
    # When the deal entered its stage (stuck deals), and how often its close date moved.
    stage_entered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    close_date_pushes: Mapped[int] = mapped_column(default=0)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    owner = relationship("User")
    contact = relationship("Contact")
    stage = relationship("Stage", lazy="joined")

    __table_args__ = (
        # The board: a stage's live deals in card order.
        Index(
            "ix_deals_board",
            "stage_id",
            "position",
            "id",
            sqlite_where=sql_text("deleted_at IS NULL"),
            postgresql_where=sql_text("deleted_at IS NULL"),
        ),
        Index("ix_deals_owner_stage", "owner_id", "stage_id"),
        # The board's column totals and the pipeline (everyone's, a rep's own), and a
        # rep's own columns in card order, from the index alone.
        *(
            Index(
                name,
                *columns,
                sqlite_where=sql_text("deleted_at IS NULL"),
                postgresql_where=sql_text("deleted_at IS NULL"),
            )
            for name, columns in (
                ("ix_deals_stage_money", ("stage_id", "currency", "amount_minor")),
                ("ix_deals_owner_money", ("owner_id", "stage_id", "currency", "amount_minor")),
                ("ix_deals_owner_board", ("owner_id", "stage_id", "position", "id")),
            )
        ),
        # The forecast: live deals by the month they are expected to close, with what
        # it sums, from the index alone.
        Index(
            "ix_deals_forecast",
            "expected_close",
            "stage_id",
            "owner_id",
            "currency",
            "amount_minor",
            sqlite_where=sql_text("deleted_at IS NULL"),
            postgresql_where=sql_text("deleted_at IS NULL"),
        ),
        # What was won (or lost) in a month.
        Index("ix_deals_closed", "stage_id", "closed_at"),
        Index(
            "ix_deals_contact",
            "contact_id",
            sqlite_where=sql_text("contact_id IS NOT NULL"),
            postgresql_where=sql_text("contact_id IS NOT NULL"),
        ),
    )


class DealChange(db.Model):
    """One change to a deal that its history keeps: its stage (from, to) or its expected
    close date (before, after), by whom and when."""

    __tablename__ = "deal_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    # "stage", "expected_close" or "amount".
    field: Mapped[str] = mapped_column(String(16))
    before: Mapped[str | None] = mapped_column(String(64))
    after: Mapped[str | None] = mapped_column(String(64))
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_deal_changes_deal", "deal_id", "changed_at"),)


class DealTotal(db.Model):
    """How many live deals one owner has in one stage and currency, and their sum: what
    the board's and the pipeline's totals read. Kept by triggers on deals (migration
    0013), never written by the app."""

    __tablename__ = "deal_totals"

    owner_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    stage_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    deals: Mapped[int] = mapped_column()
    amount_minor: Mapped[int] = mapped_column(BigInteger)
