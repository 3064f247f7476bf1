"""The phone flows in three engines: Chromium, Firefox and WebKit (Safari's engine, where
every iPhone browser runs, with no Background Sync). Each scenario is written once against
tests/browser/engines.py's Driver and run in each engine at 390x844.

How the connection is cut differs by engine (engines.py says why): Chromium and Firefox
switch their network off, so the page sees `offline` and `online`; WebKitGTK's WebDriver
cannot, so every engine reaches the app through a local TCP proxy the test stops and
starts, and in WebKit that is how the connection goes: the page still believes it is
online and finds the server unreachable, as a phone in a dead zone does. Either way the
entries go out without Background Sync (which only Chromium has): on `online`, at the
next page load, and by the page's own retries with backoff (the proxy cut in all three).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from tests.browser.conftest import LiveServer
from tests.browser.engines import Driver, count_is, has_text
from tests.browser.test_escaping import INJECTED as CONTACT_INJECTED
from tests.browser.test_escaping import PAYLOADS as CONTACT_PAYLOADS
from tests.browser.test_escaping import _seed as seed_hostile_contacts
from tests.browser.test_inbox import INJECTED as MENTION_INJECTED
from tests.browser.test_inbox import _seed_hostile as seed_hostile_mentions
from webapp.extensions import db
from webapp.models import Activity, Task
from webapp.models.base import utcnow

pytestmark = pytest.mark.browser

PENDING = "#timeline-entries li[data-pending]"
ENTRIES = "#timeline-entries > li.entry"
ALL_SENT = r"^Online · nothing waiting to send · last sync [^·]+$"


def activities(live_server: LiveServer) -> dict[str, tuple]:
    """uuid -> (contact id, author id, kind, body, occurred_at, created_at)."""
    with live_server.app.app_context():
        return {
            a.uuid: (a.contact_id, a.author_id, a.kind, a.body, a.occurred_at, a.created_at)
            for a in db.session.scalars(select(Activity))
        }


def seed(live_server: LiveServer):
    rep = live_server.add_user("rep", name="Rita Rep")
    alice = live_server.add_contact(
        rep, name="Alice Hartley", company="Acme Tools", phone="+44 20 7946 0018"
    )
    bob = live_server.add_contact(
        rep, name="Bob Stone", company="Granite Ltd", phone="+1 555 010 9999"
    )
    live_server.add_contact(rep, name="Carla Mendes", company="Harbor Foods")
    live_server.add_activity(rep, alice, "visit", "Dropped off samples", ago=timedelta(days=2))
    return rep, alice, bob


def sign_in(b: Driver, email: str, password: str) -> None:
    """Through the real form; signed in once the role's start page (Today for reps and
    managers, the inbox for support) and the Account link show."""
    b.open("/login")
    b.wait("!!document.querySelector('#email')", "the sign-in form")
    b.fill("#email", email)
    b.fill("#password", password)
    b.tap("form button[type=submit]")
    b.wait(
        "/^\\/(today|contacts|inbox\\/)$/.test(location.pathname) &&"
        " !!document.querySelector('header a[href=\"/account\"]')",
        "signed in (an expired form would answer 'This form expired')",
    )


def no_sideways_scroll(b: Driver) -> None:
    width = b.js("document.documentElement.scrollWidth")
    assert width <= 390, f"{b.name}: the page scrolls sideways ({width} px)"


def controlled(b: Driver) -> str:
    """Wait until the service worker controls the page; return its scope."""
    scope = b.js("navigator.serviceWorker.ready.then((r) => r.scope)")
    b.wait("!!navigator.serviceWorker.controller", "the service worker controls the page")
    return scope


def search(b: Driver, text: str, shows: list[str]) -> None:
    b.fill("#q", text)
    titles = "#contact-list li.row .row-title"
    want = json.dumps(json.dumps(shows, separators=(",", ":")))
    b.wait(
        f"JSON.stringify([...document.querySelectorAll({json.dumps(titles)})]"
        f".map((e) => e.textContent.trim())) === {want}",
        f"the list shows exactly {shows} for {text!r}",
    )


def log(b: Driver, kind: str, body: str = "") -> None:
    """Log an entry from the contact page (fill, then one tap on the kind)."""
    b.fill("#log-body", body)
    b.tap(f'#timeline button[name=kind][value="{kind}"]')


def test_a_rep_finds_a_contact_and_logs_a_call_in_two_taps(engine: Driver, live_server):
    rep, alice, _ = seed(live_server)
    sign_in(engine, rep.email, rep.password)
    # The session cookie is HttpOnly: the page cannot read it.
    assert "crm_session" not in engine.js("document.cookie")
    engine.tap('header a[href="/contacts"]')  # a rep starts on Today
    engine.wait("location.pathname === '/contacts'", "the contact list")
    engine.wait(count_is("#contact-list li.row", 3), "the three contacts listed")
    engine.js("window.__samePage = true")
    search(engine, "hartl", ["Alice Hartley"])
    assert engine.js("location.search") == "?q=hartl"
    no_sideways_scroll(engine)

    # Tap one: the contact; tap two: Call.
    engine.tap("#contact-list li.row a.row-main")
    engine.wait(has_text("h1", "Alice Hartley"), "Alice's page")
    assert engine.js("location.pathname") == f"/contacts/{alice}"
    engine.wait(count_is(ENTRIES, 1), "Alice's older visit")
    height = engine.js(
        "document.querySelector('#timeline button[value=call]').getBoundingClientRect().height"
    )
    assert height >= 44, f"the Call chip is too small to tap: {height} px"
    engine.tap("#timeline button[name=kind][value=call]")
    engine.wait(has_text("#timeline .flash-success", "Call logged."), "Call logged.")
    engine.wait(count_is(ENTRIES, 2), "the call on the timeline")
    assert engine.text(f"{ENTRIES} .kind").strip() == "Call"
    assert "Rita Rep" in engine.text(ENTRIES)
    stored = [v for v in activities(live_server).values() if v[0] == alice]
    assert sorted(v[2] for v in stored) == ["call", "visit"]
    assert engine.js("window.__samePage") is True, "a tap reloaded the whole page"
    no_sideways_scroll(engine)

    # The PWA: its manifest, and the service worker at the root.
    assert engine.js("document.querySelector('head link[rel=manifest]').getAttribute('href')") == (
        "/manifest.webmanifest"
    )
    manifest = engine.js("fetch('/manifest.webmanifest').then((r) => r.ok ? r.json() : null)")
    assert manifest and manifest["start_url"] and manifest["display"] == "standalone"
    assert controlled(engine) == f"{engine.origin}/"
    assert engine.errors() == []


def test_entries_logged_with_no_connection_are_sent_once_when_it_returns(
    engine: Driver, live_server
):
    rep, alice, bob = seed(live_server)
    seeded = activities(live_server)
    sign_in(engine, rep.email, rep.password)
    controlled(engine)
    # No Background Sync in Firefox or WebKit: the page has to send the outbox itself.
    has_sync = engine.js("'SyncManager' in window")
    assert has_sync is (engine.name == "chromium")
    # The rep's own contacts are saved for offline reading without being opened.
    engine.wait("Offline.library().then((l) => l.length === 3)", "own contacts saved", timeout=30)

    engine.offline(True)
    engine.open(f"/contacts/{bob}")
    engine.wait(has_text("h1", "Bob Stone"), "Bob's saved page")
    engine.wait(has_text(".saved-copy", "Saved copy from"), "marked as a saved copy")
    plan = [(bob, "call", "No answer"), (bob, "note", "Call back Monday"), (alice, "visit", "")]
    for n, (contact, kind, body) in enumerate(plan, start=1):
        if contact != plan[n - 2][0]:
            engine.open(f"/contacts/{contact}")
            engine.wait(has_text(".saved-copy", "Saved copy from"), "a saved copy")
        log(engine, kind, body)
        engine.wait(
            has_text("#sync-status", f"{n} entr{'y' if n == 1 else 'ies'} waiting to send"),
            f"{n} waiting",
        )
    engine.wait(count_is(PENDING, 1), "Alice's visit shown as waiting")
    assert "Waiting to send" in engine.text(PENDING)
    no_sideways_scroll(engine)
    kept = engine.js("Offline.entries()")
    assert [(e["contactId"], e["kind"], e["state"]) for e in kept] == [
        (bob, "call", "waiting"),
        (bob, "note", "waiting"),
        (alice, "visit", "waiting"),
    ]
    assert activities(live_server) == seeded

    # The connection returns. Chromium's page hears `online`. WebKit's, behind the proxy,
    # knows nothing until it tries again: at the next page load. So does Firefox's: its
    # emulation over BiDi sends no `online` to a document loaded while offline.
    engine.offline(False)
    if engine.name != "chromium":
        engine.open(f"/contacts/{alice}")
    engine.wait(
        f"/{ALL_SENT}/.test(document.querySelector('#sync-status').textContent.trim())",
        "everything sent",
        timeout=30,
        show="document.querySelector('#sync-status').textContent",
    )
    engine.wait(count_is(PENDING, 0), "nothing shown as waiting")
    assert engine.js("Offline.entries()") == []
    new = {k: v for k, v in activities(live_server).items() if k not in seeded}
    assert len(new) == 3, "each entry stored exactly once"
    for entry in kept:
        contact_id, author_id, kind, body, occurred_at, created_at = new[entry["uuid"]]
        assert (contact_id, author_id, kind, body) == (
            entry["contactId"],
            rep.id,
            entry["kind"],
            entry["body"],
        )
        # The time it was logged, not the time it arrived.
        assert occurred_at == datetime.fromisoformat(entry["occurredAt"])
        assert created_at > occurred_at

    # The same outbox replayed: answered with the stored records, nothing added.
    engine.js(f"Promise.all({json.dumps(kept)}.map((e) => Offline.add(e)))")
    engine.js("Offline.flush()")
    assert engine.js("Offline.entries()") == []
    assert {k: v for k, v in activities(live_server).items() if k not in seeded} == new
    assert [
        e for e in engine.errors() if "Failed to load" not in e and "NetworkError" not in e
    ] == []


def tasks_of(live_server: LiveServer) -> list[tuple[str, str, object]]:
    with live_server.app.app_context():
        return [(t.title, t.status, t.done_at) for t in db.session.scalars(select(Task))]


def test_a_task_ticked_done_on_today_with_no_connection_is_stored_once(engine: Driver, live_server):
    """Today is saved on the phone with the script its ticks need (not precached: kept
    with the saved page); ticked offline, the task waits, and goes out once."""
    rep, alice, _ = seed(live_server)
    with live_server.app.app_context():
        db.session.add(
            Task(
                uuid=str(uuid.uuid4()),
                title="Bring the contract",
                due_at=utcnow() + timedelta(hours=1),
                time_zone="UTC",
                assignee_id=rep.id,
                created_by_id=rep.id,
                contact_id=alice,
            )
        )
        db.session.commit()
    sign_in(engine, rep.email, rep.password)
    assert engine.js("location.pathname") == "/today"
    controlled(engine)
    engine.wait(
        "caches.open(Offline.PAGES).then((c) => c.match(location.origin + '/today'))"
        ".then((r) => !!r)",
        "Today saved on the phone",
        timeout=30,
    )
    engine.wait("caches.match('/static/js/tasks.js').then((r) => !!r)", "tasks.js kept")

    engine.offline(True)
    engine.open("/today")
    engine.wait(has_text(".saved-copy", "Saved copy from"), "Today's saved copy")
    engine.tap('button[aria-label="Done: Bring the contract"]')
    engine.wait(has_text("li.task .task-state", "Done · waiting to send"), "the tick waits")
    no_sideways_scroll(engine)
    assert [t[1] for t in tasks_of(live_server)] == ["todo"]

    engine.offline(False)
    if engine.name != "chromium":  # no `online` for them here (see the test above)
        engine.open("/today")
    engine.wait(
        f"/{ALL_SENT}/.test(document.querySelector('#sync-status').textContent.trim())",
        "everything sent",
        timeout=30,
        show="document.querySelector('#sync-status').textContent",
    )
    ((title, state, done_at),) = tasks_of(live_server)
    assert (title, state) == ("Bring the contract", "done") and done_at is not None
    assert engine.js("Offline.entries()") == []
    assert [
        e for e in engine.errors() if "Failed to load" not in e and "NetworkError" not in e
    ] == []


def test_the_page_retries_with_backoff_while_the_server_cannot_be_reached(
    engine: Driver, live_server
):
    """With no `online` event (the proxy cut, as a weak signal in Safari), the page's own
    retry sends what waits a few seconds after the server is back, with nothing done;
    entries logged meanwhile do not push that retry further out."""
    rep, alice, _ = seed(live_server)
    seeded = activities(live_server)
    sign_in(engine, rep.email, rep.password)
    controlled(engine)
    engine.open(f"/contacts/{alice}")
    engine.wait(has_text("h1", "Alice Hartley"), "Alice's page")
    cut = engine.cut
    cut.down()
    bodies = ["Went through the plan", "Left the price list", "Booked a visit"]
    for n, body in enumerate(bodies, start=1):
        log(engine, "meeting", body)
        engine.wait(has_text("#sync-status", f"{n} entr"), f"{n} waiting")
        # Each tap tried at once, and failed.
        engine.wait(has_text("#timeline .log-status", "will be sent when there is signal"))
    engine.wait(has_text("#sync-status", "cannot be reached"), "the server out of reach")
    cut.up()
    engine.wait(
        f"/{ALL_SENT}/.test(document.querySelector('#sync-status').textContent.trim())",
        "sent by the page's retry",
        timeout=30,
        show="document.querySelector('#sync-status').textContent",
    )
    new = {k: v for k, v in activities(live_server).items() if k not in seeded}
    assert sorted(v[3] for v in new.values()) == sorted(bodies)


def inert(b: Driver, injected: str) -> None:
    """Nothing ran and no payload became an element."""
    assert b.js("typeof window.__pwned") == "undefined", f"{b.name}: a payload ran"
    found = b.js(f"[...document.querySelectorAll({json.dumps(injected)})].map((e) => e.outerHTML)")
    assert found == [], f"{b.name}: payload markup reached the DOM: {found}"
    errors = b.errors()
    assert errors == [], f"{b.name}: a CSP violation means something tried to run: {errors}"


def test_hostile_text_stays_inert(engine: Driver, live_server):
    _rep, hostile = seed_hostile_contacts(live_server)
    _, _, items, ids, _, _ = seed_hostile_mentions(live_server)
    # A manager sees the contacts and the inbox (with the hostile source's name).
    manager = live_server.add_user("manager", name="Max Manager")
    sign_in(engine, manager.email, manager.password)
    engine.open("/contacts")
    names = [name for _, name, _ in hostile]
    engine.wait(count_is("#contact-rows li.row", len(names) + 2), "every contact listed")
    titles = engine.js(
        "[...document.querySelectorAll('#contact-rows .row-title')].map((e) => e.textContent)"
    )
    assert set(names) <= set(titles)
    inert(engine, CONTACT_INJECTED)

    # Search results as an htmx fragment.
    search(engine, "pwned", [re.sub(r"\s+", " ", n) for n in names if "pwned" in n])
    inert(engine, CONTACT_INJECTED)

    # A contact page, and a note carrying every payload, in the fragment then the page.
    contact_id, name, _payload = hostile[5]
    engine.open(f"/contacts/{contact_id}")
    engine.wait(has_text("h1", name), "the hostile contact's page")
    inert(engine, CONTACT_INJECTED)
    # A long page: the log chips, scrolled into view as a browser does for a focus or a
    # click (at the bottom edge), land clear of the fixed tab bar (WebKit put them under).
    on_top = engine.js(
        """((b) => { b.scrollIntoView({block: "end"}); const r = b.getBoundingClientRect();
            return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === b;
        })(document.querySelector("#timeline button[value=note]"))"""
    )
    assert on_top, f"{engine.name}: the Note chip scrolled into view is covered"
    log(engine, "note", "\n".join(CONTACT_PAYLOADS))
    engine.wait(has_text("#timeline .flash-success", "Note logged."), "Note logged.")
    body = " ".join(CONTACT_PAYLOADS)
    engine.wait(
        has_text(f"{ENTRIES} .entry-body", body),
        "the note shown as text",
        show=f"document.querySelector('{ENTRIES} .entry-body').textContent",
    )
    inert(engine, CONTACT_INJECTED)
    engine.open(f"/contacts/{contact_id}")
    engine.wait(has_text(f"{ENTRIES} .entry-body", body), "the note shown as text")
    inert(engine, CONTACT_INJECTED)

    # Hostile mentions, in the inbox and on a mention's page.
    engine.open("/inbox/")
    engine.wait(count_is("#mention-list li.row", len(items) + 1), "every mention listed")
    inert(engine, MENTION_INJECTED)
    engine.open(f"/inbox/{ids[1]}")
    engine.wait(has_text(".mention-body", re.sub(r"\s+", " ", items[1].text)), "as text")
    inert(engine, MENTION_INJECTED)
    engine.open("/account")
    engine.wait(has_text("main", manager.email), "still signed in: no payload signed out")
