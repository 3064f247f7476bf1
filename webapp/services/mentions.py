"""Mentions: storing them exactly once, scoring, attaching them to contacts' timelines,
and the lists, links and suggestions support staff work with."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from difflib import SequenceMatcher

from sqlalchemy import and_, or_, select, tuple_
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
# Timeline entries made by matching get a UUID derived from the mention: matching the
# same mention twice can never add a second entry.
_TIMELINE_NS = uuid.UUID("6f0c1e0a-5d55-4a2b-9a77-1d9b3f6c2a10")


def _insert(session: Session, table):
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


def handle_key(network: str, handle: str) -> str:
    """The handle as contact handles store it, or as given when it does not normalize."""
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
    """
    if not mentions:
        return IngestResult([], 0, 0)
    scores = sentiment.score([m.text for m in mentions], [m.language for m in mentions])
    now = utcnow()
    rows = []
    for m, s in zip(mentions, scores, strict=True):
        rows.append(
            {
                "network": m.network,
                "external_id": m.external_id,
                "source_id": source.id if source else None,
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
            }
        )
    stmt = (
        _insert(session, Mention)
        .on_conflict_do_nothing(index_elements=["network", "external_id"])
        .returning(Mention.id)
    )
    stored = list(session.scalars(stmt, rows))
    attached = match_and_attach(session, stored)
    if source is not None:
        source.mentions_stored += len(stored)
    return IngestResult(stored, len(rows) - len(stored), attached)


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
    wanted = {(m.network, m.author_handle) for m in mentions}
    wanted |= {(m.network, m.author_id.lower()) for m in mentions if m.author_id}
    found = session.execute(
        select(ContactHandle.network, ContactHandle.handle, ContactHandle.contact_id)
        .join(Contact)
        .where(
            Contact.deleted_at.is_(None),
            or_(*(and_(ContactHandle.network == n, ContactHandle.handle == h) for n, h in wanted)),
        )
    ).all()
    owners = {(n, h): c for n, h, c in found}
    attached = 0
    for m in mentions:
        contact_id = owners.get((m.network, m.author_handle)) or (
            m.author_id and owners.get((m.network, m.author_id.lower()))
        )
        if contact_id:
            _attach(session, m, contact_id, None)
            attached += 1
    return attached


def _attach(session: Session, mention: Mention, contact_id: int, by: User | None) -> None:
    mention.contact_id = contact_id
    mention.matched_by_id = by.id if by else None
    session.execute(
        _insert(session, Activity)
        .values(
            uuid=str(uuid.uuid5(_TIMELINE_NS, f"mention:{mention.id}")),
            contact_id=contact_id,
            author_id=None,
            kind=MENTION_KIND,
            body="",
            occurred_at=mention.posted_at,
            created_at=utcnow(),
            mention_id=mention.id,
        )
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
