"""Reminders: a task's notifications found by the task, so the sweep that sends them
asks "was this due time reminded?" through an index rather than the whole table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_notifications_task", "notifications", ["task_id", "created_at"])


def downgrade():
    op.drop_index("ix_notifications_task", table_name="notifications")
