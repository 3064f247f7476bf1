"""Contacts: validation, create, edit, soft delete and undo, handles, and search."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from social import networks
from social.matching import normalize_handle
from webapp.models import Contact, ContactHandle, Mention, User
from webapp.models.base import utcnow
from webapp.services import mentions, once
from webapp.services.contact_search import substring_filter
from webapp.services.errors import NotFoundError, PermissionDenied, ValidationError
from webapp.services.nearby import parse_point
from webapp.services.permissions import can, require
from webapp.services.search_text import compose, sort_name_for

FIELDS = ("name", "email", "phone", "company", "title", "address", "notes", "tags")
# Where the contact is (Nearby): decimal degrees, both or neither.
POSITION_FIELDS = ("latitude", "longitude")
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
    if any(f in data for f in POSITION_FIELDS):
        try:
            point = parse_point(data.get("latitude"), data.get("longitude"))
        except ValidationError as exc:
            errors.update(exc.errors)
        else:
            values["latitude"] = point.latitude if point else None  # type: ignore[assignment]
            values["longitude"] = point.longitude if point else None  # type: ignore[assignment]
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
    moved = any(f in values and values[f] != getattr(contact, f) for f in POSITION_FIELDS)
    for field, value in values.items():
        setattr(contact, field, value)
    if moved:
        contact.located_at = utcnow() if values.get("latitude") is not None else None
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
            .where(Contact.deleted_at.is_(None), substring_filter(session, term))
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


def deleted_since(session: Session, cutoff: datetime) -> list[int]:
    """Ids of contacts soft-deleted before cutoff (for the purge job)."""
    return list(
        session.scalars(
            select(Contact.id).where(Contact.deleted_at.is_not(None), Contact.deleted_at < cutoff)
        )
    )
