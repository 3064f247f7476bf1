"""The installable shell: the manifest as Chromium reads it, installability, the service
worker's scope, and pages with no signal (the last copy, or the offline page)."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, controlled, sign_in

pytestmark = pytest.mark.browser

BRAND_BLUE = "rgb(11, 92, 171)"


def signed_in(page, live_server, contacts=("Ada Lovelace",), others=()):
    """Sign a rep in on a list holding contacts (the rep's own, then others' contacts:
    the phone saves the rep's own ones for offline reading, so they are never "unseen");
    return the rep and the contact ids."""
    rep = live_server.add_user("rep")
    colleague = live_server.add_user("rep")
    ids = [
        live_server.add_contact(owner, name=name, phone="+44 20 7946 0001")
        for owner, names in ((rep, contacts), (colleague, others))
        for name in names
    ]
    sign_in(page, live_server, rep.email, rep.password)
    return rep, ids


def test_manifest_is_served_with_its_type_and_parsed_by_chromium(page, live_server):
    response = page.request.get(f"{live_server.url}/manifest.webmanifest")
    assert response.ok
    assert response.headers["content-type"].startswith("application/manifest+json")
    data = response.json()
    assert data["name"] == "Field CRM"
    assert {(i["sizes"], i["purpose"]) for i in data["icons"]} >= {
        ("192x192", "any"),
        ("512x512", "any"),
        ("512x512", "maskable"),
    }
    for icon in [*data["icons"], {"src": "/static/icons/apple-touch-icon.png"}]:
        assert page.request.get(live_server.url + icon["src"]).headers["content-type"] == (
            "image/png"
        )

    page.goto(f"{live_server.url}/login")
    cdp = page.context.new_cdp_session(page)
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["url"] == f"{live_server.url}/manifest.webmanifest"
    assert manifest["errors"] == []
    assert json.loads(manifest["data"])["start_url"] == "/contacts"
    assert manifest["parsed"]["scope"] == f"{live_server.url}/"


@pytest.fixture
def profile_page(browser, tmp_path):
    """A phone-shaped page on a real profile: Chromium never offers to install from an
    incognito context, which is what every other browser context here is."""
    context = browser.browser_type.launch_persistent_context(
        tmp_path / "profile",
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        **PHONE,
    )
    page = context.pages[0] if context.pages else context.new_page()
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: page.console_errors.append(f"uncaught: {exc}"))
    yield page
    context.close()


def test_chromium_reports_the_app_installable(profile_page, live_server):
    page = profile_page
    signed_in(page, live_server)
    controlled(page)
    cdp = page.context.new_cdp_session(page)
    assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
    assert page.console_errors == []


def test_service_worker_is_registered_for_the_whole_app(page, live_server):
    page.goto(f"{live_server.url}/login")
    assert controlled(page) == f"{live_server.url}/"
    # The shell is precached, so it is there before any page asks for it.
    cached = page.evaluate(
        """async () => {
            const names = await caches.keys();
            const urls = [];
            for (const name of names) {
                for (const r of await (await caches.open(name)).keys()) urls.push(r.url);
            }
            return urls.map((u) => new URL(u).pathname);
        }"""
    )
    assert {"/static/css/app.css", "/static/js/page.js", "/offline"} <= set(cached)
    assert "/static/js/htmx-4.0.1.min.js" in cached
    assert page.console_errors == []


def test_with_no_signal_a_visited_page_comes_from_cache_and_others_show_offline(page, live_server):
    _, (seen, unseen) = signed_in(page, live_server, ("Ada Lovelace",), ("Grace Hopper",))
    controlled(page)
    page.goto(f"{live_server.url}/contacts/{seen}")
    expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()

    page.context.set_offline(True)
    page.goto(f"{live_server.url}/contacts/{seen}")
    expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()
    page.goto(f"{live_server.url}/contacts/{unseen}")
    expect(page.get_by_role("heading", name="You are offline")).to_be_visible()
    # The page is styled from the cached shell.
    expect(page.locator("header.bar")).to_have_css("background-color", BRAND_BLUE)


def test_boosted_taps_and_back_with_no_signal_fall_back_to_the_cache(page, live_server):
    _, (seen, _unseen) = signed_in(page, live_server, ("Ada Lovelace",), ("Grace Hopper",))
    controlled(page)
    page.goto(f"{live_server.url}/contacts")
    # A boosted tap: htmx fetches the whole page, and the worker keeps that copy too.
    page.get_by_role("link", name="Ada Lovelace", exact=True).click()
    expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()

    page.context.set_offline(True)
    # Back: htmx's history restore fails, so app.js navigates and the cache answers.
    page.go_back()
    expect(page.get_by_role("link", name="Grace Hopper", exact=True)).to_be_visible()
    page.get_by_role("link", name="Grace Hopper", exact=True).click()
    expect(page.get_by_role("heading", name="You are offline")).to_be_visible()
    page.get_by_role("link", name="Back to contacts").click()
    page.get_by_role("link", name="Ada Lovelace", exact=True).click()
    expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()
    assert page.url == f"{live_server.url}/contacts/{seen}"


def test_signing_out_forgets_the_cached_pages(page, live_server):
    _, (seen,) = signed_in(page, live_server)
    controlled(page)
    page.goto(f"{live_server.url}/contacts/{seen}")
    expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()
    page.get_by_role("link", name="Account").click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_label("Email")).to_be_visible()

    page.context.set_offline(True)
    page.goto(f"{live_server.url}/contacts/{seen}")
    expect(page.get_by_role("heading", name="You are offline")).to_be_visible()
