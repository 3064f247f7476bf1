"""A throwaway app for the front-end benchmarks: the real app with demo data on a temp
SQLite file, served on 127.0.0.1 in a thread, and a signed-in session cookie."""

from __future__ import annotations

import contextlib
import html
import io
import logging
import os
import re
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class DemoServer:
    url: str
    contacts: int

    def sign_in(self, role: str = "rep") -> str:
        """Sign in as a demo user through the real form (CSRF on); return the Cookie value."""
        from webapp.services import demo

        page = urllib.request.urlopen(f"{self.url}/login")  # noqa: S310 - our own server
        cookie = _session_cookie(page.headers)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode())
        body = urllib.parse.urlencode(
            {
                "csrf_token": html.unescape(token.group(1)),
                "email": f"{role}@{demo.DOMAIN}",
                "password": demo.PASSWORD,
            }
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - our own server
            f"{self.url}/login", data=body, headers={"Cookie": cookie}
        )
        try:
            urllib.request.build_opener(_NoRedirect).open(request)
        except urllib.error.HTTPError as exc:
            if exc.code != 303:
                raise RuntimeError(f"sign-in failed with {exc.code}") from exc
            return _session_cookie(exc.headers)
        raise RuntimeError("sign-in did not redirect")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _session_cookie(headers) -> str:
    for value in headers.get_all("Set-Cookie") or []:
        if value.startswith("crm_session="):
            return value.split(";", 1)[0]
    raise RuntimeError("no session cookie in the response")


@contextlib.contextmanager
def demo_server(contacts: int = 300) -> Iterator[DemoServer]:
    """Migrate and seed a temp database, serve the app, and clean everything up after."""
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        os.environ["INSTANCE_PATH"] = str(Path(tmp) / "instance")
        from flask_migrate import upgrade
        from werkzeug.serving import make_server

        from webapp import create_app
        from webapp.extensions import db
        from webapp.services import demo

        app = create_app(
            {
                "SECRET_KEY": "bench-secret",
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(tmp) / 'crm.sqlite3'}",
                "REDIS_URL": None,
            }
        )
        # Alembic's and werkzeug's request logs would drown the table.
        with app.app_context(), contextlib.redirect_stderr(io.StringIO()):
            upgrade()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        with app.app_context():
            demo.seed(db.session, contacts=contacts)
            db.session.commit()
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield DemoServer(f"http://127.0.0.1:{server.server_port}", contacts)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
            with app.app_context():
                db.engine.dispose()
