"""The one place that decides whether a request gets a whole page or a fragment."""

from __future__ import annotations

from flask import Flask, render_template, request


def wants_fragment() -> bool:
    """True for an htmx request that will swap part of the page.

    Boosted navigation (HX-Request-Type: full) and history restores want the page.
    """
    if not request.htmx or request.htmx.history_restore_request:
        return False
    return request.headers.get("HX-Request-Type", "partial") == "partial"


def render(page_template: str, fragment_template: str, /, status: int = 200, **context):
    """Render the page, or only its fragment when htmx asks for one."""
    template = fragment_template if wants_fragment() else page_template
    return render_template(template, **context), status


def init_app(app: Flask) -> None:
    """Mark every response as varying by the htmx headers, so no cache mixes the two."""

    @app.after_request
    def vary_on_htmx(response):
        response.vary.add("HX-Request")
        response.vary.add("HX-Request-Type")
        return response
