"""The layout on a 360 px phone and on a desktop: every place reachable without sideways
scrolling, nothing covered, long words wrapped, Back to where the list was, and the
width used where there is room."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from playwright.sync_api import Page, expect

from social.mention import Mention as Incoming
from tests.browser.conftest import LiveServer, open_place, sign_in
from webapp.extensions import db
from webapp.models import Contact
from webapp.services import contacts, mentions

pytestmark = pytest.mark.browser

SMALL_PHONE = {"viewport": {"width": 360, "height": 740}}
LONG_WORD = ("Wolfeschlegelsteinhausenbergerdorff" * 6)[:200]  # no space in 200 characters
LONG_EMAIL = "a.very.long.address.of.somebody.important@" + "sub." * 12 + "example.com"


def no_sideways_scroll(page: Page, width: int = 360) -> None:
    """The page is no wider than the screen."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def uncovered(page: Page, locator) -> bool:
    """Whether the middle of the element is the element itself (nothing lies over it)."""
    return locator.evaluate(
        """(el) => {
            el.scrollIntoView({ block: "center" });
            const r = el.getBoundingClientRect();
            const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
            return el === hit || el.contains(hit);
        }"""
    )


@pytest.mark.parametrize("role", ["admin", "manager", "rep", "support", "marketer"])
def test_every_place_is_in_reach_on_a_360px_phone(live_server, new_page, role):
    page = new_page(**SMALL_PHONE)
    user = live_server.add_user(role)
    sign_in(page, live_server, user.email, user.password)
    banner = page.get_by_role("banner")
    nav = banner.get_by_role("navigation", name="Main")
    links = nav.get_by_role("link")
    expect(links.first).to_be_visible()
    for i in range(links.count()):
        box = links.nth(i).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360, links.nth(i)
        assert box["height"] >= 44
    account = banner.get_by_role("link", name="Account")
    box = account.bounding_box()
    assert box and box["x"] + box["width"] <= 360
    no_sideways_scroll(page)
    # The header is one slim line, and the sync line says nothing when there is nothing
    # to say (online, nothing waiting).
    header = page.locator("header.bar").bounding_box()
    assert header and header["height"] <= 57
    expect(page.locator("#sync")).to_be_hidden()
    account.tap()
    expect(page).to_have_url(f"{live_server.url}/account")


def test_long_words_wrap_and_nothing_covers_the_actions(live_server, new_page):
    page = new_page(**SMALL_PHONE)
    rep = live_server.add_user("rep")
    contact_id = live_server.add_contact(
        rep,
        name=LONG_WORD,
        email=LONG_EMAIL,
        phone="+44 20 7946 3999",
        address=("1 Harbour Road, Quayside, " + LONG_WORD)[:200],
        company=LONG_WORD,
        notes="See https://example.com/" + "a" * 180,
    )
    sign_in(page, live_server, rep.email, rep.password)
    no_sideways_scroll(page)
    page.goto(f"{live_server.url}/contacts/{contact_id}")
    no_sideways_scroll(page)
    for name in ("Email", "Map", "Note", "Call"):
        button = page.get_by_role("button", name=name).or_(page.get_by_role("link", name=name))
        assert uncovered(page, button.first), f"{name} is covered"
    page.goto(f"{live_server.url}/contacts/{contact_id}/edit")
    no_sideways_scroll(page)


def test_inbox_rows_show_their_time_and_contact_on_a_phone(live_server: LiveServer, new_page):
    page = new_page(**SMALL_PHONE)
    rep = live_server.add_user("rep")
    live_server.add_contact(rep, name="Christabel Montgomery-Fairweather", handle_x="cmf")
    with live_server.app.app_context():
        mentions.ingest(
            db.session,
            [
                Incoming(
                    network="x",
                    external_id="1",
                    author_handle="cmf",
                    author_name=("Christabel Montgomery-Fairweather " + LONG_WORD)[:200],
                    text="Absolutely delighted with the service today, thank you all!",
                    created_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
                )
            ],
        )
        db.session.commit()
    support = live_server.add_user("support")
    sign_in(page, live_server, support.email, support.password)
    row = page.locator("#mention-rows li.row").first
    for part in (row.locator("time"), row.get_by_text("Christabel Montgomery-Fairweather")):
        box = part.last.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360
    sub = row.locator(".row-sub")
    assert sub.evaluate("(el) => el.scrollWidth <= el.clientWidth + 1")
    no_sideways_scroll(page)


def test_a_new_problem_replaces_the_last_logged_message(live_server, page):
    rep = live_server.add_user("rep")
    contact_id = live_server.add_contact(rep, name="Noor Haddad")
    sign_in(page, live_server, rep.email, rep.password)
    page.goto(f"{live_server.url}/contacts/{contact_id}")
    page.get_by_role("button", name="Call").tap()
    status = page.locator(".log-status")
    expect(status).to_have_text("Call logged.")
    page.get_by_role("button", name="Note").tap()
    expect(page.locator("#log-body-error")).to_have_text("Write the note first.")
    expect(status).to_have_text("")


