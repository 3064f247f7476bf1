"""What every service shares about single values and rows: ids that fit an id column, text
a database can store (social.text) within its length, and rows made once per client key."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from social.text import unstorable

M = TypeVar("M")

# Ids are 4-byte integers on PostgreSQL: the smallest id column there is.
MAX_ID = 2**31 - 1


def parse_id(value: Any) -> int | None:
    """value as an id (1 to MAX_ID; an int, or a string of ASCII digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value <= MAX_ID else None
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return None
    if len(value) > len(str(MAX_ID)):
        return None
    number = int(value)
    return number if 1 <= number <= MAX_ID else None


def text_problem(value: Any, limit: int) -> str | None:
    """Why value cannot be stored as text of at most limit characters, for the person
    who sent it; None when it can (None and "" can: they are no text)."""
    if value is None:
        return None
    if not isinstance(value, str):
        return "Send this as text."
    if problem := unstorable(value):
        return f"This {problem.removeprefix('has ')}, which cannot be stored: remove it."
    if len(value) > limit:
        return f"At most {limit} characters (this has {len(value)})."
    return None


def like_escape(term: str) -> str:
    """term with LIKE's wildcards and its escape character escaped (ESCAPE '\\')."""
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def insert_once(session: Session, model: type[M], values: dict[str, Any], key: str) -> M | None:
    """Insert a row unless one with the same unique key is there already: the new row,
    or None when another request stored that key first (even at the same moment, where
    a look-first-then-insert would fail on the unique index)."""
    insert = (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert
    table = model.__table__  # type: ignore[attr-defined]
    primary_key = next(iter(table.primary_key.columns))
    statement = (
        insert(table).values(**values).on_conflict_do_nothing(index_elements=[key])
    ).returning(primary_key)
    row_id = session.execute(statement).scalar()
    return None if row_id is None else session.get(model, row_id)
