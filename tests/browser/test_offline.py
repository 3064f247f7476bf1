"""Offline-first field work in Chromium at 390x844 (test_engines.py runs the core of it in
Firefox and WebKit too): contacts read and activities logged with no signal, kept through
reloads and a closed browser, sent exactly once with the time they were logged; refusals
kept with their reason; sessions that ended, answers that are not receipts, and signing
out with entries unsent. No fixed sleeps: each wait is on what it waits for."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PHONE,
    LiveServer,
    controlled,
    sign_in,
)
from webapp.extensions import db
from webapp.models import Activity, Contact, User
from webapp.services import contacts

pytestmark = pytest.mark.browser

KINDS = ["Call", "Visit", "Meeting", "Note", "Email"]


@pytest.fixture
def phone(browser, tmp_path) -> Iterator[Callable[..., Page]]:
    """Open the phone: a persistent profile (IndexedDB, caches, the service worker and
    cookies stay on disk), so it can be closed and opened again as it was."""
    opened = []

    def launch(**options) -> Page:
        context = browser.browser_type.launch_persistent_context(
            tmp_path / "profile",
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            **PHONE,
            **options,
        )
        opened.append(context)
        page = context.pages[0] if context.pages else context.new_page()
        _watch(page)
        return page

    yield launch
    for context in opened:
        with contextlib.suppress(Exception):  # closed by the test already
            context.close()


def _watch(page: Page) -> None:
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: page.console_errors.append(f"uncaught: {exc}"))


def app_errors(page: Page) -> list[str]:
    """Console errors other than the browser's own notes on failed requests (no signal,
    a 401 or 422 answered on purpose)."""
    return [e for e in page.console_errors if "Failed to load resource" not in e]


def eventually(check: Callable[[], object], timeout: float = 15, what: str = "") -> object:
    """Poll check until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {timeout} s: {what or check}")
        time.sleep(0.1)


def saved_contacts(page: Page) -> list[str]:
    return page.evaluate("Offline.library().then((l) => l.map((c) => c.name))")


def cached_urls(page: Page) -> list[str]:
    """The URLs of the pages kept for offline reading."""
    return page.evaluate(
        "caches.open(Offline.PAGES).then((c) => c.keys()).then((ks) => ks.map((r) => r.url))"
    )


def outbox(page: Page) -> list[dict]:
    return page.evaluate("Offline.entries()")


def status(page: Page):
    return page.locator("#sync-status")


def pending(page: Page):
    return page.locator("#timeline-entries li[data-pending]")


def log(page: Page, kind: str, body: str = "") -> None:
    """Log an entry from the contact page, and wait until it shows as kept on the phone."""
    before = pending(page).count()
    page.locator("#log-body").fill(body)
    page.locator("#timeline").get_by_role("button", name=kind, exact=True).tap()
    expect(pending(page)).to_have_count(before + 1)


def activities_on_server(live_server: LiveServer) -> dict[str, tuple]:
    """uuid -> (contact id, author id, kind, body, occurred_at, created_at)."""
    with live_server.app.app_context():
        return {
            a.uuid: (a.contact_id, a.author_id, a.kind, a.body, a.occurred_at, a.created_at)
            for a in db.session.scalars(select(Activity))
        }


def delete_contact(live_server: LiveServer, owner_id: int, contact_id: int) -> None:
    with live_server.app.app_context():
        user = db.session.get(User, owner_id)
        contacts.delete_contact(db.session, user, db.session.get(Contact, contact_id))
        db.session.commit()


class Intercept:
    """What can sit between a phone and the app (a captive portal, a proxy, a server in
    trouble): while on, it answers the sync POST itself, for the page and the service
    worker alike."""

    def __init__(self, app, status: str, headers: list[tuple[str, str]], body: bytes, whole_api):
        self.app, self.status, self.headers, self.body = app, status, headers, body
        self.whole_api = whole_api
        self.on = True
        self.answered = 0  # requests it answered itself

    def __call__(self, environ, start_response):
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        if self.on and (
            (method == "POST" and path == "/api/activities")
            or (self.whole_api and path.startswith("/api/"))
        ):
            self.answered += 1
            start_response(self.status, self.headers)
            return [self.body]
        return self.app(environ, start_response)