def test_back_returns_to_the_same_place_in_a_long_list(live_server, page):
    rep = live_server.add_user("rep")
    for i in range(130):
        live_server.add_contact(rep, name=f"Person {i:03d}")
    sign_in(page, live_server, rep.email, rep.password)
    open_place(page, "Contacts")  # a rep starts on Today
    rows = page.locator("#contact-rows > li[data-id]")
    expect(rows).to_have_count(50)
    for loaded in (100, 130):
        page.locator("#contact-rows > li.more").scroll_into_view_if_needed()
        expect(rows).to_have_count(loaded)
    expect(page).to_have_url(re.compile(r"[?&]upto=\d+"))
    target = page.get_by_role("link", name=re.compile("^Person 120"))
    target.scroll_into_view_if_needed()
    target.tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Person 120")
    page.go_back()
    expect(rows).to_have_count(130)
    target = page.get_by_role("link", name=re.compile("^Person 120"))
    expect(target).to_be_in_viewport()


def test_a_desktop_puts_the_timeline_beside_the_contact(live_server, new_page):
    page = new_page(viewport={"width": 1280, "height": 900}, is_mobile=False, has_touch=False)
    rep = live_server.add_user("rep")
    contact_id = live_server.add_contact(rep, name="Wide Screen", email="wide@example.com")
    sign_in(page, live_server, rep.email, rep.password)
    nav = page.get_by_role("banner").get_by_role("navigation", name="Main")
    header = page.locator("header.bar").bounding_box()
    contacts_link = nav.get_by_role("link", name="Contacts").bounding_box()
    assert contacts_link["y"] < header["y"] + header["height"]  # in the header, on top
    page.goto(f"{live_server.url}/contacts/{contact_id}")
    details = page.locator(".contact-head").bounding_box()
    timeline = page.locator("#timeline").bounding_box()
    assert timeline["x"] >= details["x"] + details["width"]
    assert abs(timeline["y"] - details["y"]) < 5
    no_sideways_scroll(page, 1280)


def _deal_with_long_words(live_server: LiveServer, owner) -> tuple[int, int]:
    from webapp.models import User
    from webapp.services import deals, once

    contact_id = live_server.add_contact(owner, name=LONG_WORD, company=LONG_WORD)
    with live_server.app.app_context():
        user = db.session.get(User, owner.id)
        stage = deals.open_stages(db.session)[0]
        data = {
            "title": LONG_WORD,
            "amount": "123456789012.50",
            "stage_id": str(stage.id),
            "next_step": LONG_WORD,
            "company": LONG_WORD,
            "expected_close": "2020-01-31",
        }
        contact = contacts.get_contact(db.session, user, contact_id)
        deal, _ = deals.create_deal(db.session, user, contact, data, once.new_key(), "KWD")
        db.session.commit()
        return contact_id, deal.id


