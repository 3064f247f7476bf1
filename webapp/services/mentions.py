"""Mentions: storing them exactly once, scoring, attaching them to contacts' timelines,
and the lists, links and suggestions support staff work with."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from difflib import SequenceMatcher
from typing import Any

from sqlalchemy import (
    JSON,
    Row,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    cast,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from social import mention as social_mention
from social import sentiment
from social.matching import normalize_handle
from webapp.models import Activity, Contact, ContactHandle, Mention, Source, User
from webapp.models.activities import MENTION_KIND
from webapp.models.base import utcnow
from webapp.services.errors import NotFoundError
from webapp.services.permissions import require

MATCHABLE = ("x", "mastodon", "bluesky")
PAGE_SIZE = 30
# Author keys per contact-handle query on SQLite: far below its limit on parameters.
_LOOKUP_CHUNK = 500
# Timeline entries made by matching get a UUID derived from the mention: matching the
# same mention twice can never add a second entry.
_TIMELINE_NS = uuid.UUID("6f0c1e0a-5d55-4a2b-9a77-1d9b3f6c2a10")


def _insert(session: Session, table):
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _insert_new(
    session: Session, table: Table, rows: list[dict[str, Any]], key: list[str], returning=()
) -> list[Row]:
    """INSERT the rows (all with the same keys) except those whose key is taken, in one
    statement; return the RETURNING rows of those stored.

    SQLite gets SQLAlchemy's batched executemany. PostgreSQL gets the rows as one JSON
    document, read back with json_to_recordset in the rows' order: rows spelled out as
    VALUES make psycopg parse megabytes of SQL per batch (five times slower), and arrays
    per column cost twice the client CPU. Values go through the columns' own bind
    processing first (a naive time is refused as before); JSON columns are serialized
    as SQLAlchemy does by default (json.dumps, None as the JSON null).
    """
    if not _is_postgresql(session):
        stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=key)
        if returning:
            return session.execute(stmt.returning(*returning), rows).all()
        session.execute(stmt, rows)
        return []
    dialect = session.get_bind().dialect
    quote = dialect.identifier_preparer.quote
    names = list(rows[0])
    processors = {}
    definitions, selected = [], []
    for name in names:
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            processors[name] = json.dumps
            definitions.append(f"{quote(name)} TEXT")
            selected.append(f"CAST(new.{quote(name)} AS JSON)")
            continue
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
        definitions.append(f"{quote(name)} {column_type.compile(dialect=dialect)}")
        selected.append(f"new.{quote(name)}")
    if processors:
        rows = [
            {**row, **{name: process(row[name]) for name, process in processors.items()}}
            for row in rows
        ]
    columns = ", ".join(quote(name) for name in names)
    new_rows = (
        f"ROWS FROM (json_to_recordset(CAST(:rows AS JSON)) AS ({', '.join(definitions)}))"
        f" WITH ORDINALITY AS new({columns}, ord)"
    )
    # Only the table's own names, quoted, go into the text; the rows are one parameter.
    sql = (
        f"INSERT INTO {quote(table.name)} ({columns}) SELECT {', '.join(selected)}"  # noqa: S608
        f" FROM {new_rows} ORDER BY new.ord"
        f" ON CONFLICT ({', '.join(quote(k) for k in key)}) DO NOTHING"
    )
    document = json.dumps(rows, default=_json_time)
    if returning:
        sql += f" RETURNING {', '.join(quote(c.name) for c in returning)}"
        stmt = text(sql).columns(*returning)
        return session.execute(stmt, {"rows": document}).all()
    session.execute(text(sql), {"rows": document})
    return []


def _json_time(value: Any) -> str:
    """A time in the JSON document of rows: ISO 8601 with its offset, to the microsecond."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


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


