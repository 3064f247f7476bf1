"""A field rep on a phone: find a contact by active search, open it, log a call in a tap;
and the same search and logging as plain forms when JavaScript is off."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from tests.browser.conftest import LiveServer, open_place, sign_in
from webapp.extensions import db
from webapp.models import Activity

pytestmark = pytest.mark.browser

# Resolves with the service worker's scope, or null if none is active within 5 seconds
# (navigator.serviceWorker.ready alone would wait forever).
SW_SCOPE = """() => Promise.race([
    navigator.serviceWorker.ready.then((reg) => reg.scope),
    new Promise((resolve) => setTimeout(() => resolve(null), 5000)),
])"""


def _seed(live_server: LiveServer):
    """A rep with three contacts; Alice has an older visit on her timeline."""
    rep = live_server.add_user("rep", name="Rita Rep")
    alice = live_server.add_contact(
        rep, name="Alice Hartley", company="Acme Tools", phone="+44 20 7946 0018"
    )
    live_server.add_contact(rep, name="Bob Stone", company="Granite Ltd", phone="+1 555 010 9999")
    live_server.add_contact(rep, name="Carla Mendes", company="Harbor Foods")
    live_server.add_activity(rep, alice, "visit", "Dropped off samples", ago=timedelta(days=2))
    return rep, alice


def _row(page: Page, name: str):
    return page.locator("#contact-list li.row", has_text=name)


def _search(
    page: Page, text: str, *, shows: list[str], hides: tuple[str, ...] | list[str] = ()
) -> None:
    """Type into the search box; wait until exactly the rows named in shows are listed."""
    page.get_by_role("searchbox", name="Search contacts").fill(text)
    for name in hides:
        expect(_row(page, name)).to_have_count(0)
    for name in shows:
        expect(_row(page, name)).to_be_visible()
    expect(page.locator("#contact-list li.row")).to_have_count(len(shows))


def _entries(page: Page):
    return page.locator("#timeline-entries > li.entry")


def _activity_count(live_server: LiveServer, contact_id: int) -> int:
    with live_server.app.app_context():
        stmt = select(func.count()).where(Activity.contact_id == contact_id)
        return db.session.scalar(stmt)


def test_rep_finds_a_contact_and_logs_a_call_in_one_tap(live_server, page):
    rep, alice = _seed(live_server)
    sign_in(page, live_server, rep.email, rep.password)
    open_place(page, "Contacts")  # a rep starts on Today
    # As `crm up` serves plain http: not Secure (Safari would drop it), HttpOnly and Lax.
    cookie = next(c for c in page.context.cookies() if c["name"] == "crm_session")
    assert not cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    expect(page.locator("#contact-list li.row")).to_have_count(3)
    page.evaluate("window.__samePage = true")

    _search(page, "hartl", shows=["Alice Hartley"], hides=["Bob Stone", "Carla Mendes"])
    expect(page).to_have_url(re.compile(r"/contacts\?q=hartl$"))
    assert page.evaluate("window.__samePage") is True, "the search reloaded the whole page"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    _row(page, "Alice Hartley").locator("a.row-main").tap()
    expect(page).to_have_url(f"{live_server.url}/contacts/{alice}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Alice Hartley")
    expect(_entries(page)).to_have_count(1)
    uuid_before = page.locator("#timeline form.log input[name=uuid]").input_value()

    call = page.locator("#timeline").get_by_role("button", name="Call", exact=True)
    box = call.bounding_box()
    assert box and box["height"] >= 44, f"the Call chip is too small to tap: {box}"
    call.tap()

    expect(page.locator("#timeline .flash-success")).to_have_text("Call logged.")
    expect(_entries(page)).to_have_count(2)
    expect(_entries(page).first.locator(".kind")).to_have_text("Call")
    expect(_entries(page).first).to_contain_text("Rita Rep")
    expect(_entries(page).nth(1).locator(".kind")).to_have_text("Visit")
    # The swapped-in form carries a new client UUID, so the next tap is a new entry.
    assert page.locator("#timeline form.log input[name=uuid]").input_value() != uuid_before
    assert _activity_count(live_server, alice) == 2

    manifest = page.locator('head link[rel="manifest"]')
    expect(manifest).to_have_attribute("href", "/manifest.webmanifest")
    response = page.request.get(f"{live_server.url}/manifest.webmanifest")
    assert response.ok, f"manifest: HTTP {response.status}"
    assert page.evaluate(SW_SCOPE) == f"{live_server.url}/", "no service worker at the root"

    assert page.evaluate("window.__samePage") is True, "a tap reloaded the whole page"
    assert page.console_errors == []


def test_active_search_matches_phone_digits_and_company(live_server, page):
    rep, _ = _seed(live_server)
    sign_in(page, live_server, rep.email, rep.password)
    open_place(page, "Contacts")
    page.evaluate("window.__samePage = true")

    _search(page, "7946", shows=["Alice Hartley"], hides=["Bob Stone", "Carla Mendes"])
    _search(page, "555 010-99", shows=["Bob Stone"], hides=["Alice Hartley"])
    _search(page, "+44 20 79", shows=["Alice Hartley"], hides=["Bob Stone"])
    _search(page, "harbor", shows=["Carla Mendes"], hides=["Alice Hartley"])
    _search(page, "acme tools", shows=["Alice Hartley"], hides=["Carla Mendes"])
    _search(page, "granite", shows=["Bob Stone"], hides=["Alice Hartley"])

    page.get_by_role("searchbox", name="Search contacts").fill("nobody here")
    expect(page.locator("#contact-list")).to_have_text("No contact matches “nobody here”.")
    _search(page, "", shows=["Alice Hartley", "Bob Stone", "Carla Mendes"])

    # "Mine" narrows to the rep's own contacts as soon as it is ticked.
    other = live_server.add_user("rep", name="Otto Other")
    live_server.add_contact(other, name="Olga Others")
    page.reload()
    expect(_row(page, "Olga Others")).to_be_visible()
    page.evaluate("window.__samePage = true")
    page.get_by_label("Mine").check()
    expect(_row(page, "Olga Others")).to_have_count(0)
    expect(page.locator("#contact-list li.row")).to_have_count(3)
    assert "mine=1" in page.url

    assert page.evaluate("window.__samePage") is True, "a search reloaded the whole page"
    assert page.console_errors == []


def test_search_and_logging_work_as_plain_forms_without_javascript(live_server, new_page):
    rep, alice = _seed(live_server)
    page = new_page(java_script_enabled=False)
    sign_in(page, live_server, rep.email, rep.password)
    open_place(page, "Contacts")

    page.get_by_role("searchbox", name="Search contacts").fill("hartl")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/contacts\?q=hartl$"))
    expect(_row(page, "Alice Hartley")).to_be_visible()
    expect(page.locator("#contact-list li.row")).to_have_count(1)
    expect(page.get_by_role("searchbox", name="Search contacts")).to_have_value("hartl")

    _row(page, "Alice Hartley").locator("a.row-main").click()
    expect(page).to_have_url(f"{live_server.url}/contacts/{alice}")
    page.get_by_label("What happened?").fill("Met at the depot")
    page.locator("#timeline").get_by_role("button", name="Visit", exact=True).click()

    # ?logged= offers the follow-up chips for the entry just logged.
    expect(page).to_have_url(f"{live_server.url}/contacts/{alice}?logged=visit#timeline")
    expect(page.locator(".flashes")).to_contain_text("Visit logged.")
    expect(_entries(page)).to_have_count(2)
    expect(_entries(page).first.locator(".kind")).to_have_text("Visit")
    expect(_entries(page).first.locator(".entry-body")).to_have_text("Met at the depot")
    assert _activity_count(live_server, alice) == 2
    assert page.console_errors == []