@pytest.mark.parametrize("role", ["admin", "rep"])
def test_the_deals_pages_fit_a_360px_phone(live_server: LiveServer, new_page, role):
    page = new_page(**SMALL_PHONE)
    user = live_server.add_user(role)
    contact_id, deal_id = _deal_with_long_words(live_server, user)
    sign_in(page, live_server, user.email, user.password)
    paths = [
        "/deals",
        f"/deals/{deal_id}",
        f"/deals/{deal_id}/edit",
        f"/deals/{deal_id}/lose",
        f"/contacts/{contact_id}",
        f"/contacts/{contact_id}/deals/new",
        "/deals/pipeline",
        "/deals/forecast",
        "/deals/stuck",
        "/deals/team",
    ] + (["/deals/stages"] if role == "admin" else [])
    for path in paths:
        page.goto(f"{live_server.url}{path}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        no_sideways_scroll(page)
    page.goto(f"{live_server.url}/deals")
    card = page.locator(f"#deal-{deal_id}")
    for part in (card.get_by_role("button", name="Move"), card.locator(".deal-handle")):
        box = part.bounding_box()
        assert box and box["x"] + box["width"] <= 360 and box["height"] >= 44
        assert uncovered(page, part)


def test_a_desktop_board_puts_the_stages_side_by_side(live_server: LiveServer, new_page):
    page = new_page(viewport={"width": 1280, "height": 800}, is_mobile=False, has_touch=False)
    manager = live_server.add_user("manager")
    sign_in(page, live_server, manager.email, manager.password)
    page.goto(f"{live_server.url}/deals")
    columns = page.locator("#board > .column")
    expect(columns).to_have_count(4)
    boxes = [columns.nth(i).bounding_box() for i in range(4)]
    assert all(abs(b["y"] - boxes[0]["y"]) < 2 for b in boxes)
    assert all(a["x"] + a["width"] <= b["x"] for a, b in pairwise(boxes))


def _long_task(live_server: LiveServer, owner, contact_id: int, **fields) -> int:
    from uuid import uuid4

    from webapp.models import Task
    from webapp.models.base import utcnow

    with live_server.app.app_context():
        task = Task(
            uuid=str(uuid4()),
            title=LONG_WORD,
            notes=LONG_WORD,
            due_at=utcnow(),
            assignee_id=owner.id,
            created_by_id=owner.id,
            contact_id=contact_id,
            **fields,
        )
        db.session.add(task)
        db.session.commit()
        return task.id


def test_today_tasks_and_notifications_fit_a_360px_phone(live_server, new_page):
    page = new_page(**SMALL_PHONE)
    rep = live_server.add_user("rep")
    contact_id = live_server.add_contact(rep, name=LONG_WORD, phone="+44 20 7946 3999")
    task_id = _long_task(live_server, rep, contact_id)
    _long_task(live_server, rep, contact_id, kind="visit")
    sign_in(page, live_server, rep.email, rep.password)
    for path in ("/today", "/tasks", "/tasks/new", f"/tasks/{task_id}", "/notifications"):
        page.goto(f"{live_server.url}{path}")
        no_sideways_scroll(page)
    page.goto(f"{live_server.url}/today")
    tick = page.get_by_role("button", name=re.compile("^Done: ")).first
    assert uncovered(page, tick)
    assert tick.bounding_box()["height"] >= 44
    admin = new_page(**SMALL_PHONE)
    boss = live_server.add_user("admin")
    sign_in(admin, live_server, boss.email, boss.password)
    admin.goto(f"{live_server.url}/push")
    expect(admin.get_by_role("alert")).to_contain_text("VAPID_SUBJECT is not set")
    no_sideways_scroll(admin)


def test_a_desktop_puts_todays_sections_side_by_side(live_server, new_page):
    page = new_page(viewport={"width": 1280, "height": 900}, is_mobile=False, has_touch=False)
    rep = live_server.add_user("rep")
    sign_in(page, live_server, rep.email, rep.password)
    overdue = page.locator("#g-overdue").bounding_box()
    due = page.locator("#g-due").bounding_box()
    assert due["x"] > overdue["x"] + overdue["width"] and abs(due["y"] - overdue["y"]) < 5
    no_sideways_scroll(page, 1280)


def test_field_pages_fit_a_360px_phone_and_use_a_desktop(live_server: LiveServer, new_page):
    rep = live_server.add_user("rep")
    ids = []
    for i in range(6):
        contact_id = live_server.add_contact(
            rep, name=f"{LONG_WORD[:120]} {i}", company=LONG_WORD, phone="+44 113 496 0001"
        )
        with live_server.app.app_context():
            contact = db.session.get(Contact, contact_id)
            contact.latitude, contact.longitude = 53.80 + i / 1000, -1.55
            db.session.commit()
        ids.append(contact_id)
    call = live_server.add_activity(rep, ids[0], "call", LONG_WORD)
    page = new_page(**SMALL_PHONE)
    sign_in(page, live_server, rep.email, rep.password)
    page.goto(f"{live_server.url}/nearby?latitude=53.8&longitude=-1.55")
    expect(page.locator(".nearby-list > li")).to_have_count(6)
    no_sideways_scroll(page)
    first = page.locator(".nearby-list > li").first
    for name in ("Call", "Map"):
        link = first.get_by_role("link", name=re.compile(f"^{name}"))
        box = link.bounding_box()
        assert box and box["x"] + box["width"] <= 360 and box["height"] >= 44, name
        assert uncovered(page, link), f"{name} is covered"
    page.goto(f"{live_server.url}/contacts/{ids[0]}")
    page.get_by_role("button", name="Check in here").tap()
    expect(page.get_by_role("button", name="Check out").first).to_be_visible()
    no_sideways_scroll(page)
    page.locator("#timeline summary", has_text="When").tap()
    no_sideways_scroll(page)
    page.goto(f"{live_server.url}/activities/{call}/edit")
    no_sideways_scroll(page)

    wide = new_page(viewport={"width": 1280, "height": 900}, is_mobile=False, has_touch=False)
    sign_in(wide, live_server, rep.email, rep.password)
    wide.goto(f"{live_server.url}/nearby?latitude=53.8&longitude=-1.55")
    rows = wide.locator(".nearby-list > li")
    expect(rows).to_have_count(6)
    a, b = rows.nth(0).bounding_box(), rows.nth(1).bounding_box()
    assert abs(a["y"] - b["y"]) < 2 and b["x"] > a["x"] + a["width"] - 2  # side by side
    no_sideways_scroll(wide, 1280)
