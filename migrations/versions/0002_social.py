"""Social sources and mentions; a timeline entry can be a mention.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("last_polled_at", TS, nullable=True),
        sa.Column("last_success_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", TS, nullable=True),
        sa.Column("retry_after", TS, nullable=True),
        sa.Column("mentions_stored", sa.Integer(), nullable=False),
        sa.Column("reads_month", sa.String(length=7), nullable=True),
        sa.Column("reads_this_month", sa.Integer(), nullable=False),
        sa.Column("monthly_cap_usd", sa.Double(), nullable=True),
        sa.Column("capped_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
    )
    op.create_index("ix_sources_enabled", "sources", ["enabled"])

    op.create_table(
        "mentions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=512), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("author_handle", sa.String(length=320), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("author_followers", sa.Integer(), nullable=True),
        sa.Column("author_id", sa.String(length=512), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("posted_at", TS, nullable=False),
        sa.Column("fetched_at", TS, nullable=False),
        sa.Column("in_reply_to", sa.String(length=512), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("compound", sa.Double(), nullable=True),
        sa.Column("pos", sa.Double(), nullable=True),
        sa.Column("neu", sa.Double(), nullable=True),
        sa.Column("neg", sa.Double(), nullable=True),
        sa.Column("label", sa.String(length=16), nullable=True),
        sa.Column("sentiment_status", sa.String(length=16), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("matched_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_mentions_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["matched_by_id"], ["users.id"], name=op.f("fk_mentions_matched_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_mentions_source_id_sources"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mentions")),
        sa.UniqueConstraint("network", "external_id", name="uq_mentions_network_external_id"),
    )
    op.create_index("ix_mentions_posted", "mentions", ["posted_at", "id"])
    op.create_index("ix_mentions_contact", "mentions", ["contact_id", "posted_at"])
    op.create_index("ix_mentions_author", "mentions", ["network", "author_handle"])
    op.create_index("ix_mentions_source", "mentions", ["source_id", "posted_at"])
    op.create_index("ix_mentions_label", "mentions", ["label", "posted_at"])

    # On SQLite this copies the activities table (SQLite cannot add a named foreign key
    # in place); on PostgreSQL it is two ALTERs.
    with op.batch_alter_table("activities") as batch_op:
        batch_op.add_column(sa.Column("mention_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_activities_mention_id_mentions",
            "mentions",
            ["mention_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.create_index("uq_activities_mention_id", "activities", ["mention_id"], unique=True)


def downgrade():
    op.drop_index("uq_activities_mention_id", table_name="activities")
    with op.batch_alter_table("activities") as batch_op:
        batch_op.drop_constraint("fk_activities_mention_id_mentions", type_="foreignkey")
        batch_op.drop_column("mention_id")
    op.drop_table("mentions")
    op.drop_table("sources")
