"""Lighter mention indexes: every index is written on each stored mention.

The inbox's sentiment filter walks the newest-first index instead of one of its own
(each label is a large share of mentions, so a page is found within a few hundred rows)
except for "unscored", rare or absent, which has a small index of its own;
mentions are looked up by contact only when a contact is deleted, so that index holds
matched mentions alone; and by source only for a source (the inbox's filter, deleting
one), so imported mentions, which have none, stay out of that index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MATCHED = sa.text("contact_id IS NOT NULL")
FROM_SOURCE = sa.text("source_id IS NOT NULL")
UNSCORED = sa.text("label IS NULL")


def upgrade():
    op.drop_index("ix_mentions_label", table_name="mentions")
    op.create_index(
        "ix_mentions_unscored",
        "mentions",
        ["posted_at", "id"],
        sqlite_where=UNSCORED,
        postgresql_where=UNSCORED,
    )
    op.drop_index("ix_mentions_contact", table_name="mentions")
    op.create_index(
        "ix_mentions_contact",
        "mentions",
        ["contact_id"],
        sqlite_where=MATCHED,
        postgresql_where=MATCHED,
    )
    op.drop_index("ix_mentions_source", table_name="mentions")
    op.create_index(
        "ix_mentions_source",
        "mentions",
        ["source_id", "posted_at"],
        sqlite_where=FROM_SOURCE,
        postgresql_where=FROM_SOURCE,
    )


def downgrade():
    op.drop_index("ix_mentions_source", table_name="mentions")
    op.create_index("ix_mentions_source", "mentions", ["source_id", "posted_at"])
    op.drop_index("ix_mentions_contact", table_name="mentions")
    op.create_index("ix_mentions_contact", "mentions", ["contact_id", "posted_at"])
    op.drop_index("ix_mentions_unscored", table_name="mentions")
    op.create_index("ix_mentions_label", "mentions", ["label", "posted_at"])
