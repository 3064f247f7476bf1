"""Finding contacts: the searchable list in name order (keyset pages, a bounded walk of
the name index for common terms, the trigram index for the rest) and the contacts a
social mention's author may be."""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

from sqlalchemy import and_, bindparam, func, or_, select, text, tuple_
from sqlalchemy.orm import Session

from social import networks
from webapp.models import Contact, ContactHandle, Mention, User
from webapp.services.permissions import require
from webapp.services.search_text import cjk_term, fold, phone_query
from webapp.services.values import like_escape

PAGE_SIZE = 50


@dataclass
class ContactPage:
    contacts: list[Contact]
    next_after: int | None


def _terms(query: str) -> list[str]:
    """Split a folded search into terms; a phone-looking query becomes one string of
    digits, and a CJK term of one or two characters the space-bounded word stored for it."""
    query = fold(query).strip()
    number = phone_query(query)
    if number is not None:
        return [number]
    return [cjk_term(t) or t for t in query.split()][:8]


def substring_filter(session: Session, term: str, walk: bool = False):
    """A term of three characters or more, anywhere in the search text, through the
    trigram index (FTS5 on SQLite, pg_trgm on PostgreSQL).

    walk: the same test as a plain function no index answers, so that the plan (even
    PostgreSQL's generic plan for a prepared statement) is the walk along the name index.
    """
    sqlite = session.get_bind().dialect.name == "sqlite"
    if walk:
        return (func.instr if sqlite else func.strpos)(Contact.search_text, term) > 0
    if not sqlite:
        return Contact.search_text.like(f"%{like_escape(term)}%", escape="\\")
    phrase = '"' + term.replace('"', '""') + '"'
    return Contact.id.in_(
        select(text("rowid"))
        .select_from(text("contacts_fts"))
        .where(
            text("contacts_fts MATCH :phrase").bindparams(bindparam("phrase", phrase, unique=True))
        )
    )


def _word_prefix_filter(term: str):
    """A short term (one or two characters) as the start of any word."""
    escaped = like_escape(term)
    return or_(
        Contact.search_text.like(f"{escaped}%", escape="\\"),
        Contact.search_text.like(f"% {escaped}%", escape="\\"),
    )


def _search_filters(session: Session, query: str, walk: bool = False) -> list:
    """WHERE clauses for a search: every term must match.

    Terms of three characters or more (short CJK terms among them, with their spaces)
    go through the trigram index. Shorter ones match the start of a word; when the whole
    search is short, the first term is matched as the start of the (folded) name, which
    the name index answers.
    """
    terms = _terms(query)
    long_terms = [t for t in terms if len(t) >= 3]
    short_terms = [t for t in terms if len(t) < 3]
    filters = [substring_filter(session, t, walk) for t in long_terms]
    if short_terms and not long_terms:
        first = short_terms.pop(0)
        filters.append(and_(Contact.sort_name >= first, Contact.sort_name < first + "\uffff"))
    filters += [_word_prefix_filter(t) for t in short_terms]
    return filters


def list_contacts(
    session: Session,
    user: User,
    query: str = "",
    after: int | None = None,
    mine: bool = False,
    limit: int = PAGE_SIZE,
) -> ContactPage:
    """A page of live contacts in name order, filtered by search terms (all must match).

    after is the id of the last contact of the previous page (keyset pagination).
    """
    require(user, "contact.view")
    where = [Contact.deleted_at.is_(None)]
    if mine:
        where.append(Contact.owner_id == user.id)
    cursor = []
    if after is not None:
        last = session.get(Contact, after)
        if last is not None:
            cursor.append(tuple_(Contact.sort_name, Contact.id) > (last.sort_name, last.id))
    rows = None
    if _walk_first(session, query, limit):
        rows = _walk_page(session, query, where + cursor, cursor, limit)
    if rows is None:
        rows = _index_page(session, query, where + cursor, limit)
    more = len(rows) > limit
    rows = rows[:limit]
    return ContactPage(rows, rows[-1].id if more else None)


# Back to a long list reloads it as far as it was scrolled, but no further than this.
THROUGH_PAGES = 10


def list_through(session: Session, user: User, query: str, mine: bool, through: int) -> ContactPage:
    """The list from its start up to and including the contact with id through (as far
    as a phone had scrolled before it went Back to the list), at most THROUGH_PAGES."""
    rows: list[Contact] = []
    after = None
    for _ in range(THROUGH_PAGES):
        page = list_contacts(session, user, query, after=after, mine=mine)
        rows += page.contacts
        if page.next_after is None or any(c.id == through for c in page.contacts):
            return ContactPage(rows, page.next_after)
        after = page.next_after
    return ContactPage(rows, after)


def _page(session: Session, where: list, limit: int) -> list[Contact]:
    stmt = select(Contact).where(*where).order_by(Contact.sort_name, Contact.id)
    return list(session.scalars(stmt.limit(limit + 1)))


# A search term found in thousands of contacts makes the trigram index fetch and sort
# every match (at 100k contacts on SQLite, 17 ms for a term in 10% of them, 70 ms for
# one in 90%); walking the name index in order and testing each row fills the page
# within a few hundred rows. But the walk is slow when the matches all sort late: a
# first name ("olivia") sits in one stretch of the name order, and PostgreSQL, which
# picks the walk from its estimate of how common the term is, spent 65 ms walking
# 73,000 rows for it. So the walk is bounded to WALK_ROWS rows, and a walk that
# finds too few matches hands over to the index. SQLite walks only once FTS5 has
# said the term is common, so its walk may be longer; PostgreSQL tries the walk
# first every time, so a fruitless one must stay short.
WALK_ROWS = {"sqlite": 5000, "postgresql": 2000}


