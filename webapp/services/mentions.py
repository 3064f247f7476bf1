"""Mentions: storing them exactly once, scored and with the contact who wrote them,
putting them on contacts' timelines, linking them by hand, and listing the inbox.

The statements that store a batch are built by webapp.services.bulk; what goes in them
(the columns, the matching of authors to contacts, the timeline entries) is here."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import ColumnElement, UnaryExpression

from social import mention as social_mention
from social import sentiment
from social.matching import normalize_handle
from social.networks import HANDLE_NETWORKS
from social.text import storable
from webapp.models import Activity, Contact, Mention, Source, User
from webapp.models.activities import MENTION_KIND
from webapp.models.base import utcnow
from webapp.services import bulk, lexicon, sla, triage
from webapp.services.errors import NotFoundError
from webapp.services.permissions import require

PAGE_SIZE = 30
# Timeline entries of mentions get a UUID derived from the mention: attaching the same
# mention twice can never add a second entry.
_TIMELINE_NS = uuid.UUID("6f0c1e0a-5d55-4a2b-9a77-1d9b3f6c2a10")

# The live contact whose handle on the mention's network is the author's handle, else
# the author's id: looked up by the database while it inserts, in the same statement.
_CONTACT_WITH_HANDLE = (
    "SELECT h.contact_id FROM contact_handles AS h JOIN contacts AS c ON c.id = h.contact_id"
    " WHERE h.network = new.network AND h.handle = new.{key} AND c.deleted_at IS NULL"
)
# A mention as ingest stores it, in the order of its row tuples; after them, the
# author's id as a handle key (Bluesky contacts may hold the author's DID), which the
# matching reads and nothing stores.
_MENTIONS = bulk.Target(
    Mention.__table__,
    names=tuple(
        "network external_id source_id author_handle author_name author_followers author_id"
        " text url posted_at fetched_at in_reply_to language extra"
        " compound pos neu neg label sentiment_status priority priority_parts"
        " first_response_due resolution_due".split()
    ),
    key=("network", "external_id"),
    returning=("id", "contact_id"),
    lookups=("author_key",),
    computed={
        "contact_id": f"coalesce(({_CONTACT_WITH_HANDLE.format(key='author_handle')}),"
        f" ({_CONTACT_WITH_HANDLE.format(key='author_key')}))"
    },
)
# The extra of a mention that has none: one object, so a batch serializes it once.
_NO_EXTRA: dict[str, Any] = {}
# A timeline entry of a mention: its contact and time are the stored mention's.
_TIMELINE = bulk.Target(
    Activity.__table__,
    names=("uuid", "kind", "body", "created_at", "mention_id"),
    key=("mention_id",),
    computed={
        "contact_id": "SELECT m.contact_id FROM mentions AS m WHERE m.id = new.mention_id",
        "occurred_at": "SELECT m.posted_at FROM mentions AS m WHERE m.id = new.mention_id",
    },
)


def _is_postgresql(session: Session) -> bool:
    """Whether the session's database is PostgreSQL."""
    return session.get_bind().dialect.name == "postgresql"


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
    """What ingest made of a batch: the ids stored, the duplicates, the attached."""

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
    inserts the mentions, and the timeline entries of the new ones follow (on
    PostgreSQL by chunks, each stored while the next is scored).
    """
    if not mentions:
        return IngestResult([], 0, 0)
    connection = session.connection()
    batch = _Batch(connection, source.id if source else None)
    # The service-level targets count from when the mentions reach us: the same for
    # the whole batch.
    batch.due = sla.targets(sla.active_policy(session), batch.now)
    # Admins' lexicon rules apply to what is scored from their time on.
    batch.overrides = lexicon.in_force(session, batch.now)
    inserted = bulk.insert_batch(connection, mentions, batch.mentions_insert, batch.timeline_insert)
    stored = [mention_id for mention_id, _ in inserted]
    if source is not None:
        source.mentions_stored += len(stored)
    triage.after_ingest(session, inserted)
    return IngestResult(stored, len(mentions) - len(stored), batch.attached)


def _timeline_insert(connection: Connection, mention_ids: list[int], now: datetime) -> bulk.Insert:
    """The timeline entries of these mentions, each on the timeline of the contact the
    mention has, at its time (entries already there are left alone)."""
    return bulk.insert_new(
        connection,
        _TIMELINE,
        [
            (_timeline_uuid(mention_id), MENTION_KIND, "", now, mention_id)
            for mention_id in mention_ids
        ],
    )


def _timeline_uuid(mention_id: int) -> str:
    """The UUID of the mention's timeline entry, the same however often it is made."""
    return str(uuid.uuid5(_TIMELINE_NS, f"mention:{mention_id}"))


class _Batch:
    """The statements that store one batch of mentions, and how many they attached."""

    def __init__(self, connection: Connection, source_id: int | None):
        self.connection = connection
        self.source_id = source_id
        self.now = utcnow()
        self.attached = 0
        self.due: tuple[datetime | None, datetime | None] = (None, None)
        self.overrides: dict[str, float] = {}

    def mentions_insert(self, mentions: Sequence[social_mention.Mention]) -> bulk.Insert:
        """Score the mentions and make the insert of those not stored yet."""
        scores = sentiment.score(
            [m.text for m in mentions], [m.language for m in mentions], self.overrides or None
        )
        now, source_id = self.now, self.source_id
        first_due, resolution_due = self.due
        rows = []
        for m, s in zip(mentions, scores, strict=True):
            # The priority as far as the mention alone tells (its sentiment, its
            # author's reach, how long it has waited); the customer part follows once
            # the database has matched the author.
            made = triage.parts(s.compound, m.author_followers, now - m.created_at)
            rows.append(
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
                    sum(made.values()),
                    made,
                    first_due,
                    resolution_due,
                    m.author_id.lower() if m.author_id and m.network in HANDLE_NETWORKS else None,
                )
            )
        return bulk.insert_new(self.connection, _MENTIONS, rows)

    def timeline_insert(self, inserted: list[Any]) -> bulk.Insert:
        """The timeline entries of the stored mentions that have a contact."""
        ids = [mention_id for mention_id, contact_id in inserted if contact_id]
        self.attached += len(ids)
        return _timeline_insert(self.connection, ids, self.now)


def attach_authored(session: Session, contact: Contact) -> int:
    """Put on the contact's timeline the unmatched mentions its handles wrote (a Bluesky
    DID handle also matches the author's id); return how many. For when a contact gets
    a handle: the author's earlier mentions follow, not only the next ones."""
    keys = [(h.network, h.handle) for h in contact.handles if h.network in HANDLE_NETWORKS]
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
    _timeline_insert(connection, ids, utcnow()).run(connection)
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
    triage.reprioritize(session, [mention])
    return previous


def unlink(session: Session, user: User, mention: Mention) -> int | None:
    """Take a mention off the timeline it is on; it stays in the inbox, unmatched.
    Return the contact it was on, if any (for an undo)."""
    require(user, "mention.triage")
    previous = mention.contact_id
    session.query(Activity).filter(Activity.mention_id == mention.id).delete()
    mention.contact_id = None
    mention.matched_by_id = None
    triage.reprioritize(session, [mention])
    return previous


def attach_by_hand(session: Session, user: User, mention: Mention, contact_id: int) -> None:
    """Put a mention on the timeline of a contact just made from it, linked by user."""
    require(user, "mention.triage")
    _attach_all(session, [(mention, contact_id)], user)
    triage.reprioritize(session, [mention])


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
    # The page's contacts in one more statement, not one each as the rows show them.
    stmt = select(Mention).options(selectinload(Mention.contact))
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