def intercept(
    live_server: LiveServer, status: str, headers=None, body: bytes = b"", whole_api=False
) -> Intercept:
    headers = headers or [("Content-Type", "text/html; charset=utf-8")]
    middleware = Intercept(live_server.app.wsgi_app, status, headers, body, whole_api)
    live_server.app.wsgi_app = middleware
    return middleware


# The bar once everything went: online, nothing waiting, nothing refused, a last sync.
ALL_SENT = re.compile(r"^Online · nothing waiting to send · last sync [^·]+$")
SIGN_IN_PAGE = b"<!doctype html><title>Sign in</title><form><input name=email></form>"


def _seed(live_server: LiveServer):
    rep = live_server.add_user("rep", name="Rita Rep")
    ids = [
        live_server.add_contact(
            rep, name="Alice Hartley", company="Acme Tools", phone="+44 20 7946 0018"
        ),
        live_server.add_contact(
            rep, name="Bob Stone", company="Granite Ltd", phone="+1 555 010 9999"
        ),
        live_server.add_contact(rep, name="Carla Mendes", company="Harbor Foods"),
    ]
    for contact_id in ids:
        live_server.add_activity(
            rep, contact_id, "visit", "Dropped off samples", ago=timedelta(days=2)
        )
    return rep, ids


def test_twenty_entries_logged_offline_survive_a_restart_and_are_stored_exactly_once(
    phone, live_server
):
    rep, ids = _seed(live_server)
    url = live_server.url
    seeded = activities_on_server(live_server)
    page = phone()
    sign_in(page, live_server, rep.email)
    controlled(page)
    page.goto(f"{url}/contacts")  # the list, now through the service worker, is kept too
    # The rep's own contacts are saved for offline use without being opened.
    eventually(lambda: len(saved_contacts(page)) == 3, what="own contacts saved")

    page.context.set_offline(True)
    page.goto(f"{url}/contacts")
    expect(page.locator(".saved-copy")).to_contain_text("Saved copy from")
    expect(status(page)).to_contain_text("Offline")
    page.get_by_role("searchbox", name="Search contacts").fill("granite")
    rows = page.locator("#contact-list li.row")
    expect(rows).to_have_count(1)
    rows.get_by_role("link", name=re.compile("Bob Stone")).tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bob Stone")
    expect(page.locator(".saved-copy")).to_contain_text("Saved copy from")
    expect(page.locator("#timeline-entries li.entry")).to_contain_text(["Dropped off samples"])

    # 20 entries across the three contacts: 7, 7 and 6, every kind.
    plan = [(ids[0], 7), (ids[1], 7), (ids[2], 6)]
    n = 0
    for contact_id, count in plan:
        page.goto(f"{url}/contacts/{contact_id}")
        expect(page.locator(".saved-copy")).to_be_visible()
        for _ in range(count):
            kind = KINDS[n % len(KINDS)]
            log(page, kind, f"offline entry {n:02d}")
            n += 1
        expect(status(page)).to_contain_text(f"{n} entries waiting to send")
    expect(status(page)).to_contain_text("Offline · 20 entries waiting to send")
    expect(pending(page).first).to_contain_text("Waiting to send")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    page.reload()
    expect(status(page)).to_contain_text("Offline · 20 entries waiting to send")
    expect(pending(page)).to_have_count(6)
    kept = outbox(page)
    assert len(kept) == 20 and {e["state"] for e in kept} == {"waiting"}
    assert activities_on_server(live_server) == seeded
    assert app_errors(page) == []

    # The app is closed and opened again, still with no signal. Chromium fires a pending
    # Background Sync as the profile starts, before playwright's offline emulation reaches
    # the service worker; with no network on a real phone that attempt fails, so here the
    # API stays out of reach until the signal returns (and the failed attempt loses nothing).
    page.context.close()
    no_network = intercept(live_server, "503 Service Unavailable", whole_api=True)
    page = phone(offline=True)
    page.goto(f"{url}/contacts/{ids[0]}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Alice Hartley")
    expect(status(page)).to_contain_text("Offline · 20 entries waiting to send")
    expect(pending(page)).to_have_count(7)
    assert sorted(e["uuid"] for e in outbox(page)) == sorted(e["uuid"] for e in kept)

    # Signal again once that start-up attempt has failed: the entries go on their own,
    # with the time they were logged.
    eventually(lambda: no_network.answered, what="the start-up Background Sync, refused")
    no_network.on = False
    page.context.set_offline(False)
    expect(status(page)).to_have_text(ALL_SENT, timeout=30_000)
    expect(pending(page)).to_have_count(0)
    expect(page.locator("#timeline-entries li.entry")).to_have_count(8)
    stored = activities_on_server(live_server)
    new = {k: v for k, v in stored.items() if k not in seeded}
    assert len(new) == 20
    for entry in kept:
        contact_id, author_id, kind, body, occurred_at, created_at = new[entry["uuid"]]
        assert (contact_id, author_id) == (entry["contactId"], rep.id)
        assert (kind, body) == (entry["kind"], entry["body"])
        assert occurred_at == datetime.fromisoformat(entry["occurredAt"])
        assert created_at - occurred_at > timedelta(seconds=1)
    assert outbox(page) == []

    # The same outbox replayed, twice: answered with the stored records, nothing added.
    for _ in range(2):
        page.evaluate("(es) => Promise.all(es.map((e) => Offline.add(e)))", kept)
        expect(status(page)).to_contain_text("20 entries waiting to send")
        page.locator("#sync-actions").get_by_role("button", name="Retry").click()
        expect(status(page)).to_have_text(ALL_SENT)
        assert outbox(page) == []
        assert activities_on_server(live_server) == stored
    assert app_errors(page) == []


