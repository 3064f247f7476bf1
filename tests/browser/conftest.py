"""Real-browser fixtures: the real app behind a real HTTP server, driven by Debian's Chromium.

Fixtures (use these names; tests/browser/test_*.py rely on them):

- ``live_server`` (function scope): the real app from ``webapp.create_app`` on its own
  SQLite file (a copy of one migrated with ``flask_migrate.upgrade()`` per session), served
  by ``werkzeug.serving.make_server(..., threaded=True)`` on 127.0.0.1 and a free port.
  CSRF and the security headers are as in production, ``SESSION_COOKIE_SECURE`` as
  ``crm up`` serves plain http ("auto": Secure only over https, since WebKit keeps no
  Secure cookie from http://127.0.0.1).
  ``INSTANCE_PATH`` points at a tmp dir; ``REDIS_URL`` is the session's real Redis (the
  ``redis_url`` fixture: ``REDIS_URL`` from the environment, else an embedded one), so
  "Poll now" really queues a job. Attributes and helpers:

  - ``.url``: base URL without a trailing slash, e.g. ``http://127.0.0.1:41234``
  - ``.app``: the Flask app (use ``with live_server.app.app_context():`` for the DB)
  - ``.errors``: unhandled exceptions raised in the server; teardown fails if any
  - ``.add_user(role="rep", email=None, name=None, password=PASSWORD) -> Account``
  - ``.add_contact(owner: Account, **fields) -> int`` (the contact's id)
  - ``.add_activity(author: Account, contact_id, kind, body="", ago=None) -> int``
    (``ago`` is a timedelta back from now)

- ``browser`` (session scope): Chromium from /usr/bin/chromium through playwright's sync
  API, headless. Never a downloaded browser: if /usr/bin/chromium is missing the tests
  fail with a message saying so.
- ``new_page`` (function scope): ``new_page(**context_options) -> Page``, a fresh context
  shaped like a phone (390x844, device scale 3, mobile, touch) plus a page, e.g.
  ``new_page(java_script_enabled=False)``. Each page has ``page.console_errors``, a list
  of the console errors and uncaught page errors seen so far (CSP violations included).
  Contexts are closed on teardown.
- ``page`` (function scope): ``new_page()`` with the defaults above.
- ``start_worker`` (function scope): ``start_worker() -> BurstWorker`` runs
  ``crm worker --burst`` in a subprocess on the live server's database and Redis; it
  works off what is queued and exits. ``.finish(timeout)`` waits for it and returns its
  output (failing on a non-zero exit). On teardown the worker is stopped if still
  running, the queues are emptied and the live server's sources' poll locks released,
  so no job or lock leaks into the next test.

Helpers and constants: ``sign_in(page, live_server, email, password=PASSWORD)`` signs in
through the real form and waits for the contact list; ``PASSWORD`` is ``add_user``'s
default; ``CHROMIUM`` (the path), ``CHROMIUM_ARGS`` and ``PHONE`` (the context options
above) are there for tests that launch their own context, e.g. a persistent one.
``browser_db_template`` (session) is the migrated SQLite file ``live_server`` copies.
- ``engine`` (function scope, one run per engine: chromium, firefox, webkit): a
  tests/browser/engines.py ``Driver`` on a fresh phone-sized page of that engine, for
  scenarios written once for all three (test_engines.py). Each reaches the live server
  through ``engine.cut``, a proxy the test can stop; ``engine.offline(True)`` switches
  the network off where the driver can (Chromium), else stops the proxy.
  A missing engine fails with what to install.

Every test here should carry ``pytestmark = pytest.mark.browser``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask, got_request_exception
from flask_migrate import upgrade
from playwright.sync_api import Browser, Page, expect, sync_playwright
from rq import Queue
from sqlalchemy import select
from werkzeug.serving import make_server

from tests.browser import engines
from webapp import create_app
from webapp.extensions import db
from webapp.models import Contact, Source, User
from webapp.models.base import utcnow
from webapp.services import activities, contacts, users
from workers import jobs, queues

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Account:
    """A user created in the live server's database, with the password to sign in."""

    id: int
    email: str
    name: str
    role: str
    password: str


