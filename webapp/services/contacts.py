"""Contacts: validation, create, edit, soft delete and undo, handles, and search."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from difflib import SequenceMatcher

from sqlalchemy import and_, bindparam, func, or_, select, text, tuple_
from sqlalchemy.orm import Session

from social import networks
from social.matching import normalize_handle
from webapp.models import Contact, ContactHandle, Mention, User
from webapp.models.base import utcnow
from webapp.services import mentions, once
from webapp.services.errors import NotFoundError, PermissionDenied, ValidationError
from webapp.services.permissions import can, require
from webapp.services.search_text import cjk_term, compose, fold, phone_query, sort_name_for
from webapp.services.values import like_escape

PAGE_SIZE = 50
FIELDS = ("name", "email", "phone", "company", "title", "address", "notes", "tags")
LIMITS = {
    "name": 200,
    "email": 254,
    "phone": 40,
    "company": 200,
    "title": 200,
    "address": 500,
    "notes": 5000,
    "tags": 500,
}
# An address as people have them: no characters that mean something in a mailto: link
# (? & # %), quotes or brackets, and a domain of dotted labels of letters, digits and
# hyphens (any script).
EMAIL_RE = re.compile(
    r"^[\w.!$'*+/=^`{|}~-]+@(?:[^\W_](?:[\w-]*[^\W_])?\.)+(?:[^\W\d_]{2,}|xn--[\w-]+)$"
)
_PHONE = re.compile(r"^\+?[0-9 ()./-]+((x|ext\.?)\s*[0-9]{1,6})?$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def digits(value: str | None) -> str:
    """Only the digits of value (how phone numbers are searched)."""
    return re.sub(r"\D", "", value or "")


def search_text_for(contact: Contact) -> str:
    """The folded text search looks in: name, company, job title, email, the phone
    number's digits in the forms people type it, and short CJK words
    (webapp.services.search_text)."""
    return compose([contact.name, contact.company, contact.title, contact.email], contact.phone)


def _clean(data: dict[str, str | None]) -> tuple[dict[str, str | None], dict[str, str]]:
    """Trim and check the contact fields; return (values, errors by field)."""
    values: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for field in FIELDS:
        raw = data.get(field)
        value = (raw or "").strip()
        if _CONTROL.search(value):
            errors[field] = "Remove the control characters."
        elif len(value) > LIMITS[field]:
            errors[field] = f"At most {LIMITS[field]} characters (this has {len(value)})."
        elif field != "notes":
            value = " ".join(value.split())
        values[field] = value or None

    if not values["name"] and "name" not in errors:
        errors["name"] = "Enter a name."
    email = values["email"]
    if email and "email" not in errors:
        if not EMAIL_RE.match(email):
            errors["email"] = "Enter an email address like name@example.com."
        else:
            values["email"] = email.lower()
    phone = values["phone"]
    if phone and "phone" not in errors and (not _PHONE.match(phone) or len(digits(phone)) < 3):
        errors["phone"] = "Enter a phone number: digits, spaces, + ( ) - and an optional ext."
    tags = values["tags"]
    if tags and "tags" not in errors:
        seen: list[str] = []
        for tag in (t.strip().lower() for t in tags.split(",")):
            if tag and tag not in seen:
                seen.append(tag)
        if any(len(t) > 40 for t in seen):
            errors["tags"] = "Each tag is at most 40 characters."
        elif len(seen) > 20:
            errors["tags"] = "At most 20 tags."
        values["tags"] = ",".join(seen) or None
    return values, errors


def _clean_handles(
    session: Session, data: dict[str, str | None], contact_id: int | None
) -> tuple[dict[str, str], dict[str, str]]:
    """Normalize the handle fields (handle_x, handle_mastodon, …); check none is taken."""
    handles: dict[str, str] = {}
    errors: dict[str, str] = {}
    for network in networks.HANDLE_NETWORKS:
        raw = (data.get(f"handle_{network}") or "").strip()
        if not raw:
            continue
        try:
            handles[network] = normalize_handle(network, raw)
        except ValueError as exc:
            errors[f"handle_{network}"] = str(exc)
    if handles:
        taken = session.execute(
            select(ContactHandle.network, Contact.name)
            .join(Contact)
            .where(
                or_(
                    *(
                        and_(ContactHandle.network == n, ContactHandle.handle == h)
                        for n, h in handles.items()
                    )
                ),
                ContactHandle.contact_id != (contact_id or 0),
            )
        ).all()
        for network, name in taken:
            label = networks.label(network)
            errors[f"handle_{network}"] = f"This {label} handle already belongs to {name}."
    return handles, errors


def _apply(contact: Contact, values: dict[str, str | None]) -> None:
    for field, value in values.items():
        setattr(contact, field, value)
    contact.sort_name = sort_name_for(contact.name)
    contact.search_text = search_text_for(contact)


def _set_handles(contact: Contact, handles: dict[str, str]) -> bool:
    """Make the contact's handles these; True if one was added or changed."""
    current = {h.network: h for h in contact.handles}
    gained = False
    for network in networks.HANDLE_NETWORKS:
        wanted = handles.get(network)
        existing = current.get(network)
        if wanted and existing:
            gained = gained or existing.handle != wanted
            existing.handle = wanted
        elif wanted:
            contact.handles.append(ContactHandle(network=network, handle=wanted))
            gained = True
        elif existing:
            contact.handles.remove(existing)
    return gained


