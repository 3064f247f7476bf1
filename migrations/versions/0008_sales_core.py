"""The sales core: pipeline stages (a default set), deals and their history, tasks,
notifications and push subscriptions, secrets the app makes once (VAPID keys); contacts
get coordinates, activities an outcome, a check-in's position and duration, a deal,
and a deletion by their author.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
NOT_DELETED = sa.text("deleted_at IS NULL")
OPEN_TASK = sa.text("status = 'todo'")
DEFAULT_STAGES = (
    ("Qualified", 20, 14, "open"),
    ("Meeting booked", 40, 14, "open"),
    ("Proposal sent", 60, 21, "open"),
    ("Negotiation", 80, 21, "open"),
    ("Won", 100, None, "won"),
    ("Lost", 0, None, "lost"),
)


def _fk(table: str, column: str, target: str, ondelete: str | None = None):
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete=ondelete
    )


def upgrade():
    stages = op.create_table(
        "pipeline_stages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=False),
        sa.Column("rotting_days", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pipeline_stages"),
    )
    op.create_index("ix_pipeline_stages_position", "pipeline_stages", ["position"])
    now = datetime.now(UTC)
    op.bulk_insert(
        stages,
        [
            {
                "name": name,
                "position": i,
                "probability": probability,
                "rotting_days": rotting,
                "kind": kind,
                "created_at": now,
            }
            for i, (name, probability, rotting, kind) in enumerate(DEFAULT_STAGES, start=1)
        ],
    )

    op.create_table(
        "deals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("company", sa.String(length=200), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("stage_id", sa.Integer(), nullable=False),
        sa.Column("expected_close", sa.Date(), nullable=True),
        sa.Column("position", sa.Float(), nullable=False),
        sa.Column("next_step", sa.String(length=200), nullable=True),
        sa.Column("lost_reason", sa.String(length=200), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("stage_entered_at", TS, nullable=False),
        sa.Column("close_date_pushes", sa.Integer(), nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("deleted_at", TS, nullable=True),
        _fk("deals", "owner_id", "users"),
        _fk("deals", "contact_id", "contacts", "SET NULL"),
        _fk("deals", "stage_id", "pipeline_stages"),
        sa.PrimaryKeyConstraint("id", name="pk_deals"),
    )
    op.create_index(
        "ix_deals_board",
        "deals",
        ["stage_id", "position", "id"],
        sqlite_where=NOT_DELETED,
        postgresql_where=NOT_DELETED,
    )
    op.create_index("ix_deals_owner_stage", "deals", ["owner_id", "stage_id"])
    op.create_index("ix_deals_expected_close", "deals", ["expected_close", "stage_id"])
    op.create_index(
        "ix_deals_contact",
        "deals",
        ["contact_id"],
        sqlite_where=sa.text("contact_id IS NOT NULL"),
        postgresql_where=sa.text("contact_id IS NOT NULL"),
    )

    op.create_table(
        "deal_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("before", sa.String(length=64), nullable=True),
        sa.Column("after", sa.String(length=64), nullable=True),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.Column("changed_at", TS, nullable=False),
        _fk("deal_changes", "deal_id", "deals", "CASCADE"),
        _fk("deal_changes", "changed_by_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_deal_changes"),
    )
    op.create_index("ix_deal_changes_deal", "deal_changes", ["deal_id", "changed_at"])

    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("deal_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("done_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _fk("tasks", "assignee_id", "users"),
        _fk("tasks", "created_by_id", "users"),
        _fk("tasks", "contact_id", "contacts", "CASCADE"),
        _fk("tasks", "deal_id", "deals", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
        sa.UniqueConstraint("uuid", name="uq_tasks_uuid"),
    )
    op.create_index(
        "ix_tasks_open_by_assignee",
        "tasks",
        ["assignee_id", "due_at"],
        sqlite_where=OPEN_TASK,
        postgresql_where=OPEN_TASK,
    )
    op.create_index(
        "ix_tasks_open_due", "tasks", ["due_at"], sqlite_where=OPEN_TASK, postgresql_where=OPEN_TASK
    )
    op.create_index("ix_tasks_contact", "tasks", ["contact_id"])
    op.create_index("ix_tasks_deal", "tasks", ["deal_id"])

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("read_at", TS, nullable=True),
        sa.Column("pushed_at", TS, nullable=True),
        _fk("notifications", "user_id", "users", "CASCADE"),
        _fk("notifications", "task_id", "tasks", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("key", name="uq_notifications_key"),
    )
    op.create_index("ix_notifications_user", "notifications", ["user_id", "id"])
    op.create_index(
        "ix_notifications_unread",
        "notifications",
        ["user_id"],
        sqlite_where=sa.text("read_at IS NULL"),
        postgresql_where=sa.text("read_at IS NULL"),
    )

    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=1000), nullable=False),
        sa.Column("p256dh", sa.String(length=200), nullable=False),
        sa.Column("auth", sa.String(length=100), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_success_at", TS, nullable=True),
        _fk("push_subscriptions", "user_id", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_push_subscriptions"),
        sa.UniqueConstraint("endpoint", name="uq_push_subscriptions_endpoint"),
    )
    op.create_index("ix_push_subscriptions_user", "push_subscriptions", ["user_id"])

    op.create_table(
        "app_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_app_secrets"),
    )

    op.add_column("contacts", sa.Column("latitude", sa.Float(), nullable=True))
    op.add_column("contacts", sa.Column("longitude", sa.Float(), nullable=True))
    op.add_column("contacts", sa.Column("located_at", TS, nullable=True))
    op.create_index(
        "ix_contacts_location",
        "contacts",
        ["latitude", "longitude"],
        sqlite_where=sa.text("latitude IS NOT NULL"),
        postgresql_where=sa.text("latitude IS NOT NULL"),
    )
    with op.batch_alter_table("activities") as batch:
        batch.add_column(sa.Column("deal_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("latitude", sa.Float(), nullable=True))
        batch.add_column(sa.Column("longitude", sa.Float(), nullable=True))
        batch.add_column(sa.Column("accuracy_m", sa.Float(), nullable=True))
        batch.add_column(sa.Column("ended_at", TS, nullable=True))
        batch.add_column(sa.Column("edited_at", TS, nullable=True))
        batch.add_column(sa.Column("deleted_at", TS, nullable=True))
        batch.create_foreign_key(
            "fk_activities_deal_id_deals", "deals", ["deal_id"], ["id"], ondelete="SET NULL"
        )


def downgrade():
    with op.batch_alter_table("activities") as batch:
        batch.drop_constraint("fk_activities_deal_id_deals", type_="foreignkey")
        for column in (
            "deleted_at",
            "edited_at",
            "ended_at",
            "accuracy_m",
            "longitude",
            "latitude",
            "outcome",
            "deal_id",
        ):
            batch.drop_column(column)
    op.drop_index("ix_contacts_location", table_name="contacts")
    # Not a batch: on SQLite a batch would copy the table and lose its search triggers.
    for column in ("located_at", "longitude", "latitude"):
        op.drop_column("contacts", column)
    for table in (
        "app_secrets",
        "push_subscriptions",
        "notifications",
        "tasks",
        "deal_changes",
        "deals",
        "pipeline_stages",
    ):
        op.drop_table(table)