def test_own_and_recently_viewed_contacts_are_readable_offline_within_bounds(page, live_server):
    rep = live_server.add_user("rep", name="Rita Rep")
    colleague = live_server.add_user("rep", name="Cole League")
    own = live_server.add_contact(
        rep, name="Olive Own", company="Harbor Foods", phone="+44 1632 960001"
    )
    live_server.add_activity(rep, own, "meeting", "Talked prices", ago=timedelta(days=1))
    viewed = live_server.add_contact(colleague, name="Vic Viewed", company="Vault Ltd")
    never = live_server.add_contact(colleague, name="Nell Never")
    sign_in(page, live_server, rep.email)
    controlled(page)
    page.goto(f"{live_server.url}/contacts/{viewed}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Vic Viewed")
    eventually(
        lambda: saved_contacts(page) == ["Olive Own", "Vic Viewed"], what="own and viewed saved"
    )
    # Storage that Safari would clear after 7 days unused is asked to be kept.
    assert page.evaluate("Offline.meta('persist')")["at"]
    assert page.evaluate("Offline.LIMITS") == {
        "own": 200,
        "recent": 100,
        "recentDays": 14,
        "pageBytes": 256000,
        "bytes": 10000000,
    }

    page.context.set_offline(True)
    page.goto(f"{live_server.url}/contacts/{never}")
    # Not saved: the offline page, which finds what is saved on the phone.
    expect(page.get_by_role("heading", name="You are offline")).to_be_visible()
    saved = page.locator("#saved-list li.row")
    expect(saved).to_have_count(2)
    page.get_by_label("Find a saved contact").fill("1632 960")
    expect(saved).to_have_count(1)
    expect(saved).to_contain_text("Olive Own")
    saved.get_by_role("link", name=re.compile("Olive Own")).tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Olive Own")
    expect(page.locator(".saved-copy")).to_contain_text(re.compile(r"Saved copy from .+ \(.+\)"))
    expect(page.locator(".details")).to_contain_text("+44 1632 960001")
    expect(page.locator("#timeline-entries li.entry")).to_contain_text(["Talked prices"])
    page.goto(f"{live_server.url}/contacts/{viewed}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Vic Viewed")
    assert app_errors(page) == []

    # The bounds hold: at most 100 pages besides the own contacts, none over 256 KB.
    page.context.set_offline(False)
    page.evaluate(
        """async () => {
            const html = {headers: {"Content-Type": "text/html"}};
            const page = (size) => new Response("x".repeat(size), html);
            await Offline.keep("/too-big", page(300000));
            for (let i = 0; i < 105; i++) await Offline.keep(`/filler/${i}`, page(10));
        }"""
    )
    kept = [urlsplit(url).path for url in cached_urls(page)]
    assert "/too-big" not in kept
    assert len([p for p in kept if p.startswith("/filler/")]) <= 100
    assert f"/contacts/{own}" in kept  # the own contact is not pushed out by other pages
    assert "/filler/104" in kept and "/filler/0" not in kept


