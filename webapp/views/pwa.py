"""The installable shell: manifest, service worker at the site root, offline page."""

from __future__ import annotations

import hashlib
import io
import mimetypes
import re
from functools import cache
from pathlib import Path

import brotli
import zopfli.gzip
from flask import (
    Blueprint,
    Response,
    current_app,
    render_template,
    request,
    send_file,
    send_from_directory,
)

bp = Blueprint("pwa", __name__)
# What the service worker precaches; its version changes whenever one of them does.
SHELL_FILES = ("css", "js", "icons", "manifest.webmanifest", "sw.js")
SHELL_TEMPLATES = ("offline.html", "base.html")
# The page's own scripts (static/js), in the order they run. A page loads them as one
# response, so they share one compression window instead of paying for eight.
PAGE_SCRIPTS = (
    "dom.js",
    "search.js",
    "sync.js",
    "outbox-view.js",
    "log.js",
    "app.js",
    "nav.js",
)
PAGE_SCRIPT = "/static/js/page.js"
# Comments that take whole lines, and the indentation: our files keep them for people, a
# phone does not need them. (A template literal whose line starts like a comment would
# lose that line: none does, and the browser tests run what is served.)
_WHOLE_LINE_COMMENTS = re.compile(r"^[ \t]*(?://[^\n]*|/\*.*?\*/[ \t]*)\n", re.M | re.S)
# Scripts and stylesheets, sent compressed ahead; ours compact, a vendored one as is.
_CODE = re.compile(r"\.(?:js|css)$")
_VENDORED = re.compile(r"\.min\.(?:js|css)$")


def compact(source: str) -> str:
    """source (our JS or CSS) without its whole-line comments and indentation; a line
    inside a template literal that spans lines keeps its spaces, which are its text."""
    lines = []
    in_literal = False
    for line in _WHOLE_LINE_COMMENTS.sub("", source).split("\n"):
        lines.append(line if in_literal else line.lstrip(" \t"))
        if line.count("`") % 2:
            in_literal = not in_literal
    return "\n".join(lines)


@cache
def _page_script(static_folder: str) -> tuple[str, str]:
    """The page's scripts joined in order, compact, and the
    address that names this version of them."""
    parts = []
    for name in PAGE_SCRIPTS:
        source = Path(static_folder, "js", name).read_text()
        parts.append(f"// {name}\n" + compact(source))
    body = "\n".join(parts)
    return body, f"{PAGE_SCRIPT}?v={hashlib.sha256(body.encode()).hexdigest()[:12]}"


@cache
def _encoded(body: str) -> dict[str, bytes]:
    """body as sent, by encoding: brotli at its best, gzip by zopfli (what every gzip
    client reads, some 5% smaller than zlib's best), and as it is (""). Worked out once:
    our scripts and styles change only with a release."""
    raw = body.encode()
    return {"br": brotli.compress(raw, quality=11), "gzip": zopfli.gzip.compress(raw), "": raw}


def _compressed(body: str, mimetype: str, etag: str | None = None) -> Response:
    """A response of our own script or stylesheet, compressed ahead as the client accepts
    (flask-compress leaves a response that has its encoding); each encoding has its own
    ETag, so a revalidation matches the bytes the client holds."""
    encoding = request.accept_encodings.best_match(["br", "gzip"])
    response = Response(_encoded(body)[encoding or ""], mimetype=mimetype)
    response.vary.add("Accept-Encoding")
    if encoding:
        response.headers["Content-Encoding"] = encoding
    if etag:
        response.set_etag(f"{etag}-{encoding}" if encoding else etag)
    return response


# Icons and the like, read once and sent from memory: no file is held open by a
# response, so one the browser abandons (it cancels a tab icon's load when the page
# moves on) leaves nothing behind.
SMALL_FILE = 256 * 1024


@cache
def _small(path: Path, mtime_ns: int) -> tuple[bytes, str]:
    """A small static file's bytes and its ETag (per version of it)."""
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:16]


@cache
def _source(path: Path, mtime_ns: int) -> tuple[str, str]:
    """A script or stylesheet as it is sent (ours compact, a vendored one as it is), and
    its ETag (per version of it)."""
    body = path.read_text()
    if not _VENDORED.search(path.name):
        body = compact(body)
    return body, hashlib.sha256(body.encode()).hexdigest()[:16]


def static_file(filename: str) -> Response:
    """The app's static files: scripts and stylesheets compressed ahead (ours compact),
    with an ETag so a phone revalidates cheaply; small files from memory; anything else
    as Flask sends it."""
    folder = Path(current_app.static_folder).resolve()
    try:
        path = (folder / filename).resolve()
        found = path.is_relative_to(folder) and path.is_file()
        size = path.stat().st_size if found else None
    except (OSError, ValueError):  # a NUL or an impossible name: Flask answers 404
        found, size = False, None
    if found and _CODE.search(filename):
        body, etag = _source(path, path.stat().st_mtime_ns)
        mimetype = "text/css" if filename.endswith(".css") else "text/javascript"
        return _compressed(body, mimetype, etag).make_conditional(request)
    if found and size is not None and size <= SMALL_FILE:
        modified = path.stat()
        data, etag = _small(path, modified.st_mtime_ns)
        return send_file(
            io.BytesIO(data),
            mimetype=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            etag=etag,
            last_modified=modified.st_mtime,
            max_age=current_app.get_send_file_max_age(filename),
        )
    return current_app.send_static_file(filename)


@bp.record_once
def _serve_static(state) -> None:
    state.app.view_functions["static"] = static_file


@bp.app_template_global()
def page_script_url() -> str:
    """Where a page loads its scripts from, named by their version (for templates)."""
    return _page_script(current_app.static_folder)[1]


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
    source = compact(Path(static_folder, "sw.js").read_text())
    source = source.replace("__PAGE_SCRIPT__", _page_script(static_folder)[1])
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
    response = _compressed(body, "text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get(PAGE_SCRIPT)
def page_script():
    """The page's scripts as one file; kept for a year under its versioned address."""
    body, url = _page_script(current_app.static_folder)
    response = _compressed(body, "text/javascript")
    current = request.full_path.rstrip("?") == url
    response.headers["Cache-Control"] = (
        "public, max-age=31536000, immutable" if current else "no-cache"
    )
    return response


@bp.get("/offline")
def offline():
    """What the service worker shows for a page it cannot fetch or find in its cache."""
    return render_template("offline.html")


@bp.get("/healthz")
def health():
    """Liveness for load balancers: no database, no session."""
    return {"ok": True}