@dataclass
class LiveServer:
    """The app behind a real HTTP server, with helpers that write to its database."""

    url: str
    app: Flask
    errors: list[BaseException] = field(default_factory=list)
    _count: int = 0

    def add_user(
        self,
        role: str = "rep",
        email: str | None = None,
        name: str | None = None,
        password: str = PASSWORD,
    ) -> Account:
        """Create and commit a user; return what a test needs to sign in as them."""
        self._count += 1
        email = email or f"{role}{self._count}@example.com"
        name = name or f"{role.title()} {self._count}"
        with self.app.app_context():
            user = users.create_user(db.session, email, name, role, password)
            db.session.commit()
            return Account(user.id, user.email, user.name, user.role, password)

    def add_contact(self, owner: Account, **fields: str) -> int:
        """Create and commit a contact owned by owner; return its id."""
        with self.app.app_context():
            user = db.session.get(User, owner.id)
            contact = contacts.create_contact(db.session, user, fields)
            db.session.commit()
            return contact.id

    def add_activity(
        self,
        author: Account,
        contact_id: int,
        kind: str,
        body: str = "",
        ago: timedelta | None = None,
    ) -> int:
        """Log and commit an activity on a contact, ago back from now; return its id."""
        with self.app.app_context():
            user = db.session.get(User, author.id)
            contact = db.session.get(Contact, contact_id)
            when = utcnow() - ago if ago else None
            activity, _ = activities.log_activity(
                db.session, user, contact, kind, body, activities.new_uuid(), when
            )
            db.session.commit()
            return activity.id


def _config(database: Path, redis_url: str | None = None) -> dict:
    # Only what a test must pin; CSRF and headers keep their production values, cookies
    # those of `crm up` on plain http (Secure only over https: WebKit keeps no Secure
    # cookie from http://127.0.0.1).
    return {
        "SECRET_KEY": "browser-test-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
        "REDIS_URL": redis_url,
        "SESSION_COOKIE_SECURE": "auto",
        "WTF_CSRF_ENABLED": True,
    }


@pytest.fixture(scope="session")
def browser_db_template(tmp_path_factory) -> Path:
    """A SQLite file migrated once per session; each live server runs on a copy."""
    base = tmp_path_factory.mktemp("browser-db")
    path = base / "template.sqlite3"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INSTANCE_PATH", str(base / "instance"))
        app = create_app(_config(path))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return path


@pytest.fixture
def live_server(browser_db_template, redis_url, tmp_path, monkeypatch) -> Iterator[LiveServer]:
    """The real app on a fresh database and the session's Redis, served over HTTP on
    127.0.0.1 in a thread."""
    database = tmp_path / "crm.sqlite3"
    shutil.copy(browser_db_template, database)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(_config(database, redis_url))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    live = LiveServer(f"http://127.0.0.1:{server.server_port}", app)

    def record(_sender, exception, **_extra):
        live.errors.append(exception)

    got_request_exception.connect(record, app)
    # A short poll interval lets shutdown() return at once instead of after half a second.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="live-server", daemon=True
    )
    thread.start()
    try:
        yield live
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        got_request_exception.disconnect(record, app)
        with app.app_context():
            db.engine.dispose()
    assert not live.errors, f"the app raised while serving: {live.errors!r}"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless; never a browser downloaded by playwright."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(apt-get install chromium); they never use a downloaded browser.",
            pytrace=False,
        )
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser) -> Iterator[Callable[..., Page]]:
    """Open pages in fresh phone-sized contexts; each page records its console errors."""
    opened = []

    def make(**options) -> Page:
        context = browser.new_context(**{**PHONE, **options})
        opened.append(context)
        page = context.new_page()
        page.console_errors = []
        page.on(
            "console",
            lambda msg: msg.type == "error" and page.console_errors.append(msg.text),
        )
        page.on("pageerror", lambda exc: page.console_errors.append(f"uncaught: {exc}"))
        return page

    yield make
    for context in opened:
        context.close()


@pytest.fixture
def page(new_page) -> Page:
    """A page in a phone-sized context (390x844, scale 3, mobile, touch)."""
    return new_page()


def sign_in(page: Page, live_server: LiveServer, email: str, password: str = PASSWORD) -> None:
    """Sign in through the real form and wait for the page the role starts on (the
    contact list; the inbox for support staff)."""
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(live_server.url) + r"/(today|contacts|inbox/)$"))
    expect(page.get_by_role("banner").get_by_role("link", name="Account")).to_be_visible()


