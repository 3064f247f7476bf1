"""The inbox's newest-first indexes carry the columns its filters test (network, label,
the matched contact), so a walk that passes over many mentions before it finds a page,
as a rare combination of filters does ("RSS, negative, matched"), tests each mention in
the index and reads from the table only those it shows: on SQLite at 1,000,000
mentions 19 ms became 7 ms for that page, 17 ms became 4 ms for "RSS, unscored,
matched". The order, and so every plan that walks them, stays the same.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

UNSCORED = sa.text("label IS NULL")


def upgrade():
    op.drop_index("ix_mentions_posted", table_name="mentions")
    op.create_index(
        "ix_mentions_posted", "mentions", ["posted_at", "id", "network", "label", "contact_id"]
    )
    op.drop_index("ix_mentions_unscored", table_name="mentions")
    op.create_index(
        "ix_mentions_unscored",
        "mentions",
        ["posted_at", "id", "network", "contact_id"],
        sqlite_where=UNSCORED,
        postgresql_where=UNSCORED,
    )


def downgrade():
    op.drop_index("ix_mentions_unscored", table_name="mentions")
    op.create_index(
        "ix_mentions_unscored",
        "mentions",
        ["posted_at", "id"],
        sqlite_where=UNSCORED,
        postgresql_where=UNSCORED,
    )
    op.drop_index("ix_mentions_posted", table_name="mentions")
    op.create_index("ix_mentions_posted", "mentions", ["posted_at", "id"])
