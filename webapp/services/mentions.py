"""Mentions: storing them exactly once, scoring, attaching them to contacts' timelines,
and the lists, links and suggestions support staff work with."""

from __future__ import annotations

import functools
import itertools
import json
import math
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Float, Table, and_, func, or_, select, tuple_
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import ColumnElement, UnaryExpression

from social import mention as social_mention
from social import sentiment
from social.matching import normalize_handle
from social.text import storable
from webapp.models import Activity, Contact, Mention, Source, User
from webapp.models.activities import MENTION_KIND
from webapp.models.base import UTCDateTime, utcnow
from webapp.services.errors import NotFoundError
from webapp.services.permissions import require

MATCHABLE = ("x", "mastodon", "bluesky")
PAGE_SIZE = 30
# Timeline entries of mentions get a UUID derived from the mention: attaching the same
# mention twice can never add a second entry.
_TIMELINE_NS = uuid.UUID("6f0c1e0a-5d55-4a2b-9a77-1d9b3f6c2a10")


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# The columns ingest stores from each mention, in the order of its row tuples.
_MENTION_COLUMNS = (
    "network",
    "external_id",
    "source_id",
    "author_handle",
    "author_name",
    "author_followers",
    "author_id",
    "text",
    "url",
    "posted_at",
    "fetched_at",
    "in_reply_to",
    "language",
    "extra",
    "compound",
    "pos",
    "neu",
    "neg",
    "label",
    "sentiment_status",
)
# The extra of a mention that has none: one object, so a batch serializes it once.
_NO_EXTRA: dict[str, Any] = {}
# After them in each tuple: the author's id as a handle key (Bluesky contacts may hold
# the author's DID), read by the matching below and not stored.
_LOOKUP_COLUMNS = ("author_key",)
# The live contact whose handle on the mention's network is the author's handle, else
# the author's id: looked up by the database while it inserts, in the same statement.
_OWNER = (
    "SELECT h.contact_id FROM contact_handles AS h JOIN contacts AS c ON c.id = h.contact_id"
    " WHERE h.network = new.network AND h.handle = new.{key} AND c.deleted_at IS NULL"
)
_MENTION_CONTACT = (
    f"coalesce(({_OWNER.format(key='author_handle')}), ({_OWNER.format(key='author_key')}))"
)
# A timeline entry as ingest makes it: its contact and time are the stored mention's.
_TIMELINE_COLUMNS = ("uuid", "kind", "body", "created_at", "mention_id")
_TIMELINE_COMPUTED = {
    "contact_id": "SELECT m.contact_id FROM mentions AS m WHERE m.id = new.mention_id",
    "occurred_at": "SELECT m.posted_at FROM mentions AS m WHERE m.id = new.mention_id",
}


@dataclass
class _Insert:
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