def test_an_entry_for_a_contact_deleted_meanwhile_is_kept_as_failed_with_its_reason(
    page, live_server
):
    rep, (alice, bob, _carla) = _seed(live_server)
    sign_in(page, live_server, rep.email)
    controlled(page)
    eventually(lambda: len(saved_contacts(page)) == 3, what="own contacts saved")
    seeded = activities_on_server(live_server)

    page.context.set_offline(True)
    page.goto(f"{live_server.url}/contacts/{alice}")
    log(page, "Visit", "Stand checked")
    page.goto(f"{live_server.url}/contacts/{bob}")
    log(page, "Call", "Asked about the order")
    expect(status(page)).to_contain_text("2 entries waiting to send")
    delete_contact(live_server, rep.id, bob)

    page.context.set_offline(False)
    reason = "This contact was deleted while the entry waited, so it was not stored."
    expect(status(page)).to_contain_text("nothing waiting to send · 1 not sent", timeout=30_000)
    # Folded away so it never covers the page; one tap shows why.
    page.locator("#sync-summary").click()
    expect(page.locator("#sync-summary")).to_have_text("Why was 1 entry not sent?")
    failed = page.locator("#sync-failed li")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("Call for Bob Stone")
    expect(failed).to_contain_text(reason)
    expect(pending(page)).to_contain_text(f"Not sent: {reason}")
    (kept,) = outbox(page)
    assert (kept["state"], kept["error"], kept["contactId"]) == ("failed", reason, bob)
    new = {k: v for k, v in activities_on_server(live_server).items() if k not in seeded}
    assert [v[0] for v in new.values()] == [alice]  # nothing stored against Bob, or anyone else

    # Kept across a reload until the rep decides; discarding takes it out.
    page.goto(f"{live_server.url}/contacts/{alice}")
    expect(page.locator("#sync-failed li")).to_contain_text(reason)
    page.locator("#sync-summary").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#sync-failed").get_by_role("button", name="Discard").click()
    expect(page.locator("#sync-failed li")).to_have_count(0)
    expect(status(page)).to_have_text(ALL_SENT)
    assert outbox(page) == []


