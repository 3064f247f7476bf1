"""An admin on a phone invites someone: fills in email, name and role, copies the link
shown once, and the invitee opens it in a browser of their own, sets a password and
lands signed in; with JavaScript and without."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.browser.conftest import LiveServer, open_place, sign_in
from webapp.extensions import db
from webapp.models import User

pytestmark = pytest.mark.browser


def _fits(page: Page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def _script_errors(page: Page) -> list[str]:
    """Console errors but the browser's note of a 4xx answer (a refused password, a spent
    link), which the page shows in words: what is left means a script failed or the
    Content-Security-Policy blocked something."""
    return [e for e in page.console_errors if not e.startswith("Failed to load resource")]


def _tappable(locator) -> None:
    box = locator.bounding_box()
    assert box and box["height"] >= 44 and box["width"] >= 44, f"too small to tap: {box}"


@pytest.mark.parametrize("invitee_js", [True, False], ids=["js", "no-js"])
def test_admin_invites_and_the_invitee_lands_signed_in(
    live_server: LiveServer, new_page, invitee_js
):
    admin = live_server.add_user("admin", name="Ada Admin")
    page = new_page()
    sign_in(page, live_server, admin.email, admin.password)
    open_place(page, "Users")
    expect(page).to_have_url(f"{live_server.url}/users/")

    summary = page.locator("summary", has_text="Invite someone")
    _tappable(summary)
    summary.tap()
    page.get_by_label("Email").fill("nina@example.com")
    page.get_by_label("Name").fill("Nina Newcomer")
    page.get_by_label("Role").select_option("support")
    button = page.get_by_role("button", name="Make an invite link")
    _tappable(button)
    button.tap()

    link_box = page.get_by_label("Copy this link and send it to nina@example.com")
    expect(link_box).to_be_visible()
    link = link_box.input_value()
    assert re.fullmatch(re.escape(live_server.url) + r"/users/join/[\w-]{40,}", link), link
    _fits(page, 390)
    page.set_viewport_size({"width": 360, "height": 780})
    _fits(page, 360)
    revoke = page.get_by_role("button", name="Revoke the link for nina@example.com")
    _tappable(revoke)
    # Shown once: the next visit has no link.
    page.reload()
    expect(page.get_by_label("Copy this link and send it to nina@example.com")).to_have_count(0)
    expect(page.locator("body")).to_contain_text("Invite as support")
    assert page.console_errors == []

    invitee = new_page(java_script_enabled=invitee_js)
    invitee.goto(link)
    expect(invitee.get_by_role("heading", name="Welcome, Nina Newcomer")).to_be_visible()
    _fits(invitee, 390)
    invitee.get_by_label("New password").fill("too short")
    invitee.get_by_role("button", name="Set password and sign in").tap()
    expect(invitee.locator("#e-password")).to_have_text("Use at least 10 characters.")
    invitee.get_by_label("New password").fill("nina's own passphrase")
    submit = invitee.get_by_role("button", name="Set password and sign in")
    _tappable(submit)
    submit.tap()

    # Support staff start on the inbox.
    expect(invitee).to_have_url(f"{live_server.url}/inbox/")
    expect(invitee.locator(".flashes")).to_contain_text("Welcome, Nina Newcomer")
    expect(invitee.get_by_role("banner").get_by_role("link", name="Account")).to_be_visible()
    with live_server.app.app_context():
        user = db.session.scalar(select(User).where(User.email == "nina@example.com"))
        assert (user.name, user.role) == ("Nina Newcomer", "support")
    # The link is spent: opened again, it says so.
    again = new_page()
    again.goto(link)
    expect(again.locator("[role=alert]")).to_contain_text("This link was used already")
    assert _script_errors(invitee) == [] and _script_errors(again) == []