def _insert_new(
    dialect: Dialect,
    table: Table,
    names: tuple[str, ...],
    rows: list[tuple],
    key: tuple[str, ...],
    returning: tuple[str, ...] = (),
    lookups: tuple[str, ...] = (),
    computed: dict[str, str] | None = None,
    parameter_limit: int = 999,
) -> _Insert:
    """The INSERT of the rows except those whose key is taken, in as few statements as
    the database allows, returning the RETURNING columns of those stored.

    rows are tuples of the values of names (then of lookups: text values the computed
    columns may read as new.<lookup>, not stored). computed maps more columns to SQL
    expressions over the new row (new.<name>); only constant text from this module goes
    there. Values go through the columns' own bind processing (a naive time is refused,
    JSON is serialized as SQLAlchemy does), once per column rather than per value.

    SQLite gets the rows as one VALUES list per statement (as many rows as its
    parameter_limit allows), PostgreSQL as one JSON document of row arrays read back
    with jsonb_array_elements: rows spelled out as VALUES make psycopg parse megabytes
    of SQL per batch. Either way the per-row work stays in C; SQLAlchemy's executemany costs
    more per row than the insert itself.
    """
    if not rows:
        return _Insert([], bool(returning))
    quote = dialect.identifier_preparer.quote
    rows = _bind_values(dialect, table, names, rows)
    all_names = names + lookups
    computed = computed or {}
    targets = ", ".join(quote(n) for n in (*names, *computed))
    is_postgresql = dialect.name == "postgresql"
    selected = ", ".join(
        [
            f"CAST(new.{quote(n)} AS JSON)"
            if is_postgresql and isinstance(table.c[n].type, JSON)
            else f"new.{quote(n)}"
            for n in names
        ]
        + [f"({sql})" for sql in computed.values()]
    )
    tail = f" ON CONFLICT ({', '.join(quote(k) for k in key)}) DO NOTHING"
    if returning:
        tail += f" RETURNING {', '.join(quote(n) for n in returning)}"
    insert = f"INSERT INTO {quote(table.name)} ({targets}) SELECT {selected} FROM "  # noqa: S608
    if is_postgresql:
        # Each row a JSON array (no keys to write or read), parsed once as jsonb.
        fields = ", ".join(
            f"CAST(e.v->>{i} AS {_recordset_type(dialect, table, n)}) AS {quote(n)}"
            for i, n in enumerate(all_names)
        )
        source = (
            f"(SELECT {fields}, e.ord FROM jsonb_array_elements(CAST(%s AS JSONB))"  # noqa: S608
            " WITH ORDINALITY AS e(v, ord)) AS new"
        )
        document = json.dumps(rows)
        statement = insert + source + " ORDER BY new.ord" + tail
        return _Insert([(statement, (document,))], bool(returning))
    # SQLite: VALUES names its columns column1, column2...; a subquery renames them.
    aliases = ", ".join(f"column{i} AS {quote(n)}" for i, n in enumerate(all_names, 1))
    width = len(all_names)
    per_statement = max(1, parameter_limit // width)
    statements = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        values = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * len(chunk))
        # Only the table's own names and placeholders go into the text.
        source = f"(SELECT {aliases} FROM (VALUES {values})) AS new WHERE true"  # noqa: S608
        statements.append((insert + source + tail, tuple(itertools.chain.from_iterable(chunk))))
    return _Insert(statements, bool(returning))


def _recordset_type(dialect: Dialect, table: Table, name: str) -> str:
    """The type a value of the JSON document of rows is read as: the column's, or text
    for JSON (cast afterwards) and for lookups."""
    if name not in table.c or isinstance(table.c[name].type, JSON):
        return "TEXT"
    return table.c[name].type.compile(dialect=dialect)


@functools.lru_cache(maxsize=64)
def _processors(
    dialect: Dialect, table: Table, names: tuple[str, ...]
) -> tuple[tuple[int, Any], ...]:
    """(position, bind processor) of the columns among names whose values need one.

    The same conversions SQLAlchemy makes, cheaper where it matters: a stored mention
    has two times, a JSON object and four floats, and a batch has thousands of them.
    """
    found = []
    for i, name in enumerate(names):
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            # As SQLAlchemy serializes by default: json.dumps, None as the JSON null.
            found.append((i, json.dumps))
        elif isinstance(column_type, Float):
            continue  # its processor turns Decimals into floats; VADER's are floats
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


def _bind_values(
    dialect: Dialect, table: Table, names: tuple[str, ...], rows: list[tuple]
) -> list[tuple]:
    processors = _processors(dialect, table, names)
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
    """How many parameters one SQLite statement may take (32,766 since SQLite 3.32), or
    0 on PostgreSQL, which reads a batch as one parameter."""
    if connection.dialect.name != "sqlite":
        return 0
    return connection.connection.dbapi_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


