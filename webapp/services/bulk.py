"""Bulk inserts that skip rows already stored: INSERT … SELECT … ON CONFLICT DO NOTHING
from one VALUES list per statement (SQLite) or one JSON document of rows (PostgreSQL),
the values converted as the columns' own bind processing would, and large batches
pipelined on PostgreSQL. It knows tables and columns, nothing of what the rows mean."""

from __future__ import annotations

import functools
import itertools
import json
import math
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, Float, Table
from sqlalchemy.engine import Connection, Dialect

from webapp.models.base import UTCDateTime

T = TypeVar("T")

# Items PostgreSQL stores while the caller makes the statement of the next ones; the
# last chunk is smaller, since the caller has nothing left to do while it is stored.
_CHUNK = 250
_LAST_CHUNK = 100


@dataclass(frozen=True)
class Target:
    """A table to insert into: the columns each row gives, in order, and the unique key
    whose taken values leave a row out.

    lookups are text values given after the columns', which computed may read as
    new.<lookup> and which are not stored. computed maps more columns to SQL expressions
    over the new row (new.<name>); only constant text of the calling module goes there.
    """

    table: Table
    names: tuple[str, ...]
    key: tuple[str, ...]
    returning: tuple[str, ...] = ()
    lookups: tuple[str, ...] = ()
    computed: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Insert:
    """INSERT statements ready for the driver: SQL text and positional parameters,
    nothing left to convert."""

    statements: list[tuple[str, tuple[Any, ...]]]
    returning: bool

    def run(self, connection: Connection) -> list[Any]:
        """Run them now, in order; the RETURNING rows of all."""
        found: list[Any] = []
        for sql, params in self.statements:
            result = connection.exec_driver_sql(sql, params)
            if self.returning:
                found.extend(result.all())
        return found


def insert_new(connection: Connection, target: Target, rows: list[tuple]) -> Insert:
    """The INSERT of the rows except those whose key is taken, in as few statements as
    the database allows, returning the target's returning columns of those stored.

    rows are tuples of the values of target.names, then of target.lookups. Values go
    through the columns' own bind processing (a naive time is refused, JSON is
    serialized as SQLAlchemy does), once per column rather than per value.

    SQLite gets the rows as one VALUES list per statement (as many rows as its limit on
    parameters allows), PostgreSQL as one JSON document of row arrays read back with
    jsonb_array_elements: rows spelled out as VALUES make psycopg parse megabytes of SQL
    per batch. Either way the per-row work stays in C; SQLAlchemy's executemany costs
    more per row than the insert itself.

    :raise ValueError: for a naive time given for a UTC column.
    """
    returning = bool(target.returning)
    if not rows:
        return Insert([], returning)
    dialect = connection.dialect
    table = target.table
    quote = dialect.identifier_preparer.quote
    rows = _bound_rows(dialect, table, target.names, rows)
    all_names = target.names + target.lookups
    targets = ", ".join(quote(n) for n in (*target.names, *target.computed))
    is_postgresql = dialect.name == "postgresql"
    selected = ", ".join(
        [
            f"CAST(new.{quote(n)} AS JSON)"
            if is_postgresql and isinstance(table.c[n].type, JSON)
            else f"new.{quote(n)}"
            for n in target.names
        ]
        + [f"({sql})" for sql in target.computed.values()]
    )
    tail = f" ON CONFLICT ({', '.join(quote(k) for k in target.key)}) DO NOTHING"
    if returning:
        tail += f" RETURNING {', '.join(quote(n) for n in target.returning)}"
    insert = f"INSERT INTO {quote(table.name)} ({targets}) SELECT {selected} FROM "  # noqa: S608
    if is_postgresql:
        # Each row a JSON array (no keys to write or read), parsed once as jsonb.
        fields = ", ".join(
            f"CAST(e.v->>{i} AS {_json_field_type(dialect, table, n)}) AS {quote(n)}"
            for i, n in enumerate(all_names)
        )
        source = (
            f"(SELECT {fields}, e.ord FROM jsonb_array_elements(CAST(%s AS JSONB))"  # noqa: S608
            " WITH ORDINALITY AS e(v, ord)) AS new"
        )
        document = json.dumps(rows)
        statement = insert + source + " ORDER BY new.ord" + tail
        return Insert([(statement, (document,))], returning)
    # SQLite: VALUES names its columns column1, column2...; a subquery renames them.
    aliases = ", ".join(f"column{i} AS {quote(n)}" for i, n in enumerate(all_names, 1))
    width = len(all_names)
    per_statement = max(1, _sqlite_parameter_limit(connection) // width)
    statements = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        values = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * len(chunk))
        # Only the table's own names and placeholders go into the text.
        source = f"(SELECT {aliases} FROM (VALUES {values})) AS new WHERE true"  # noqa: S608
        statements.append((insert + source + tail, tuple(itertools.chain.from_iterable(chunk))))
    return Insert(statements, returning)