def ingest(
    session: Session, mentions: list[social_mention.Mention], source: Source | None = None
) -> IngestResult:
    """Score and store mentions once each, then attach the new ones to contacts.

    A mention already stored (same network and external id, from this source or another)
    is counted as a duplicate and left as it is. The caller commits: together with the
    source's cursor, so a crash stores nothing and a retry stores everything once.

    The authors are looked up before storing, so a new mention goes in with its contact
    and the timeline entries follow in one statement; a duplicate is left untouched.
    """
    if not mentions:
        return IngestResult([], 0, 0)
    scores = sentiment.score([m.text for m in mentions], [m.language for m in mentions])
    now = utcnow()
    source_id = source.id if source else None
    rows = []
    for m, s in zip(mentions, scores, strict=True):
        rows.append(
            {
                "network": m.network,
                "external_id": m.external_id,
                "source_id": source_id,
                "author_handle": handle_key(m.network, m.author_handle)[:320],
                "author_name": (m.author_name or "")[:200],
                "author_followers": m.author_followers,
                "author_id": m.author_id,
                "text": m.text,
                "url": m.url,
                "posted_at": m.created_at,
                "fetched_at": now,
                "in_reply_to": m.in_reply_to,
                "language": m.language,
                "extra": m.extra or {},
                "compound": s.compound,
                "pos": s.pos,
                "neu": s.neu,
                "neg": s.neg,
                "label": s.label,
                "sentiment_status": s.status,
                "contact_id": None,
            }
        )
    owners = _owners(session, _wanted(rows))
    if owners:
        for row in rows:
            row["contact_id"] = _owner(
                owners, row["network"], row["author_handle"], row["author_id"]
            )
    table = Mention.__table__
    inserted = _insert_new(
        session,
        table,
        rows,
        ["network", "external_id"],
        (table.c.id, table.c.contact_id, table.c.posted_at),
    )
    entries = [
        _timeline_entry(mention_id, contact_id, posted_at)
        for mention_id, contact_id, posted_at in inserted
        if contact_id
    ]
    if entries:
        _insert_new(session, Activity.__table__, entries, ["mention_id"])
    if source is not None:
        source.mentions_stored += len(inserted)
    return IngestResult([row[0] for row in inserted], len(rows) - len(inserted), len(entries))


