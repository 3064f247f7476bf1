"""What templates get beyond Flask's own: filters and globals, each defined once."""

from __future__ import annotations

from urllib.parse import quote

from flask import Flask


def mailto(address: str) -> str:
    """A mailto: link for address: everything a link could read as more than the
    address (?, &, #, %) is escaped, so no one can add recipients or a subject."""
    return "mailto:" + quote(address, safe="@+")


def init_app(app: Flask) -> None:
    """Register the filters and globals."""
    app.add_template_filter(mailto)
