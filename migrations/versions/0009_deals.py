"""Deals keep the rep's note on why a deal was lost beside the reason, and an index
finds what was won in a month.

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


def upgrade():
    op.add_column("deals", sa.Column("lost_note", sa.String(length=500), nullable=True))
    op.create_index("ix_deals_closed", "deals", ["stage_id", "closed_at"])


def downgrade():
    op.drop_index("ix_deals_closed", table_name="deals")
    with op.batch_alter_table("deals") as batch:
        batch.drop_column("lost_note")