def test_a_time_in_the_future_is_refused_with_its_message_kept_and_can_be_fixed(
    new_page, live_server
):
    rep, (alice, *_) = _seed(live_server)
    page = new_page(timezone_id="UTC")
    # The phone's clock runs a day ahead.
    ahead = datetime.now(UTC) + timedelta(days=1)
    page.clock.set_fixed_time(ahead)
    sign_in(page, live_server, rep.email)
    controlled(page)
    page.goto(f"{live_server.url}/contacts/{alice}")
    log(page, "Visit", "Clock ahead")
    message = "That time is in the future: check the phone's clock, then fix the time."
    expect(page.locator("#timeline .log-status")).to_have_text(f"Visit not sent: {message}")
    expect(status(page)).to_contain_text("1 not sent")
    item = page.locator("#sync-failed li")
    expect(item).to_contain_text(message)
    page.reload()
    expect(page.locator("#sync-failed li")).to_contain_text(message)
    (entry,) = outbox(page)
    assert (entry["state"], entry["error"], entry["field"]) == ("failed", message, "occurred_at")
    assert len(activities_on_server(live_server)) == 3

    right = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    page.locator("#sync-summary").click()
    page.get_by_label("When it happened").fill(right.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Send with this time").click()
    expect(status(page)).to_have_text(ALL_SENT)
    stored = activities_on_server(live_server)[entry["uuid"]]
    assert stored[0] == alice and stored[4] == right
    assert outbox(page) == []


def test_a_session_ended_elsewhere_keeps_entries_waiting_until_the_rep_signs_in(
    new_page, live_server
):
    rep, (alice, *_) = _seed(live_server)
    page = new_page()
    sign_in(page, live_server, rep.email)
    controlled(page)
    page.goto(f"{live_server.url}/contacts/{alice}")
    page.context.set_offline(True)
    log(page, "Call", "No answer")
    log(page, "Note", "Call back on Monday")

    # The rep signs out on every device from a laptop.
    laptop = new_page()
    sign_in(laptop, live_server, rep.email)
    laptop.goto(f"{live_server.url}/account")
    laptop.get_by_role("button", name="Sign out on every device").click()
    expect(laptop.get_by_label("Email")).to_be_visible()

    page.context.set_offline(False)
    expect(status(page)).to_contain_text("Online · 2 entries waiting to send", timeout=30_000)
    expect(status(page)).to_contain_text("Sign in to send them.")
    assert len(outbox(page)) == 2
    assert len(activities_on_server(live_server)) == 3

    page.locator("#sync-actions").get_by_role("link", name="Sign in").click()
    page.get_by_label("Email").fill(rep.email)
    page.get_by_label("Password").fill(rep.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/contacts/{alice}")
    expect(status(page)).to_have_text(ALL_SENT)
    assert outbox(page) == []
    bodies = {v[3] for v in activities_on_server(live_server).values()}
    assert {"No answer", "Call back on Monday"} <= bodies


@pytest.mark.parametrize(
    ("answer", "headers", "body", "words"),
    [
        ("200 OK", None, SIGN_IN_PAGE, "The server answered 200 without a receipt"),
        ("503 Service Unavailable", None, b"<h1>Down</h1>", "The server answered 503"),
        (
            "302 Found",
            [("Location", "/login"), ("Content-Type", "text/html")],
            b"",
            "The server sent a redirect instead of a receipt",
        ),
    ],
    ids=["html-200", "html-503", "redirect"],
)
def test_an_answer_that_is_not_a_receipt_keeps_the_entry_waiting(
    page, live_server, answer, headers, body, words
):
    rep, (alice, *_) = _seed(live_server)
    sign_in(page, live_server, rep.email)
    controlled(page)
    page.goto(f"{live_server.url}/contacts/{alice}")
    portal = intercept(live_server, answer, headers, body)

    log(page, "Meeting", "Went through the plan")
    expect(status(page)).to_contain_text("1 entry waiting to send")
    expect(status(page)).to_contain_text(words)
    expect(page.locator("#timeline .log-status")).to_have_text(
        "Meeting saved on this phone; it will be sent when there is signal."
    )
    (entry,) = outbox(page)
    assert entry["state"] == "waiting" and entry["attempts"] >= 1
    assert len(activities_on_server(live_server)) == 3

    portal.on = False
    # Retry, unless the page's own retry (5 s after a failure) got there first.
    retry = page.locator("#sync-actions").get_by_role("button", name="Retry")
    with contextlib.suppress(PlaywrightError):
        retry.click(timeout=3000)
    expect(status(page)).to_have_text(ALL_SENT, timeout=20_000)
    assert activities_on_server(live_server)[entry["uuid"]][3] == "Went through the plan"
    assert len(activities_on_server(live_server)) == 4


def test_signing_out_with_entries_unsent_warns_and_sends_them_first(page, live_server):
    rep, (alice, *_) = _seed(live_server)
    sign_in(page, live_server, rep.email)
    controlled(page)
    page.goto(f"{live_server.url}/contacts/{alice}")
    down = intercept(live_server, "503 Service Unavailable")
    log(page, "Visit", "Left a brochure")
    log(page, "Call", "Booked a demo")
    expect(status(page)).to_contain_text("2 entries waiting to send")

    page.get_by_role("link", name="Account").click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    warning = page.get_by_role("alert")
    expect(warning).to_contain_text("2 entries have not been sent yet.")
    expect(page).to_have_url(f"{live_server.url}/account")
    down.on = False
    warning.get_by_role("button", name="Send them now").click()
    expect(page.get_by_label("Email")).to_be_visible()
    bodies = {v[3] for v in activities_on_server(live_server).values()}
    assert {"Left a brochure", "Booked a demo"} <= bodies
    assert outbox(page) == []
    # Nothing waits, so signing out forgot the contacts saved on this phone.
    assert saved_contacts(page) == []
    assert not [url for url in cached_urls(page) if "/contacts" in url]


def test_entries_kept_at_sign_out_wait_for_their_own_user(page, live_server):
    rep, (alice, *_) = _seed(live_server)
    other = live_server.add_user("rep", name="Otto Other")
    sign_in(page, live_server, rep.email)
    controlled(page)
    eventually(lambda: len(saved_contacts(page)) == 3, what="own contacts saved")
    page.goto(f"{live_server.url}/contacts/{alice}")
    down = intercept(live_server, "503 Service Unavailable")
    log(page, "Visit", "Kept for later")
    expect(status(page)).to_contain_text("1 entry waiting to send")

    page.get_by_role("link", name="Account").click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.get_by_role("alert").get_by_role("button", name="Keep them and sign out").click()
    expect(page.get_by_label("Email")).to_be_visible()
    down.on = False
    expect(status(page)).to_contain_text("1 entry waiting to send")
    expect(status(page)).to_contain_text("Sign in to send it.")
    # The contacts saved for offline reading are gone with the session; the entry stays.
    assert saved_contacts(page) == []
    assert [e["body"] for e in outbox(page)] == ["Kept for later"]

    # Someone else signs in on this phone: the entry is not theirs to send.
    sign_in(page, live_server, other.email)
    expect(status(page)).to_contain_text("1 entry of another account")
    expect(status(page)).to_contain_text("nothing waiting to send")
    page.reload()
    assert len(outbox(page)) == 1
    assert len(activities_on_server(live_server)) == 3
    page.get_by_role("link", name="Account").click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_label("Email")).to_be_visible()

    # Its own user signs in again: it goes on its own.
    sign_in(page, live_server, rep.email)
    expect(status(page)).to_have_text(ALL_SENT)
    assert outbox(page) == []
    (new,) = [v for v in activities_on_server(live_server).values() if v[3] == "Kept for later"]
    assert new[:2] == (alice, rep.id)
    assert app_errors(page) == []


def test_background_sync_sends_the_outbox_with_no_page_of_the_app_open(page, live_server):
    rep, (alice, *_) = _seed(live_server)
    sign_in(page, live_server, rep.email)
    controlled(page)
    page.goto(f"{live_server.url}/contacts/{alice}")
    cdp = page.context.new_cdp_session(page)
    registrations = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(event["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    page.context.set_offline(True)
    log(page, "Visit", "Sent by the worker")
    # Chromium has Background Sync: the page asked for one.
    assert page.evaluate("navigator.serviceWorker.ready.then((r) => r.sync.getTags())") == [
        "outbox"
    ]
    (registration,) = eventually(lambda: registrations, what="the worker's registration")

    # The app is left (no page of it runs), then the signal returns.
    page.goto("about:blank")
    page.context.set_offline(False)
    cdp.send(
        "ServiceWorker.dispatchSyncEvent",
        {
            "origin": live_server.url,
            "registrationId": registration["registrationId"],
            "tag": "outbox",
            "lastChance": False,
        },
    )
    eventually(
        lambda: any(
            v[3] == "Sent by the worker" for v in activities_on_server(live_server).values()
        ),
        what="the entry stored by the worker",
    )
    page.goto(f"{live_server.url}/contacts/{alice}")
    expect(status(page)).to_have_text(ALL_SENT)


class Slow:
    """Contact pages answered with the cookie they were asked with, and arriving late."""

    def __init__(self, app):
        self.app, self.count, self.busy = app, 0, 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            self.busy += 1
        try:
            body = self.app(environ, start_response)
            if re.fullmatch(r"/contacts/\d+", environ["PATH_INFO"]):
                self.count += 1
                time.sleep(0.5)
            return body
        finally:
            with self.lock:
                self.busy -= 1


def test_signing_out_while_contacts_are_being_saved_really_signs_out(page, live_server):
    """An answer still on its way after the sign-out would set the session's cookie again;
    the page and the worker let nothing be on its way when it is sent."""
    rep = live_server.add_user("rep")
    for i in range(30):
        live_server.add_contact(rep, name=f"Contact {i:02d}")
    slow = Slow(live_server.app.wsgi_app)
    live_server.app.wsgi_app = slow
    sign_in(page, live_server, rep.email)
    controlled(page)
    page.get_by_role("link", name="Account").click()
    eventually(lambda: slow.count >= 3, what="the own contacts being saved")
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_label("Email")).to_be_visible()
    # Every answer that was on its way has been sent.
    eventually(lambda: slow.busy == 0, what="no answer still on its way")
    page.goto(f"{live_server.url}/contacts")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    assert saved_contacts(page) == []
    assert not [url for url in cached_urls(page) if "/contacts" in url]