@functools.lru_cache(maxsize=16384)
def handle_key(network: str, handle: str) -> str:
    """The handle as contact handles store it, or as given when it does not normalize.

    Cached: a batch names the same authors again and again, and the answer depends on
    the two strings alone.
    """
    try:
        return normalize_handle(network, handle)
    except ValueError:
        return handle.strip().lstrip("@").lower()


@dataclass
class IngestResult:
    stored: list[int]
    duplicates: int
    attached: int

    def counts(self) -> dict[str, int]:
        """How many were stored, already there, and put on a contact's timeline."""
        return {
            "stored": len(self.stored),
            "duplicates": self.duplicates,
            "attached": self.attached,
        }


def ingest(
    session: Session, mentions: list[social_mention.Mention], source: Source | None = None
) -> IngestResult:
    """Score and store mentions once each, each new one with the contact who wrote it,
    and put those on their contacts' timelines.

    A mention already stored (same network and external id, from this source or another)
    is counted as a duplicate and left as it is. The caller commits: together with the
    source's cursor, so a crash stores nothing and a retry stores everything once.

    Two statements per batch: the database matches each author to a contact as it
    inserts the mentions, and the timeline entries of the new ones follow. PostgreSQL
    gets a large batch in chunks through psycopg's pipeline mode, so that it stores one
    chunk while the next is scored here (one thread, one transaction).
    """
    if not mentions:
        return IngestResult([], 0, 0)
    connection = session.connection()
    batch = _Batch(connection, source.id if source else None)
    if connection.dialect.name == "postgresql":
        inserted = batch.pipelined(_chunks(mentions))
    else:
        inserted = batch.mentions_insert(mentions).run(connection)
        batch.timeline_insert(inserted).run(connection)
    stored = [mention_id for mention_id, _ in inserted]
    if source is not None:
        source.mentions_stored += len(stored)
    return IngestResult(stored, len(mentions) - len(stored), batch.attached)


# Mentions PostgreSQL stores while the next ones are scored; the last chunk is smaller,
# since nothing is scored while it is stored.
_CHUNK = 250
_LAST_CHUNK = 100


def _chunks(mentions: list[social_mention.Mention]) -> list[list[social_mention.Mention]]:
    """Chunks of at most _CHUNK mentions, of even sizes, then the last _LAST_CHUNK."""
    count = len(mentions)
    if not count:
        return []
    head = count - _LAST_CHUNK if count > _CHUNK + _LAST_CHUNK else count
    size = math.ceil(head / math.ceil(head / _CHUNK))
    chunks = [mentions[i : min(i + size, head)] for i in range(0, head, size)]
    return chunks + ([mentions[head:]] if head < count else [])


def _timeline_insert(
    dialect: Dialect, mention_ids: list[int], now: datetime, limit: int
) -> _Insert:
    """The timeline entries of these mentions, each on the timeline of the contact the
    mention has, at its time (entries already there are left alone)."""
    return _insert_new(
        dialect,
        Activity.__table__,
        _TIMELINE_COLUMNS,
        [
            (_timeline_uuid(mention_id), MENTION_KIND, "", now, mention_id)
            for mention_id in mention_ids
        ],
        key=("mention_id",),
        computed=_TIMELINE_COMPUTED,
        parameter_limit=limit,
    )