def create_from_mention(session: Session, user: User, mention: Mention) -> Contact:
    """A new contact for a mention's author, with the author's handle, and the mention
    on its timeline; support staff may do this too (the role table says so).

    :raise ValidationError: the handle belongs to a contact already, or bad data.
    """
    require(user, "mention.create_contact")
    data: dict[str, str | None] = {"name": mention.author_name or mention.author_handle}
    if mention.network in networks.HANDLE_NETWORKS:
        data[f"handle_{mention.network}"] = mention.author_handle
    contact = _create(session, user, data)
    mentions.attach_by_hand(session, user, mention, contact.id)
    return contact


def get_contact(session: Session, user: User, contact_id: int) -> Contact:
    """Return a live contact the user may see. :raise NotFoundError: unknown or deleted."""
    contact = session.get(Contact, contact_id)
    if contact is None or contact.deleted_at is not None:
        raise NotFoundError(f"contact {contact_id}")
    require(user, "contact.view", contact)
    return contact


def create_contact(session: Session, user: User, data: dict[str, str | None]) -> Contact:
    """Create a contact owned by user. :raise ValidationError: with a message per field."""
    require(user, "contact.create")
    return _create(session, user, data)


def _create(session: Session, user: User, data: dict[str, str | None]) -> Contact:
    values, errors = _clean(data)
    handles, handle_errors = _clean_handles(session, data, None)
    errors.update(handle_errors)
    if errors:
        raise ValidationError(errors)
    contact = Contact(owner_id=user.id)
    _apply(contact, values)
    gained = _set_handles(contact, handles)
    session.add(contact)
    session.flush()
    if gained:
        mentions.attach_authored(session, contact)
    return contact


class PossibleDuplicate(ValidationError):
    """A new contact's email or phone is an existing contact's: matches are those."""

    def __init__(self, errors: dict[str, str], matches: list[Contact]):
        super().__init__(errors)
        self.matches = matches


def _same_phone(a: str | None, b: str | None) -> bool:
    """Whether two numbers are one: the same last nine digits (a trunk 0 or a country
    code in front aside), or the same digits when they are shorter."""
    da, db_ = digits(a), digits(b)
    if len(da) < 7 or len(db_) < 7:
        return False
    return da[-9:] == db_[-9:]


