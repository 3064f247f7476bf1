"""Search text that finds what people type: names, companies and job titles folded alike
(Ørsted is orsted, Straße is strasse), phone numbers also in their E.164 and national
forms, and one- and two-character CJK words bounded by spaces. The name sort key is
folded too. Every contact's search text and sort key are made again, in batches; on
SQLite the FTS5 trigger re-indexes each row whose search text changed.

Phone numbers written without + are read in DEFAULT_PHONE_REGION as configured where
the upgrade runs (`crm db upgrade`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 1000

contacts = sa.table(
    "contacts",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("company", sa.String),
    sa.column("title", sa.String),
    sa.column("email", sa.String),
    sa.column("phone", sa.String),
    sa.column("sort_name", sa.String),
    sa.column("search_text", sa.Text),
)


def _text_0004(row) -> tuple[str, str]:
    """The sort key and search text as revision 0004's code made them."""
    parts = [row.name, row.company, row.email, re.sub(r"\D", "", row.phone or "")]
    return (row.name or "").lower(), " ".join(p for p in parts if p).lower()


def _text_0005(row) -> tuple[str, str]:
    """The sort key and search text as the search service makes them now."""
    from webapp.services.search_text import compose, sort_name_for

    parts = [row.name, row.company, row.title, row.email]
    return sort_name_for(row.name), compose(parts, row.phone)


def _rewrite(make) -> None:
    """Set every contact's sort key and search text to make(row), a batch at a time,
    writing only the rows that change."""
    bind = op.get_bind()
    update = (
        contacts.update()
        .where(contacts.c.id == sa.bindparam("row_id"))
        .values(sort_name=sa.bindparam("new_sort"), search_text=sa.bindparam("new_text"))
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(contacts).where(contacts.c.id > last).order_by(contacts.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        changes = []
        for row in rows:
            sort_name, text = make(row)
            if (sort_name, text) != (row.sort_name, row.search_text):
                changes.append({"row_id": row.id, "new_sort": sort_name, "new_text": text})
        if changes:
            bind.execute(update, changes)
        last = rows[-1].id


def upgrade():
    _rewrite(_text_0005)


def downgrade():
    _rewrite(_text_0004)
