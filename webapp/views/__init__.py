"""Blueprints, one per area: parse, authorize, call a service, render."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, request


def client_address() -> str:
    """The client's address, as the WSGI server (or a trusted proxy setup) reports it."""
    return request.remote_addr or "unknown"


def safe_next(target: str | None, default: str) -> str:
    """Return target if it is a path on this site, else default (no open redirects)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target


def form_data(*fields: str) -> dict[str, str | None]:
    """The named fields of the submitted form, as the services take them."""
    return {f: request.form.get(f) for f in fields}


def counted(n: int, one: str, many: str | None = None) -> str:
    """n and the word for n of them: "1 item", "3 items"."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def undo_flash(text: str, action: str, **fields: object) -> None:
    """A message with an Undo button that posts fields to action."""
    flash({"text": text, "action": action, "fields": fields}, "undo")


# Where each role starts: the page its people open the app for.
HOMES = {"support": "inbox.index", "rep": "today.index", "manager": "today.index"}


def home_for(user) -> str:
    """The endpoint a signed-in user lands on."""
    return HOMES.get(getattr(user, "role", None), "contacts.index")