def _wanted(rows: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
    """The (network, handle) keys that may name the authors: handle, and id where given."""
    wanted = set()
    for row in rows:
        network = row["network"]
        if network in MATCHABLE:
            wanted.add((network, row["author_handle"]))
            if row["author_id"]:
                wanted.add((network, row["author_id"].lower()))
    return wanted


def _owners(session: Session, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The live contact owning each wanted (network, handle) that has one: a list of
    handles per network (an OR per key outgrows SQLite's parser); on SQLite one query per
    _LOOKUP_CHUNK keys, on PostgreSQL one query, with an array per network."""
    owners: dict[tuple[str, str], int] = {}
    keys = sorted(wanted)
    chunk = max(len(keys), 1) if _is_postgresql(session) else _LOOKUP_CHUNK
    for start in range(0, len(keys), chunk):
        by_network: dict[str, list[str]] = {}
        for network, handle in keys[start : start + chunk]:
            by_network.setdefault(network, []).append(handle)
        found = session.execute(
            select(ContactHandle.network, ContactHandle.handle, ContactHandle.contact_id)
            .join(Contact)
            .where(
                Contact.deleted_at.is_(None),
                or_(
                    *(
                        and_(ContactHandle.network == n, _among(session, ContactHandle.handle, hs))
                        for n, hs in by_network.items()
                    )
                ),
            )
        )
        owners.update({(n, h): c for n, h, c in found})
    return owners


def _among(session: Session, column, values: list[str]):
    """column IN values; on PostgreSQL = ANY(one array), which psycopg need not parse."""
    if _is_postgresql(session):
        return column == any_(cast(bindparam(None, values, type_=ARRAY(Text)), ARRAY(Text)))
    return column.in_(values)


def _owner(
    owners: dict[tuple[str, str], int], network: str, handle: str, author_id: str | None
) -> int | None:
    """The contact whose handle is the author's, else whose handle is the author's id."""
    contact_id = owners.get((network, handle)) or (
        author_id and owners.get((network, author_id.lower()))
    )
    return contact_id or None


def match_and_attach(session: Session, mention_ids: list[int]) -> int:
    """Attach unmatched mentions whose author is a contact's handle; return how many."""
    if not mention_ids:
        return 0
    mentions = session.scalars(
        select(Mention).where(
            Mention.id.in_(mention_ids),
            Mention.contact_id.is_(None),
            Mention.network.in_(MATCHABLE),
        )
    ).all()
    if not mentions:
        return 0
    owners = _owners(
        session,
        _wanted(
            {"network": m.network, "author_handle": m.author_handle, "author_id": m.author_id}
            for m in mentions
        ),
    )
    attached = 0
    for m in mentions:
        contact_id = _owner(owners, m.network, m.author_handle, m.author_id)
        if contact_id:
            _attach(session, m, contact_id, None)
            attached += 1
    return attached


def _timeline_entry(mention_id: int, contact_id: int, occurred_at: datetime) -> dict[str, Any]:
    """The activity row that puts a mention on a contact's timeline."""
    return {
        "uuid": str(uuid.uuid5(_TIMELINE_NS, f"mention:{mention_id}")),
        "contact_id": contact_id,
        "author_id": None,
        "kind": MENTION_KIND,
        "body": "",
        "occurred_at": occurred_at,
        "created_at": utcnow(),
        "mention_id": mention_id,
    }


def _attach(session: Session, mention: Mention, contact_id: int, by: User | None) -> None:
    mention.contact_id = contact_id
    mention.matched_by_id = by.id if by else None
    session.execute(
        _insert(session, Activity)
        .values(**_timeline_entry(mention.id, contact_id, mention.posted_at))
        .on_conflict_do_nothing(index_elements=["mention_id"])
    )


def get_mention(session: Session, user: User, mention_id: int) -> Mention:
    """A mention the user may see. :raise NotFoundError:"""
    require(user, "mention.view")
    mention = session.get(Mention, mention_id)
    if mention is None:
        raise NotFoundError(f"mention {mention_id}")
    return mention


def link(session: Session, user: User, mention: Mention, contact: Contact) -> None:
    """Put a mention on a contact's timeline by hand (moving it if it was elsewhere)."""
    require(user, "mention.triage")
    unlink(session, user, mention)
    session.flush()
    _attach(session, mention, contact.id, user)


def unlink(session: Session, user: User, mention: Mention) -> None:
    """Take a mention off the timeline it is on; it stays in the inbox, unmatched."""
    require(user, "mention.triage")
    session.query(Activity).filter(Activity.mention_id == mention.id).delete()
    mention.contact_id = None
    mention.matched_by_id = None


def suggestions(session: Session, mention: Mention, limit: int = 5) -> list[Contact]:
    """Contacts that may be this mention's author, most similar name first."""
    name = (mention.author_name or "").lower()
    local = mention.author_handle.split("@")[0].replace("_", " ").replace(".", " ")
    words = {w for w in (name + " " + local).split() if len(w) >= 3}
    if not words:
        return []
    candidates = session.scalars(
        select(Contact)
        .where(
            Contact.deleted_at.is_(None),
            or_(*(Contact.sort_name.like(f"%{w}%") for w in list(words)[:6])),
        )
        .limit(300)
    ).all()
    target = name or local

    def similarity(contact: Contact) -> float:
        return SequenceMatcher(None, target, contact.sort_name).ratio()

    return sorted(candidates, key=similarity, reverse=True)[:limit]


@dataclass
class MentionPage:
    mentions: list[Mention]
    next_before: int | None


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
        stmt = stmt.where(Mention.network == network)
    if label == "unscored":
        stmt = stmt.where(Mention.label.is_(None))
    elif label:
        stmt = stmt.where(Mention.label == label)
    if matched is True:
        stmt = stmt.where(Mention.contact_id.is_not(None))
    elif matched is False:
        stmt = stmt.where(Mention.contact_id.is_(None))
    if before:
        last = session.get(Mention, before)
        if last is not None:
            stmt = stmt.where(tuple_(Mention.posted_at, Mention.id) < (last.posted_at, last.id))
    stmt = stmt.order_by(Mention.posted_at.desc(), Mention.id.desc()).limit(limit + 1)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return MentionPage(rows, rows[-1].id if more else None)


def create_contact_from(session: Session, user: User, mention: Mention) -> Contact:
    """A new contact for the mention's author, with the handle, and the mention linked.

    :raise ValidationError: the handle belongs to a contact already, or bad data.
    """
    require(user, "mention.triage")
    require(user, "contact.create")
    from webapp.services.contacts import create_contact

    data: dict[str, str | None] = {"name": mention.author_name or mention.author_handle}
    if mention.network in MATCHABLE:
        data[f"handle_{mention.network}"] = mention.author_handle
    contact = create_contact(session, user, data)
    _attach(session, mention, contact.id, user)
    return contact
