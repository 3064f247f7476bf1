"""Text from outside (posts, forms, JSON bodies): what no database can store, in words,
and how fetched text is made storable. One rule for ingest, the forms and the API."""

from __future__ import annotations


def unstorable(value: str) -> str | None:
    """Why no database would store value, or None: a NUL character (which PostgreSQL
    text refuses and SQLite's full-text search stops at) or half of a surrogate pair
    (which JSON can escape, as "\\ud83d" alone, but which is no UTF-8)."""
    if "\x00" in value:
        return "has a NUL character (\\u0000)"
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "has an unpaired surrogate escape (\\ud800-\\udfff)"
    return None


def storable(value: str) -> str:
    """value with what no database stores taken out: NUL characters dropped, halves of
    surrogate pairs replaced by U+FFFD. For text fetched from a network, where refusing
    the post would fail its poll again at every retry."""
    if value.isascii():
        return value.replace("\x00", "") if "\x00" in value else value
    value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value
