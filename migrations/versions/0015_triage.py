"""Support triage: each mention gets a status (open, pending, snoozed, resolved), an
assignee, a stored priority with the parts it is made of, and its service-level timers;
notes, replies (with their state), canned replies, label corrections, lexicon rules and
the SLA policy get their tables; users get their availability and limit for the round
robin. Mentions stored before this are open and unassigned; their priority is made by
the triage sweep (`crm triage refresh`, also run every few minutes by the scheduler).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
MENTION_TIMES = (
    "assigned_at",
    "snoozed_until",
    "status_at",
    "first_response_at",
    "resolved_at",
    "first_response_due",
    "resolution_due",
    "sla_paused_at",
    "sla_warned_at",
    "sla_breached_at",
)
ASSIGNED = sa.text("assignee_id IS NOT NULL")
SNOOZED = sa.text("status = 'snoozed'")
WATCHED = sa.text("sla_breached_at IS NULL AND resolution_due IS NOT NULL")


def upgrade():
    with op.batch_alter_table("mentions") as batch:
        batch.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="open")
        )
        batch.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("priority_parts", sa.JSON(), nullable=True))
        for name in MENTION_TIMES:
            batch.add_column(sa.Column(name, TS, nullable=True))
        batch.create_foreign_key(
            "fk_mentions_assignee_id_users", "users", ["assignee_id"], ["id"], ondelete="SET NULL"
        )
    op.create_index("ix_mentions_queue", "mentions", ["status", "priority", "posted_at", "id"])
    op.create_index(
        "ix_mentions_assignee",
        "mentions",
        ["assignee_id", "status", "priority", "posted_at", "id"],
        sqlite_where=ASSIGNED,
        postgresql_where=ASSIGNED,
    )
    op.create_index(
        "ix_mentions_snoozed",
        "mentions",
        ["snoozed_until"],
        sqlite_where=SNOOZED,
        postgresql_where=SNOOZED,
    )
    op.create_index(
        "ix_mentions_sla",
        "mentions",
        ["resolution_due"],
        sqlite_where=WATCHED,
        postgresql_where=WATCHED,
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("available", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("triage_limit", sa.Integer(), nullable=True))

    op.create_table(
        "mention_notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "mention_id",
            sa.Integer(),
            sa.ForeignKey("mentions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_mention_notes_mention", "mention_notes", ["mention_id", "id"])
    op.create_table(
        "replies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=36), nullable=False, unique=True),
        sa.Column(
            "mention_id",
            sa.Integer(),
            sa.ForeignKey("mentions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=512), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("not_before", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
    )
    op.create_index("ix_replies_mention", "replies", ["mention_id", "id"])
    op.create_index("ix_replies_state", "replies", ["state", "id"])
    op.create_table(
        "canned_replies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("short_code", sa.String(length=32), nullable=False, unique=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "label_corrections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "mention_id",
            sa.Integer(),
            sa.ForeignKey("mentions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("scored_label", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("mention_id", name="uq_label_corrections_mention"),
    )
    op.create_table(
        "lexicon_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("phrase", sa.String(length=60), nullable=False, unique=True),
        sa.Column("valence", sa.Float(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("first_response_minutes", sa.Integer(), nullable=False),
        sa.Column("resolution_minutes", sa.Integer(), nullable=False),
        sa.Column("warn_minutes", sa.Integer(), nullable=False),
        sa.Column("business_hours", sa.JSON(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade():
    for table in (
        "sla_policies",
        "lexicon_rules",
        "label_corrections",
        "canned_replies",
        "replies",
        "mention_notes",
    ):
        op.drop_table(table)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("triage_limit")
        batch.drop_column("available")
    for name in (
        "ix_mentions_sla",
        "ix_mentions_snoozed",
        "ix_mentions_assignee",
        "ix_mentions_queue",
    ):
        op.drop_index(name, table_name="mentions")
    with op.batch_alter_table("mentions") as batch:
        batch.drop_constraint("fk_mentions_assignee_id_users", type_="foreignkey")
        for name in ("assignee_id", "status", "priority", "priority_parts", *MENTION_TIMES):
            batch.drop_column(name)