@dataclass
class BurstWorker:
    """A `crm worker --burst` subprocess working for the live server."""

    process: subprocess.Popen
    log: Path

    def finish(self, timeout: float = 60) -> str:
        """Wait for the worker to drain the queues and exit; return its output."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the worker was still running after {timeout} s:\n{self.output()}")
        assert self.process.returncode == 0, f"the worker failed:\n{self.output()}"
        return self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def start_worker(live_server, tmp_path) -> Iterator[Callable[[], BurstWorker]]:
    """Start `crm worker --burst` on the live server's database and Redis, on demand.

    Start it after queueing: a burst worker exits as soon as the queues are empty.
    """
    started: list[BurstWorker] = []
    config = live_server.app.config
    env = {
        **os.environ,
        "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": config["REDIS_URL"],
        "INSTANCE_PATH": str(tmp_path / "worker-instance"),
        "SECRET_KEY": "browser-test-worker",
    }

    def start() -> BurstWorker:
        log = tmp_path / f"worker-{len(started) + 1}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "webapp.cli", "worker", "--burst"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = BurstWorker(process, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()
    # Leave nothing behind for the next test: its sources get the same ids again.
    connection = queues.connect(config["REDIS_URL"])
    try:
        for name in queues.QUEUES:
            Queue(name, connection=connection).empty()
        with live_server.app.app_context():
            source_ids = db.session.scalars(select(Source.id)).all()
        for source_id in source_ids:
            connection.delete(jobs._poll_lock(source_id))
    finally:
        connection.close()


def pytest_collection_modifyitems(items) -> None:
    """One xdist group per engine: `pytest -n 3 --dist loadgroup` (what `make test` runs
    for test_engines.py) gives each engine a process of its own."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec and "engine" in item.fixturenames and "engine" in callspec.params:
            item.add_marker(pytest.mark.xdist_group(callspec.params["engine"]))


def pytest_terminal_summary(terminalreporter) -> None:
    """The time each engine's tests took (setup and teardown included)."""
    spent: dict[str, float] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            nodeid = getattr(report, "nodeid", "")
            match = re.search(r"\[(" + "|".join(engines.ENGINES) + r")\]$", nodeid)
            if match and hasattr(report, "duration"):
                spent[match[1]] = spent.get(match[1], 0) + report.duration
    if spent:
        times = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in sorted(spent.items()))
        terminalreporter.write_line(f"browser engines: {times}")


@pytest.fixture(scope="session")
def xvfb() -> Iterator[engines.Display]:
    """An X display of our own for WebKitGTK, started on first use."""
    engines.require("webkit")
    display = engines.Display()
    try:
        yield display
    finally:
        display.close()


@pytest.fixture(scope="session")
def firefox(tmp_path_factory) -> Iterator[engines.Firefox]:
    """Debian's firefox-esr through puppeteer-core, started on first use."""
    engines.require("firefox")
    base = tmp_path_factory.mktemp("firefox")
    browser = engines.Firefox(base / "profile", base / "firefox.log")
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(params=engines.ENGINES)
def engine(request, live_server, tmp_path) -> Iterator[engines.Driver]:
    """A phone-sized page in each engine in turn, on the live server."""
    name = request.param
    engines.require(name)
    cut = engines.Cut(int(live_server.url.rsplit(":", 1)[1]))
    if name == "chromium":
        driver = engines.ChromiumDriver(request.getfixturevalue("browser"), cut, PHONE)
    elif name == "firefox":
        driver = engines.FirefoxDriver(request.getfixturevalue("firefox"), cut)
    else:
        display = request.getfixturevalue("xvfb")
        driver = engines.WebKitDriver(
            cut, display, tmp_path / "webkit-home", tmp_path / "webkit.log"
        )
    try:
        yield driver
    finally:
        driver.close()
        cut.close()


def controlled(page: Page) -> str:
    """Wait until the service worker is active and controls the page; return its scope.

    Waits for the worker's clients.claim() through its event: a polled predicate would
    need the eval the page's CSP refuses.
    """
    scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
    page.evaluate(
        """() => navigator.serviceWorker.controller || new Promise((resolve) => {
            const sw = navigator.serviceWorker;
            sw.addEventListener("controllerchange", resolve, { once: true });
        })"""
    )
    return scope


def open_place(page: Page, name: str) -> None:
    """Go to a place of the main navigation by its name, through More on a phone when
    the tab bar has no room for it."""
    nav = page.get_by_role("banner").get_by_role("navigation", name="Main")
    link = nav.get_by_role("link", name=name)
    touch = page.evaluate("navigator.maxTouchPoints > 0")  # tap() needs a touch screen
    if not link.is_visible():
        more = nav.locator("summary", has_text="More")
        more.tap() if touch else more.click()
    link.tap() if touch else link.click()
