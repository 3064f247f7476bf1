"""The triage queue's indexes run in its own order, priority down and then the longest
waiting first, and carry what its filters test (the assignee, network and label): a
page is read straight off the index from the cursor on, with no sort of a priority's
items (PostgreSQL's incremental sort and SQLite's temporary b-tree read and sort every
item of a priority before showing the first), and a filter that passes over many items
tests each in the index, reading the table only for those it shows.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ASSIGNED = sa.text("assignee_id IS NOT NULL")
URGENT_FIRST = (sa.column("priority").desc(), "posted_at", "id")


def upgrade():
    op.drop_index("ix_mentions_queue", table_name="mentions")
    op.create_index(
        "ix_mentions_queue",
        "mentions",
        ["status", *URGENT_FIRST, "assignee_id", "network", "label"],
    )
    op.drop_index("ix_mentions_assignee", table_name="mentions")
    op.create_index(
        "ix_mentions_assignee",
        "mentions",
        ["assignee_id", "status", *URGENT_FIRST, "network", "label"],
        sqlite_where=ASSIGNED,
        postgresql_where=ASSIGNED,
    )


def downgrade():
    op.drop_index("ix_mentions_assignee", table_name="mentions")
    op.create_index(
        "ix_mentions_assignee",
        "mentions",
        ["assignee_id", "status", "priority", "posted_at", "id"],
        sqlite_where=ASSIGNED,
        postgresql_where=ASSIGNED,
    )
    op.drop_index("ix_mentions_queue", table_name="mentions")
    op.create_index("ix_mentions_queue", "mentions", ["status", "priority", "posted_at", "id"])
