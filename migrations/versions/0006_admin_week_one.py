"""What an admin needs in the first week: invite links and password-reset links (only
their tokens' hashes stored), removed users kept as tombstones, the audit log, sources
deleted softly (with Undo) and what a source's last poll fetched.

Only new tables and new nullable columns: SQLite rebuilds no table here, since rebuilding
users (which contacts and activities point at) fails once there is data.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
OPEN = sa.text("used_at IS NULL AND revoked_at IS NULL")


def upgrade():
    op.add_column("users", sa.Column("removed_at", TS, nullable=True))
    op.add_column("users", sa.Column("former_email", sa.String(length=254), nullable=True))
    op.create_table(
        "account_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revoked_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_account_links_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_account_links_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_links_token_hash")),
    )
    op.create_index(
        "uq_account_links_open_email",
        "account_links",
        ["email"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("record_type", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("record_label", sa.String(length=200), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_actor", "audit_events", ["actor_id", "id"])
    op.create_index("ix_audit_events_record", "audit_events", ["record_type", "record_id", "id"])
    op.add_column("sources", sa.Column("deleted_at", TS, nullable=True))
    op.add_column("sources", sa.Column("last_fetched", sa.Integer(), nullable=True))
    op.add_column("sources", sa.Column("last_stored", sa.Integer(), nullable=True))
    op.add_column("sources", sa.Column("last_duplicates", sa.Integer(), nullable=True))


def downgrade():
    # Without the columns that say so, deleted sources would be polled again and removed
    # users could be enabled: the sources go, the users stay disabled.
    op.execute("DELETE FROM sources WHERE deleted_at IS NOT NULL")
    for column in ("last_duplicates", "last_stored", "last_fetched", "deleted_at"):
        op.drop_column("sources", column)
    op.drop_index("ix_audit_events_record", table_name="audit_events")
    op.drop_index("ix_audit_events_actor", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("uq_account_links_open_email", table_name="account_links")
    op.drop_table("account_links")
    op.execute(
        "UPDATE users SET disabled_at = removed_at"
        " WHERE removed_at IS NOT NULL AND disabled_at IS NULL"
    )
    op.drop_column("users", "former_email")
    op.drop_column("users", "removed_at")
