"""Error pages and the mapping of service exceptions to HTTP statuses."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from webapp.services.errors import NotFoundError, PermissionDenied

MESSAGES = {
    400: "That request could not be understood.",
    403: "You do not have access to this.",
    404: "There is nothing here. It may have been deleted.",
    405: "That action is not allowed here.",
    413: "That is too large.",
    429: "Too many attempts. Wait a little and try again.",
    500: "Something went wrong on our side. Try again in a moment.",
}


def _page(status: int, message: str | None = None):
    message = message or MESSAGES.get(status, "Something went wrong.")
    if request.accept_mimetypes.best == "application/json" or request.path.startswith("/api/"):
        return jsonify(error=message), status
    return render_template("errors/error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    """Register handlers so every error is a page with our headers, never a traceback."""

    @app.errorhandler(NotFoundError)
    def not_found(_exc):
        return _page(404)

    @app.errorhandler(PermissionDenied)
    def forbidden(_exc):
        return _page(403)

    @app.errorhandler(CSRFError)
    def csrf_failed(_exc):
        return _page(400, "This form expired. Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code and 300 <= exc.code < 400:
            return exc
        # Our own reasons (a bad id, a NUL character) are shown; Werkzeug's stock
        # descriptions are not written for the people using the app.
        own = exc.description if exc.description != type(exc).description else None
        return _page(exc.code or 500, own)