class _Batch:
    """The statements that store one batch of mentions."""

    def __init__(self, connection: Connection, source_id: int | None):
        self.connection = connection
        self.dialect = connection.dialect
        self.source_id = source_id
        self.now = utcnow()
        self.attached = 0
        self.limit = _sqlite_parameter_limit(connection)

    def mentions_insert(self, mentions: list[social_mention.Mention]) -> _Insert:
        """Score the mentions and make the insert of those not stored yet."""
        scores = sentiment.score([m.text for m in mentions], [m.language for m in mentions])
        now, source_id = self.now, self.source_id
        rows = [
            (
                m.network,
                m.external_id,
                source_id,
                handle_key(m.network, m.author_handle)[:320],
                storable(m.author_name or "")[:200],
                m.author_followers,
                m.author_id,
                storable(m.text),
                m.url,
                m.created_at,
                now,
                m.in_reply_to,
                m.language,
                m.extra or _NO_EXTRA,
                s.compound,
                s.pos,
                s.neu,
                s.neg,
                s.label,
                s.status,
                m.author_id.lower() if m.author_id and m.network in MATCHABLE else None,
            )
            for m, s in zip(mentions, scores, strict=True)
        ]
        return _insert_new(
            self.dialect,
            Mention.__table__,
            _MENTION_COLUMNS,
            rows,
            key=("network", "external_id"),
            returning=("id", "contact_id"),
            lookups=_LOOKUP_COLUMNS,
            computed={"contact_id": _MENTION_CONTACT},
            parameter_limit=self.limit,
        )

    def timeline_insert(self, inserted: list[Any]) -> _Insert:
        """The timeline entries of the stored mentions that have a contact."""
        ids = [mention_id for mention_id, contact_id in inserted if contact_id]
        self.attached += len(ids)
        return _timeline_insert(self.dialect, ids, self.now, self.limit)

    def pipelined(self, chunks: list[list[social_mention.Mention]]) -> list[Any]:
        """Store the chunks through psycopg's pipeline mode: a statement is sent and its
        result read only after the next chunk has been scored, so the server works
        while this process scores. Statements run in the order sent, in this session's
        transaction; the first error is raised once the pipeline is left."""
        raw = self.connection.connection.dbapi_connection
        inserted: list[Any] = []

        def send(insert: _Insert) -> Any:
            cursor = raw.cursor()
            for sql, params in insert.statements:
                cursor.execute(sql, params)
            return cursor

        with raw.pipeline():
            pending = None
            for chunk in chunks:
                insert = self.mentions_insert(chunk)
                if pending is not None:
                    rows = pending.fetchall()
                    inserted.extend(rows)
                    send(self.timeline_insert(rows))
                pending = send(insert)
            if pending is not None:
                rows = pending.fetchall()
                inserted.extend(rows)
                send(self.timeline_insert(rows))
        return inserted


def attach_authored(session: Session, contact: Contact) -> int:
    """Put on the contact's timeline the unmatched mentions its handles wrote (a Bluesky
    DID handle also matches the author's id); return how many. For when a contact gets
    a handle: the author's earlier mentions follow, not only the next ones."""
    keys = [(h.network, h.handle) for h in contact.handles if h.network in MATCHABLE]
    if not keys or contact.deleted_at is not None:
        return 0
    conditions = [and_(Mention.network == n, Mention.author_handle == h) for n, h in keys]
    # Author ids are not indexed: only a DID, which nothing but an id can be, is looked
    # up that way (a walk over the network's mentions, on a person's edit).
    conditions += [
        and_(Mention.network == n, func.lower(Mention.author_id) == h)
        for n, h in keys
        if h.startswith("did:")
    ]
    authored = session.scalars(
        select(Mention).where(Mention.contact_id.is_(None), or_(*conditions))
    ).all()
    return _attach_all(session, [(m, contact.id) for m in authored], None)


def _timeline_uuid(mention_id: int) -> str:
    return str(uuid.uuid5(_TIMELINE_NS, f"mention:{mention_id}"))


def _attach_all(session: Session, pairs: list[tuple[Mention, int]], by: User | None) -> int:
    """Put each mention on its contact's timeline, linked by `by` (None: matched by its
    handle); return how many. One update of the mentions, one insert of the entries."""
    if not pairs:
        return 0
    for mention, contact_id in pairs:
        mention.contact_id = contact_id
        mention.matched_by_id = by.id if by else None
    session.flush()
    connection = session.connection()
    ids = [mention.id for mention, _ in pairs]
    limit = _sqlite_parameter_limit(connection)
    _timeline_insert(connection.dialect, ids, utcnow(), limit).run(connection)
    return len(pairs)


