"""The bulk-insert engine: rows stored once each, however many at a time, with their
values as SQLAlchemy itself would write them; a batch, and what follows each of its
parts, all stored or none."""

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import JSON, Column, Float, Integer, MetaData, Table, Text, func, select

from webapp.extensions import db
from webapp.models.base import UTCDateTime
from webapp.services import bulk

EVENING_IN_NEW_YORK = datetime(2026, 11, 20, 23, 30, tzinfo=timezone(timedelta(hours=-5)))


@pytest.fixture
def probe(app):
    """A table of the test's own in the app's database, dropped afterwards; the test
    runs in an app context."""
    metadata = MetaData()
    table = Table(
        "bulk_probe",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("code", Text, nullable=False, unique=True),
        Column("at", UTCDateTime),
        Column("doc", JSON),
        Column("score", Float),
        Column("note", Text),
    )
    with app.app_context():
        metadata.create_all(db.engine)
        try:
            yield table
        finally:
            db.session.rollback()
            metadata.drop_all(db.engine)


def values(table):
    """What the table holds, oldest row first, as SQLAlchemy reads it."""
    columns = (table.c.code, table.c.at, table.c.doc, table.c.score, table.c.note)
    return [tuple(row) for row in db.session.execute(select(*columns).order_by(table.c.id))]


def codes(table):
    """The codes the table holds, oldest row first."""
    return [row[0] for row in values(table)]


def test_rows_with_a_taken_key_are_left_out_and_the_new_ones_returned(probe):
    target = bulk.Target(probe, ("code", "at", "doc", "score"), key=("code",), returning=("code",))
    connection = db.session.connection()
    first = [("a", EVENING_IN_NEW_YORK, {"k": [1, "ü"]}, 0.5), ("b", None, None, None)]
    assert bulk.insert_new(connection, target, first).run(connection) == [("a",), ("b",)]
    again = [("b", EVENING_IN_NEW_YORK, {}, 1.0), ("c", EVENING_IN_NEW_YORK, [1, 2], -0.25)]
    assert bulk.insert_new(connection, target, again).run(connection) == [("c",)]
    db.session.commit()
    assert values(probe) == [
        ("a", EVENING_IN_NEW_YORK, {"k": [1, "ü"]}, 0.5, None),
        ("b", None, None, None, None),
        ("c", EVENING_IN_NEW_YORK, [1, 2], -0.25, None),
    ]
    # A time written here is found by a query SQLAlchemy binds the time for.
    same_time = select(func.count()).where(probe.c.at == EVENING_IN_NEW_YORK.astimezone(UTC))
    assert db.session.scalar(same_time) == 2


def test_a_naive_time_is_refused_and_nothing_is_stored(probe):
    target = bulk.Target(probe, ("code", "at"), key=("code",))
    connection = db.session.connection()
    rows = [("a", EVENING_IN_NEW_YORK), ("b", datetime(2026, 11, 20, 9, 0))]
    with pytest.raises(ValueError, match="naive"):
        bulk.insert_new(connection, target, rows).run(connection)
    assert codes(probe) == []


def test_computed_columns_read_the_lookups_which_are_not_stored(probe):
    target = bulk.Target(
        probe,
        ("code",),
        key=("code",),
        returning=("code", "note"),
        lookups=("hint",),
        computed={"note": "'from ' || new.hint"},
    )
    connection = db.session.connection()
    stored = bulk.insert_new(connection, target, [("a", "x"), ("b", None)]).run(connection)
    assert stored == [("a", "from x"), ("b", None)]


@pytest.mark.sqlite_only
def test_more_parameters_than_a_sqlite_statement_takes_go_in_several(probe):
    target = bulk.Target(probe, ("code", "score"), key=("code",), returning=("code",))
    connection = db.session.connection()
    raw = connection.connection.dbapi_connection
    before = raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 15)
    try:
        rows = [(f"r{i:03}", i / 4) for i in range(100)]
        stored = bulk.insert_new(connection, target, rows).run(connection)
    finally:
        raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)
    assert [code for (code,) in stored] == [code for code, _ in rows]
    assert codes(probe) == [code for code, _ in rows]


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        datetime(2026, 11, 20, 9, 0, 0, 1, tzinfo=UTC),
        datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
        EVENING_IN_NEW_YORK,
    ],
)
def test_sqlite_times_are_written_as_sqlalchemy_writes_them(when):
    """The engine formats SQLite times itself (for speed); the text must be SQLAlchemy's
    own, or times written by the two would compare and sort wrongly as strings."""
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    expected = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)(when)
    assert bulk.sqlite_utc_text(when) == expected
    with pytest.raises(ValueError, match="naive"):
        bulk.sqlite_utc_text(when.replace(tzinfo=None))


class Followed:
    """insert and follow for insert_batch: each code stored, then a row noting it was
    returned; what each was given, in order."""

    def __init__(self, table, fail_after: int | None = None):
        self.items = bulk.Target(table, ("code",), key=("code",), returning=("code",))
        self.notes = bulk.Target(table, ("code", "note"), key=("code",))
        self.given: list[str] = []
        self.returned: list[str] = []
        self.fail_after = fail_after

    def insert(self, chunk):
        """The insert of the chunk's codes."""
        self.given += chunk
        return bulk.insert_new(db.session.connection(), self.items, [(c,) for c in chunk])

    def follow(self, rows):
        """A note for each code returned (a row the database refuses, once past fail_after)."""
        self.returned += [code for (code,) in rows]
        notes = [(f"{code}+", "returned") for (code,) in rows]
        if self.fail_after is not None and len(self.returned) > self.fail_after:
            notes.append((None, "refused"))
        return bulk.insert_new(db.session.connection(), self.notes, notes)


def test_a_batch_is_inserted_once_in_order_and_each_part_followed(probe):
    items = [f"i{n:04}" for n in range(700)]
    followed = Followed(probe)
    stored = bulk.insert_batch(db.session.connection(), items, followed.insert, followed.follow)
    db.session.commit()
    assert [code for (code,) in stored] == items
    assert followed.given == items and followed.returned == items
    assert sorted(codes(probe)) == sorted(items + [f"{code}+" for code in items])
    # Again: everything is taken, nothing is returned or followed.
    again = Followed(probe)
    assert bulk.insert_batch(db.session.connection(), items, again.insert, again.follow) == []
    assert again.given == items and again.returned == []


def test_a_batch_refused_half_way_stores_nothing_and_the_session_goes_on(probe):
    items = [f"i{n:04}" for n in range(700)]
    failing = Followed(probe, fail_after=len(items) // 2)
    with pytest.raises(Exception, match=r"(?i)not.null"):
        bulk.insert_batch(db.session.connection(), items, failing.insert, failing.follow)
    db.session.rollback()
    assert codes(probe) == []
    followed = Followed(probe)
    stored = bulk.insert_batch(db.session.connection(), items, followed.insert, followed.follow)
    db.session.commit()
    assert len(stored) == len(items) and len(codes(probe)) == 2 * len(items)