def _long_terms(query: str) -> list[str]:
    return [t for t in _terms(query) if len(t) >= 3]


def _walk_first(session: Session, query: str, limit: int) -> bool:
    """Whether to try the bounded walk before the trigram index.

    PostgreSQL: always, for a search with a long term (about a millisecond when it
    does not pay). SQLite: when FTS5 says the long terms match so many contacts that
    its WALK_ROWS rows of the name order should hold the page twice over.
    """
    long_terms = _long_terms(query)
    if not long_terms:
        return False
    if session.get_bind().dialect.name != "sqlite":
        return True
    rows = session.scalar(select(func.max(Contact.id))) or 0
    need = max(limit + 1, rows * (limit + 1) * 2 // WALK_ROWS["sqlite"])
    phrases = " AND ".join('"' + t.replace('"', '""') + '"' for t in long_terms)
    found = session.scalar(
        text(
            "SELECT count(*) FROM (SELECT rowid FROM contacts_fts"
            " WHERE contacts_fts MATCH :phrases LIMIT :need)"
        ),
        {"phrases": phrases, "need": need},
    )
    return found >= need


def _index_page(session: Session, query: str, where: list, limit: int) -> list[Contact]:
    """The page through the indexes: FTS5 or pg_trgm for the long terms, the name
    index for the rest."""
    filters = _search_filters(session, query)
    if session.get_bind().dialect.name == "sqlite" or not _long_terms(query):
        return _page(session, where + filters, limit)
    # PostgreSQL: fenced off from the ORDER BY ... LIMIT, the filter is planned on its
    # own (the trigram index), and only its matches are sorted.
    hits = (
        select(Contact.id, Contact.sort_name)
        .where(*where, *filters)
        .cte("hits")
        .prefix_with("MATERIALIZED")
    )
    top = select(hits.c.id).order_by(hits.c.sort_name, hits.c.id).limit(limit + 1)
    stmt = select(Contact).where(Contact.id.in_(top)).order_by(Contact.sort_name, Contact.id)
    return list(session.scalars(stmt))


def _walk_page(
    session: Session, query: str, where: list, cursor: list, limit: int
) -> list[Contact] | None:
    """The page found by walking at most WALK_ROWS rows of the name order from the
    cursor; None when they hold too few matches to know the page."""
    walk_rows = WALK_ROWS.get(session.get_bind().dialect.name, 2000)
    bound = session.execute(
        select(Contact.sort_name, Contact.id)
        .where(*cursor)
        .order_by(Contact.sort_name, Contact.id)
        .offset(walk_rows)
        .limit(1)
    ).first()
    window = [] if bound is None else [tuple_(Contact.sort_name, Contact.id) <= tuple(bound)]
    rows = _page(session, where + window + _search_filters(session, query, walk=True), limit)
    if len(rows) > limit or bound is None:
        return rows
    return None


def _words(text: str) -> list[str]:
    """The words of a name, folded as search folds them, without punctuation."""
    return [w for w in re.split(r"[\W_]+", fold(text)) if w]


def _handle_name(handle: str) -> str:
    """The name part of a handle: before "@" (Mastodon), or the first label (Bluesky)."""
    return fold(handle.lstrip("@").split("@")[0].split(".")[0])


def suggestions(session: Session, mention: Mention, limit: int = 5) -> list[Contact]:
    """Contacts who may be the mention's author: every word of the author's name starts
    a word of the contact's name ("Sam Beans" finds "Samuel Beans", not every Samuel),
    or the author's last name is one of the contact's ("Maggie Holloway" finds
    "Margaret Holloway"), or the author's handle is the name part of the contact's email
    or of their handle on another network. Closest name first."""
    name_words = [w for w in _words(mention.author_name or "") if len(w) >= 2]
    handle = _handle_name(mention.author_handle)
    surname = name_words[-1] if len(name_words) > 1 and len(name_words[-1]) >= 3 else None
    # Through the indexes: the search text (names and emails) and the handles.
    searchable = [w for w in name_words if len(w) >= 3][:4]
    conditions = [and_(*(substring_filter(session, w) for w in searchable))] if searchable else []
    if surname:
        conditions.append(substring_filter(session, surname))
    if len(handle) >= 3:
        conditions.append(substring_filter(session, f"{handle}@"))
        conditions.append(
            Contact.id.in_(
                select(ContactHandle.contact_id).where(
                    ContactHandle.network.in_(networks.HANDLE_NETWORKS),
                    ContactHandle.handle >= handle,
                    ContactHandle.handle < handle + "\uffff",
                )
            )
        )
    if not conditions:
        return []
    candidates = session.scalars(
        select(Contact).where(Contact.deleted_at.is_(None), or_(*conditions)).limit(300)
    ).all()

    def fits(contact: Contact) -> bool:
        words = _words(contact.name)
        if name_words and all(any(x.startswith(w) for x in words) for w in name_words):
            return True
        if surname and surname in words:
            return True
        if contact.email and contact.email.split("@")[0].casefold() == handle:
            return True
        return any(_handle_name(h.handle) == handle for h in contact.handles)

    target = " ".join(name_words) or handle
    found = [c for c in candidates if c.id != mention.contact_id and fits(c)]
    found.sort(key=lambda c: SequenceMatcher(None, target, c.sort_name).ratio(), reverse=True)
    return found[:limit]
