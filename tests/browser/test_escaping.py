"""Invariant 2 in a real browser: hostile text in contacts and activities shows up as
literal text on the list, in htmx search results, on the contact and edit pages and in
the timeline, and nothing in it runs: no script, no handler, no htmx attribute."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, open_place, sign_in

pytestmark = pytest.mark.browser

PAYLOADS = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    '<a href="javascript:window.__pwned=1">x</a>',
    '<div hx-get="/logout" hx-trigger="load">x</div>',
    '<div hx-post="/logout" hx-trigger="load">x</div>',
    '" autofocus onfocus="window.__pwned=1',
]
# Anything the payloads would create if they reached the DOM as markup.
INJECTED = ", ".join(
    [
        "body script",
        'img[src="x"]',
        "[onerror]",
        "[onfocus]",
        "[autofocus]",
        '[href^="javascript:"]',
        '[hx-trigger="load"]',
        '[hx-get="/logout"]',
        '[hx-post="/logout"]',
    ]
)


def _seed(live_server: LiveServer):
    """A rep, one contact per payload (in every free-text field) and one plain contact."""
    rep = live_server.add_user("rep", name="Rita Rep")
    hostile = []
    for i, payload in enumerate(PAYLOADS, start=1):
        name = f"Eve {i} {payload}"
        contact_id = live_server.add_contact(
            rep,
            name=name,
            company=payload,
            title=payload,
            address=payload,
            phone=f"+1 555 010 000{i}",
            notes="\n".join(PAYLOADS),
            tags=payload if len(payload) <= 40 else "",
        )
        hostile.append((contact_id, name, payload))
    live_server.add_contact(rep, name="Zed Plain", company="Plain Co")
    return rep, hostile


def _assert_inert(page: Page, logout_requests: list[str]) -> None:
    """Nothing ran, no payload became an element, and no request went to /logout."""
    assert page.evaluate("typeof window.__pwned") == "undefined"
    found = page.evaluate(
        "(sel) => [...document.querySelectorAll(sel)].map((el) => el.outerHTML)", INJECTED
    )
    assert found == [], f"payload markup reached the DOM: {found}"
    assert logout_requests == [], f"a payload requested {logout_requests}"
    assert page.console_errors == [], "a CSP violation means something tried to run"


def test_hostile_text_is_shown_literally_and_never_runs(live_server, page):
    rep, hostile = _seed(live_server)
    logout_requests: list[str] = []
    page.on("request", lambda r: "/logout" in r.url and logout_requests.append(r.url))
    sign_in(page, live_server, rep.email, rep.password)
    open_place(page, "Contacts")  # a rep starts on Today

    # The full list page.
    titles = page.locator("#contact-rows .row-title")
    expect(titles).to_have_text([name for _, name, _ in hostile] + ["Zed Plain"])
    for _, name, payload in hostile:
        row = page.locator("#contact-rows li.row", has_text=name)
        expect(row.locator(".row-sub")).to_have_text(f"{payload} · {payload}")
        expect(row.locator("a.icon-button")).to_have_attribute("aria-label", f"Call {name}")
    _assert_inert(page, logout_requests)

    # Search results come back as an htmx fragment.
    page.evaluate("window.__samePage = true")
    search = page.get_by_role("searchbox", name="Search contacts")
    search.fill("pwned")
    expect(page.locator("#contact-rows li.row", has_text="Zed Plain")).to_have_count(0)
    expect(titles).to_have_text([n for _, n, p in hostile if "pwned" in n])
    _assert_inert(page, logout_requests)
    search.fill(PAYLOADS[1])
    expect(titles).to_have_text([hostile[1][1]])
    nothing = PAYLOADS[5] + "<zz"
    search.fill(nothing)
    expect(page.locator("#contact-list")).to_have_text(f"No contact matches “{nothing}”.")
    assert page.evaluate("window.__samePage") is True, "the search reloaded the whole page"
    _assert_inert(page, logout_requests)

    # The same query in the page's search box, rendered into an attribute.
    page.reload()
    expect(search).to_have_value(nothing)
    _assert_inert(page, logout_requests)

    # Each contact page, reached by a tap on its row.
    for contact_id, name, payload in hostile:
        page.goto(f"{live_server.url}/contacts")
        page.locator("#contact-rows li.row", has_text=name).locator("a.row-main").tap()
        expect(page).to_have_url(f"{live_server.url}/contacts/{contact_id}")
        expect(page.get_by_role("heading", level=1)).to_have_text(name)
        expect(page).to_have_title(f"{name} · Field CRM")
        expect(page.locator(".contact-head .sub")).to_have_text(f"{payload} at {payload}")
        expect(page.locator('.details dt:text-is("Address") + dd')).to_have_text(payload)
        expect(page.locator(".details .notes")).to_have_text(" ".join(PAYLOADS))
        _assert_inert(page, logout_requests)

    # The edit page puts every field back into value attributes and a textarea.
    contact_id, name, payload = hostile[5]
    page.goto(f"{live_server.url}/contacts/{contact_id}/edit")
    expect(page.get_by_label("Name", exact=True)).to_have_value(name)
    expect(page.get_by_label("Company", exact=True)).to_have_value(payload)
    expect(page.get_by_label("Address", exact=True)).to_have_value(payload)
    expect(page.get_by_label("Notes", exact=True)).to_have_value("\n".join(PAYLOADS))
    _assert_inert(page, logout_requests)

    # An activity body, first in the htmx response, then in the full page.
    page.goto(f"{live_server.url}/contacts/{contact_id}")
    body = "\n".join(PAYLOADS)
    page.get_by_label("What happened?").fill(body)
    page.locator("#timeline").get_by_role("button", name="Note", exact=True).tap()
    expect(page.locator("#timeline .flash-success")).to_have_text("Note logged.")
    entry = page.locator("#timeline-entries > li.entry").first
    expect(entry.locator(".entry-body")).to_have_text(" ".join(PAYLOADS))
    _assert_inert(page, logout_requests)
    page.reload()
    expect(entry.locator(".entry-body")).to_have_text(" ".join(PAYLOADS))
    _assert_inert(page, logout_requests)

    # Still signed in: neither logout payload fired.
    page.goto(f"{live_server.url}/account")
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.locator("main")).to_contain_text(rep.email)