def get_mention(session: Session, user: User, mention_id: int) -> Mention:
    """A mention the user may see. :raise NotFoundError:"""
    require(user, "mention.view")
    mention = session.get(Mention, mention_id)
    if mention is None:
        raise NotFoundError(f"mention {mention_id}")
    return mention


def link(session: Session, user: User, mention: Mention, contact: Contact) -> int | None:
    """Put a mention on a contact's timeline by hand (moving it if it was elsewhere);
    return the contact it was on before, if any (for an undo)."""
    require(user, "mention.triage")
    previous = unlink(session, user, mention)
    session.flush()
    _attach_all(session, [(mention, contact.id)], user)
    return previous


def unlink(session: Session, user: User, mention: Mention) -> int | None:
    """Take a mention off the timeline it is on; it stays in the inbox, unmatched.
    Return the contact it was on, if any (for an undo)."""
    require(user, "mention.triage")
    previous = mention.contact_id
    session.query(Activity).filter(Activity.mention_id == mention.id).delete()
    mention.contact_id = None
    mention.matched_by_id = None
    return previous


def attach_by_hand(session: Session, user: User, mention: Mention, contact_id: int) -> None:
    """Put a mention on the timeline of a contact just made from it, linked by user."""
    require(user, "mention.triage")
    _attach_all(session, [(mention, contact_id)], user)


def _no_index(session: Session, column: InstrumentedAttribute[Any]) -> ColumnElement[Any]:
    """The column as SQLite's planner will not pick an index for (a unary +).

    Without statistics SQLite takes `network = ?` for a selective condition, reads every
    mention of the network through the author index and sorts them all (70-230 ms at
    300,000 mentions) where walking the newest-first index finds a page in under a
    millisecond; the contact index invites the same mistake. PostgreSQL, which keeps
    statistics, chooses well on its own.
    """
    if _is_postgresql(session):
        return column
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


@dataclass
class MentionPage:
    mentions: list[Mention]
    next_before: int | None


# Back to a long inbox reloads it as far as it was scrolled, but no further than this.
THROUGH_PAGES = 10


def list_through(session: Session, user: User, through: int, **filters: Any) -> MentionPage:
    """The inbox from the newest down to and including the mention with id through (as
    far as it was scrolled before going Back to it), at most THROUGH_PAGES pages."""
    rows: list[Mention] = []
    before = None
    for _ in range(THROUGH_PAGES):
        page = list_mentions(session, user, before=before, **filters)
        rows += page.mentions
        if page.next_before is None or any(m.id == through for m in page.mentions):
            return MentionPage(rows, page.next_before)
        before = page.next_before
    return MentionPage(rows, before)


def list_mentions(
    session: Session,
    user: User,
    source_id: int | None = None,
    network: str | None = None,
    label: str | None = None,
    matched: bool | None = None,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> MentionPage:
    """Mentions newest first, filtered; before is the last id of the previous page."""
    require(user, "mention.view")
    stmt = select(Mention)
    if source_id:
        stmt = stmt.where(Mention.source_id == source_id)
    if network:
        stmt = stmt.where(_no_index(session, Mention.network) == network)
    if label == "unscored":
        stmt = stmt.where(Mention.label.is_(None))
    elif label:
        stmt = stmt.where(Mention.label == label)
    if matched is True:
        stmt = stmt.where(_no_index(session, Mention.contact_id).is_not(None))
    elif matched is False:
        stmt = stmt.where(_no_index(session, Mention.contact_id).is_(None))
    if before:
        last = session.get(Mention, before)
        if last is not None:
            stmt = stmt.where(tuple_(Mention.posted_at, Mention.id) < (last.posted_at, last.id))
    stmt = stmt.order_by(Mention.posted_at.desc(), Mention.id.desc()).limit(limit + 1)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return MentionPage(rows, rows[-1].id if more else None)
