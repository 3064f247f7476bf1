"""Support's round robin and lexicon rules with a history.

Round robin: users.available now means "taking new items" and starts off for everyone
(it was never read before this); users.round_robin_at is when the round robin last gave
someone an item, or when they became available, so the one who has waited longest gets
the next. (The oldest unassigned open items are read off the queue's index: an index of
their own made PostgreSQL pick it for filtered queue pages, ANDed with another, 20 ms.)

Lexicon rules: a rule taken back (or changed) is marked removed, with who and when,
instead of being deleted, so a mention's explanation uses the rules that were in force
when it was scored. One live rule per phrase.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

LIVE = sa.text("removed_at IS NULL")


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.alter_column("available", server_default=sa.false())
        batch.add_column(sa.Column("round_robin_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(sa.text("UPDATE users SET available = :off").bindparams(off=False))
    with op.batch_alter_table("lexicon_rules") as batch:
        batch.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("removed_by_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_lexicon_rules_removed_by_id_users", "users", ["removed_by_id"], ["id"]
        )
        batch.drop_constraint("uq_lexicon_rules_phrase", type_="unique")
    op.create_index(
        "uq_lexicon_rules_live_phrase",
        "lexicon_rules",
        ["phrase"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )


def downgrade():
    op.execute("DELETE FROM lexicon_rules WHERE removed_at IS NOT NULL")
    op.drop_index("uq_lexicon_rules_live_phrase", table_name="lexicon_rules")
    with op.batch_alter_table("lexicon_rules") as batch:
        batch.create_unique_constraint("uq_lexicon_rules_phrase", ["phrase"])
        batch.drop_constraint("fk_lexicon_rules_removed_by_id_users", type_="foreignkey")
        batch.drop_column("removed_by_id")
        batch.drop_column("removed_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("round_robin_at")
        batch.alter_column("available", server_default=sa.true())