def duplicates(session: Session, email: str | None, phone: str | None) -> list[Contact]:
    """Live contacts with this email, or this phone number (found through the search
    index, then compared)."""
    found: list[Contact] = []
    for term, same in (
        ((email or "").lower(), lambda c: (c.email or "").lower() == (email or "").lower()),
        (digits(phone)[-9:], lambda c: _same_phone(c.phone, phone)),
    ):
        if len(term) < 7:
            continue
        candidates = session.scalars(
            select(Contact)
            .where(Contact.deleted_at.is_(None), _substring_filter(session, term))
            .limit(20)
        )
        found += [c for c in candidates if same(c) and c not in found]
    return found


def add_contact(
    session: Session,
    user: User,
    data: dict[str, str | None],
    form_key: str | None,
    duplicates_ok: bool = False,
) -> tuple[Contact, bool]:
    """Create a contact from the add form, once per form key; (contact, created).

    :raise PossibleDuplicate: another contact has this email or phone, unless
        duplicates_ok. :raise ValidationError: with a message per field.
    """
    require(user, "contact.create")
    earlier = once.claim(session, user, form_key, "contact")
    if earlier is not None:
        return get_contact(session, user, earlier), False
    if not duplicates_ok:
        values, errors = _clean(data)
        matches = [] if errors else duplicates(session, values["email"], values["phone"])
        if matches:
            fields = {}
            for c in matches:
                if values["email"] and (c.email or "").lower() == values["email"]:
                    fields["email"] = f"{c.name} has this email already."
                if values["phone"] and _same_phone(c.phone, values["phone"]):
                    fields["phone"] = f"{c.name} has this phone number already."
            raise PossibleDuplicate(fields, matches)
    contact = create_contact(session, user, data)
    once.made(session, form_key or "", contact.id)
    return contact, True


def update_contact(
    session: Session, user: User, contact: Contact, data: dict[str, str | None]
) -> Contact:
    """Change a contact's fields and handles, as far as user's role allows.

    Support staff may change only the handles; everything else needs edit rights.
    """
    may_edit = can(user, "contact.edit", contact)
    if not may_edit and not can(user, "contact.edit_handles", contact):
        raise PermissionDenied("contact.edit")
    errors: dict[str, str] = {}
    values: dict[str, str | None] = {}
    if may_edit:
        values, errors = _clean(data)
    handles, handle_errors = _clean_handles(session, data, contact.id)
    errors.update(handle_errors)
    if errors:
        raise ValidationError(errors)
    if may_edit:
        _apply(contact, values)
    gained = _set_handles(contact, handles)
    session.flush()
    if gained:
        mentions.attach_authored(session, contact)
    return contact


def delete_contact(session: Session, user: User, contact: Contact) -> None:
    """Soft-delete: the contact disappears from lists and search until restored."""
    require(user, "contact.delete", contact)
    contact.deleted_at = utcnow()
    session.flush()


def restore_contact(
    session: Session, user: User, contact_id: int, undo_window: timedelta
) -> Contact:
    """Undo a soft delete made less than undo_window ago.

    :raise NotFoundError: unknown, not deleted, or deleted too long ago.
    """
    contact = session.get(Contact, contact_id)
    if contact is None or contact.deleted_at is None:
        raise NotFoundError(f"deleted contact {contact_id}")
    require(user, "contact.delete", contact)
    if utcnow() - contact.deleted_at > undo_window:
        raise NotFoundError(f"deleted contact {contact_id} is past its undo window")
    contact.deleted_at = None
    session.flush()
    return contact


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


def _substring_filter(session: Session, term: str, walk: bool = False):
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
    filters = [_substring_filter(session, t, walk) for t in long_terms]
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
    conditions = [and_(*(_substring_filter(session, w) for w in searchable))] if searchable else []
    if surname:
        conditions.append(_substring_filter(session, surname))
    if len(handle) >= 3:
        conditions.append(_substring_filter(session, f"{handle}@"))
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


def deleted_since(session: Session, cutoff: datetime) -> list[int]:
    """Ids of contacts soft-deleted before cutoff (for the purge job)."""
    return list(
        session.scalars(
            select(Contact.id).where(Contact.deleted_at.is_not(None), Contact.deleted_at < cutoff)
        )
    )