def insert_batch(
    connection: Connection,
    items: Sequence[T],
    insert: Callable[[Sequence[T]], Insert],
    follow: Callable[[list[Any]], Insert],
) -> list[Any]:
    """Run insert(items), then follow(the rows it returned); return those rows.

    PostgreSQL gets a large batch in chunks through psycopg's pipeline mode: a chunk's
    statement is sent and its rows read only after insert has made the next one, so the
    server stores while the caller works (one thread, one transaction). Statements run
    in the order sent; the first error is raised once the pipeline is left.
    """
    if connection.dialect.name != "postgresql":
        inserted = insert(items).run(connection)
        follow(inserted).run(connection)
        return inserted
    raw = connection.connection.dbapi_connection
    inserted = []

    def send(statements: Insert) -> Any:
        """Queue the statements on the pipeline; the cursor that will hold their rows."""
        cursor = raw.cursor()
        for sql, params in statements.statements:
            cursor.execute(sql, params)
        return cursor

    with raw.pipeline():
        pending = None
        for chunk in _chunks(items):
            statements = insert(chunk)
            if pending is not None:
                rows = pending.fetchall()
                inserted.extend(rows)
                send(follow(rows))
            pending = send(statements)
        if pending is not None:
            rows = pending.fetchall()
            inserted.extend(rows)
            send(follow(rows))
    return inserted


def _chunks(items: Sequence[T]) -> list[Sequence[T]]:
    """Chunks of at most _CHUNK items, of even sizes, then the last _LAST_CHUNK."""
    count = len(items)
    if not count:
        return []
    head = count - _LAST_CHUNK if count > _CHUNK + _LAST_CHUNK else count
    size = math.ceil(head / math.ceil(head / _CHUNK))
    chunks = [items[i : min(i + size, head)] for i in range(0, head, size)]
    return chunks + ([items[head:]] if head < count else [])


def _json_field_type(dialect: Dialect, table: Table, name: str) -> str:
    """The type a value of the JSON document of rows is read as: the column's, or text
    for JSON (cast afterwards) and for lookups."""
    if name not in table.c or isinstance(table.c[name].type, JSON):
        return "TEXT"
    return table.c[name].type.compile(dialect=dialect)


@functools.lru_cache(maxsize=64)
def _bind_processors(
    dialect: Dialect, table: Table, names: tuple[str, ...]
) -> tuple[tuple[int, Any], ...]:
    """(position, bind processor) of the columns among names whose values need one.

    The same conversions SQLAlchemy makes, cheaper where it matters: a row may have
    times, JSON and floats, and a batch has thousands of rows.
    """
    found = []
    for i, name in enumerate(names):
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            # As SQLAlchemy serializes by default: json.dumps, None as the JSON null.
            found.append((i, json.dumps))
        elif isinstance(column_type, Float):
            continue  # its processor only turns Decimals into floats
        elif isinstance(column_type, UTCDateTime):
            found.append((i, sqlite_utc_text if dialect.name == "sqlite" else _utc_iso))
        elif process := column_type.dialect_impl(dialect).bind_processor(dialect):
            found.append((i, process))
    return tuple(found)


def sqlite_utc_text(value: datetime | None) -> str | None:
    """A time as a UTCDateTime column stores it on SQLite (what SQLAlchemy's processors
    write, in a third of the time): UTC, no zone, to the microsecond.

    :raise ValueError: for a naive time, as the column does.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given for a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _utc_iso(value: datetime | None) -> str | None:
    """A time for the JSON document of rows sent to PostgreSQL: ISO 8601 in UTC (no
    serializer hook per value).

    :raise ValueError: for a naive time, as the column does.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given for a UTC column")
    return value.astimezone(UTC).isoformat()


def _bound_rows(
    dialect: Dialect, table: Table, names: tuple[str, ...], rows: list[tuple]
) -> list[Sequence[Any]]:
    """The rows with each value as the column's bind processing makes it."""
    processors = _bind_processors(dialect, table, names)
    if not processors:
        return rows
    # The rows of a batch share some values (the time it was fetched): convert once.
    last: dict[int, tuple[Any, Any]] = {}
    bound = []
    for row in rows:
        values = list(row)
        for i, process in processors:
            value = values[i]
            seen = last.get(i)
            if seen is not None and seen[0] is value:
                values[i] = seen[1]
            else:
                values[i] = converted = process(value)
                last[i] = (value, converted)
        bound.append(values)
    return bound


def _sqlite_parameter_limit(connection: Connection) -> int:
    """How many parameters one SQLite statement may take (32,766 since SQLite 3.32)."""
    return connection.connection.dbapi_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
