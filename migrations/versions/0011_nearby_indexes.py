"""Nearby's indexes hold only the contacts it can show (placed and not deleted), so a box
is answered from the index alone; a second one, led by the owner, answers a rep's own.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SHOWN = sa.text("latitude IS NOT NULL AND deleted_at IS NULL")
PLACED = sa.text("latitude IS NOT NULL")


def upgrade():
    op.drop_index("ix_contacts_location", table_name="contacts")
    op.create_index(
        "ix_contacts_location",
        "contacts",
        ["latitude", "longitude"],
        sqlite_where=SHOWN,
        postgresql_where=SHOWN,
    )
    op.create_index(
        "ix_contacts_owner_location",
        "contacts",
        ["owner_id", "latitude", "longitude"],
        sqlite_where=SHOWN,
        postgresql_where=SHOWN,
    )


def downgrade():
    op.drop_index("ix_contacts_owner_location", table_name="contacts")
    op.drop_index("ix_contacts_location", table_name="contacts")
    op.create_index(
        "ix_contacts_location",
        "contacts",
        ["latitude", "longitude"],
        sqlite_where=PLACED,
        postgresql_where=PLACED,
    )
