"""The installable shell: manifest, service worker at the site root, offline page."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, current_app, render_template, send_from_directory

bp = Blueprint("pwa", __name__)
# What the service worker precaches; its version changes whenever one of them does.
SHELL_FILES = ("css", "js", "icons", "manifest.webmanifest", "sw.js")
SHELL_TEMPLATES = ("offline.html", "base.html")


@cache
def _service_worker(static_folder: str, template_folder: str) -> str:
    """sw.js with VERSION set to a hash of the shell's files."""
    digest = hashlib.sha256()
    paths = []
    for name in SHELL_FILES:
        root = Path(static_folder, name)
        paths += sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    paths += [Path(template_folder, name) for name in SHELL_TEMPLATES]
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    source = Path(static_folder, "sw.js").read_text()
    return source.replace("__SHELL_VERSION__", digest.hexdigest()[:12])


@bp.get("/manifest.webmanifest")
def manifest():
    """The web app manifest, with its registered media type."""
    response = send_from_directory(current_app.static_folder, "manifest.webmanifest")
    response.mimetype = "application/manifest+json"
    return response


@bp.get("/sw.js")
def service_worker():
    """The service worker, served from / so its scope is the whole app."""
    body = _service_worker(current_app.static_folder, current_app.template_folder)
    response = Response(body, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get("/offline")
def offline():
    """What the service worker shows for a page it cannot fetch or find in its cache."""
    return render_template("offline.html")


@bp.get("/healthz")
def health():
    """Liveness for load balancers: no database, no session."""
    return {"ok": True}
