"""Deals keep the rep's note on why a deal was lost beside the reason; indexes that
answer the board and its column totals, everyone's and a rep's own, and the forecast
from the index alone (live deals by close date with stage, owner, currency and amount),
and one that finds what was won in a month.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NOT_DELETED = sa.text("deleted_at IS NULL")
# The board's column totals (everyone's, one rep's) and a rep's own columns in order.
INDEXES = {
    "ix_deals_stage_money": ["stage_id", "currency", "amount_minor"],
    "ix_deals_owner_money": ["owner_id", "stage_id", "currency", "amount_minor"],
    "ix_deals_owner_board": ["owner_id", "stage_id", "position", "id"],
}


def upgrade():
    op.add_column("deals", sa.Column("lost_note", sa.String(length=500), nullable=True))
    op.create_index("ix_deals_closed", "deals", ["stage_id", "closed_at"])
    for name, columns in INDEXES.items():
        op.create_index(
            name, "deals", columns, sqlite_where=NOT_DELETED, postgresql_where=NOT_DELETED
        )
    op.drop_index("ix_deals_expected_close", table_name="deals")
    op.create_index(
        "ix_deals_forecast",
        "deals",
        ["expected_close", "stage_id", "owner_id", "currency", "amount_minor"],
        sqlite_where=NOT_DELETED,
        postgresql_where=NOT_DELETED,
    )


def downgrade():
    op.drop_index("ix_deals_forecast", table_name="deals")
    op.create_index("ix_deals_expected_close", "deals", ["expected_close", "stage_id"])
    for name in INDEXES:
        op.drop_index(name, table_name="deals")
    op.drop_index("ix_deals_closed", table_name="deals")
    with op.batch_alter_table("deals") as batch:
        batch.drop_column("lost_note")
