"""Deals in a real browser: on a phone, a deal made from a contact, moved with the stage
picker, won, and a loss that needs a reason; on a desktop, the board's drag by the
handle and its keyboard way; a swipe on a card's body scrolls and moves nothing."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, open_place, sign_in
from webapp.extensions import db
from webapp.models import Deal, Stage, User
from webapp.services import deals, once

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}, "is_mobile": False, "has_touch": False}


def _stage_ids(live_server: LiveServer) -> dict[str, int]:
    with live_server.app.app_context():
        return {s.name: s.id for s in db.session.query(Stage)}


def _deal(live_server: LiveServer, deal_id: int) -> Deal:
    with live_server.app.app_context():
        deal = db.session.get(Deal, deal_id)
        db.session.expunge(deal)
        return deal


def _add_deals(live_server: LiveServer, owner, titles, stage="Qualified") -> list[int]:
    stage_id = _stage_ids(live_server)[stage]
    ids = []
    with live_server.app.app_context():
        user = db.session.get(User, owner.id)
        for title in titles:
            data = {"title": title, "amount": "100", "stage_id": str(stage_id)}
            deal, _ = deals.create_deal(db.session, user, None, data, once.new_key(), "EUR")
            ids.append(deal.id)
        db.session.commit()
    return ids


def test_a_rep_makes_moves_and_wins_a_deal_on_a_phone(live_server: LiveServer, page: Page):
    rep = live_server.add_user("rep", name="Rita Rep")
    contact_id = live_server.add_contact(rep, name="Alice Hartley", company="Acme Tools")
    sign_in(page, live_server, rep.email, rep.password)
    page.goto(f"{live_server.url}/contacts/{contact_id}")
    page.get_by_role("link", name="New deal").tap()
    page.get_by_label("Title").fill("Forty ladders")
    page.get_by_label("Amount").fill("2.450,75")
    page.get_by_label("Expected close").fill("2027-03-31")
    expect(page.get_by_label("Company")).to_have_value("Acme Tools")
    page.get_by_role("button", name="Add deal").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Forty ladders")
    expect(page.locator(".deal-amount")).to_have_text("€2,450.75")

    page.goto(f"{live_server.url}/contacts/{contact_id}")
    expect(page.locator("#contact-deals")).to_contain_text("Forty ladders")
    page.goto(f"{live_server.url}/deals")
    card = page.locator(".deal-card", has_text="Forty ladders")
    card.get_by_label("Move Forty ladders to").select_option(label="Proposal sent")
    card.get_by_role("button", name="Move").tap()
    proposal = page.locator(".column", has=page.get_by_role("heading", name="Proposal sent"))
    expect(proposal.locator(".deal-card", has_text="Forty ladders")).to_be_visible()

    proposal.get_by_role("link", name="Forty ladders").tap()
    page.get_by_role("button", name="Mark won").tap()
    expect(page.locator(".stage-badge")).to_have_text("Won")
    deal_id = int(re.search(r"/deals/(\d+)", page.url).group(1))
    assert _deal(live_server, deal_id).closed_at is not None
    assert not page.console_errors


def test_a_loss_needs_a_reason(live_server: LiveServer, page: Page):
    rep = live_server.add_user("rep")
    (deal_id,) = _add_deals(live_server, rep, ["Slipping away"])
    sign_in(page, live_server, rep.email, rep.password)
    page.goto(f"{live_server.url}/deals/{deal_id}")
    page.get_by_role("link", name="Mark lost").tap()
    page.get_by_role("button", name="Mark lost").tap()
    expect(page.get_by_role("alert")).to_have_text("Choose why the deal was lost.")
    assert _deal(live_server, deal_id).closed_at is None
    page.get_by_label("Went with a competitor").check()
    page.get_by_label("Note (optional)").fill("Cheaper, slower")
    page.get_by_role("button", name="Mark lost").tap()
    expect(page.locator(".stage-badge")).to_have_text("Lost")
    deal = _deal(live_server, deal_id)
    assert (deal.lost_reason, deal.lost_note) == ("Went with a competitor", "Cheaper, slower")


def _drag(page: Page, handle, target) -> None:
    """Press the mouse on handle, move to the middle of target in steps, release."""
    start = handle.bounding_box()
    end = target.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
    page.mouse.up()


def test_drag_a_card_by_its_handle_and_move_one_with_the_keys(live_server, new_page):
    page = new_page(**DESKTOP)
    manager = live_server.add_user("manager")
    first, second = _add_deals(live_server, manager, ["Crane hire", "Scaffold"])
    (third,) = _add_deals(live_server, manager, ["Tower lights"], stage="Meeting booked")
    stages = _stage_ids(live_server)
    sign_in(page, live_server, manager.email, manager.password)
    # Reached through its tab (a boosted visit swaps the body only): the board's own
    # stylesheet lays the stages out side by side, its own script makes the handles work.
    open_place(page, "Deals")
    expect(page).to_have_url(re.compile(r"/deals$"))
    qualified, meeting_col = page.locator(".column").nth(0), page.locator(".column").nth(1)
    expect(qualified).to_be_visible()
    assert qualified.bounding_box()["y"] == meeting_col.bounding_box()["y"]
    assert qualified.bounding_box()["x"] < meeting_col.bounding_box()["x"]
    meeting = page.locator(f'.cards[data-stage="{stages["Meeting booked"]}"]')
    # Onto the Meeting booked card's upper half: it goes before Tower lights.
    target = meeting.locator(f"#deal-{third}")
    box = target.bounding_box()
    handle = page.locator(f"#deal-{first} .deal-handle")
    hb = handle.bounding_box()
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 5, steps=12)
    page.mouse.up()
    expect(page.locator("#board-status")).to_have_text("Moved Crane hire to Meeting booked.")
    expect(meeting.locator(".deal-card").first).to_have_id(f"deal-{first}")
    moved = _deal(live_server, first)
    assert moved.stage_id == stages["Meeting booked"]
    assert moved.position < _deal(live_server, third).position
    # Both columns' counts and money follow the move, from the server.
    meeting_sum = page.locator(".column", has=meeting).locator(".column-sum")
    qualified_sum = page.locator(".column").nth(0).locator(".column-sum")
    expect(meeting_sum).to_have_text("2 · €200.00")
    expect(qualified_sum).to_have_text("1 · €100.00")

    # The keyboard: focus Scaffold's handle, right arrow to the next stage.
    page.locator(f"#deal-{second} .deal-handle").focus()
    page.keyboard.press("ArrowRight")
    expect(meeting.locator(f"#deal-{second}")).to_be_visible()
    expect(page.locator(f"#deal-{second} .deal-handle")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(meeting.locator(".deal-card").nth(1)).to_have_id(f"deal-{second}")
    expect(page.locator("#board-status")).to_have_text("Moved Scaffold to Meeting booked.")
    assert _deal(live_server, second).stage_id == stages["Meeting booked"]
    expect(meeting_sum).to_have_text("3 · €300.00")
    expect(qualified_sum).to_have_text("0 · 0")
    order = [_deal(live_server, i).position for i in (first, second, third)]
    assert order == sorted(order)

    # Dropped on Won, the card leaves the board and the deal is won.
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    handle = page.locator(f"#deal-{third} .deal-handle")
    hb = handle.bounding_box()
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    page.mouse.down()
    page.mouse.move(640, 400, steps=4)
    won = page.locator(".drop-won")
    expect(won).to_be_visible()
    wb = won.bounding_box()
    page.mouse.move(wb["x"] + wb["width"] / 2, wb["y"] + wb["height"] / 2, steps=8)
    page.mouse.up()
    expect(page.locator("#board-status")).to_have_text("Won: Tower lights.")
    expect(page.locator(f"#deal-{third}")).to_have_count(0)
    assert _deal(live_server, third).closed_at is not None
    expect(meeting_sum).to_have_text("2 · €200.00")
    expect(qualified_sum).to_have_text("0 · 0")
    assert not page.console_errors


def test_pressing_on_a_card_body_and_dragging_moves_nothing(live_server, new_page):
    page = new_page(**DESKTOP)
    manager = live_server.add_user("manager")
    (deal_id,) = _add_deals(live_server, manager, ["Stays put"])
    stages = _stage_ids(live_server)
    sign_in(page, live_server, manager.email, manager.password)
    page.goto(f"{live_server.url}/deals")
    body = page.locator(f"#deal-{deal_id} .deal-sub").first
    target = page.locator(f'.column[data-stage="{stages["Negotiation"]}"]')
    _drag(page, body, target)
    expect(
        page.locator(f'.cards[data-stage="{stages["Qualified"]}"] #deal-{deal_id}')
    ).to_be_visible()
    assert _deal(live_server, deal_id).stage_id == stages["Qualified"]


def test_a_swipe_on_a_card_scrolls_the_phone_and_moves_nothing(live_server: LiveServer, page: Page):
    rep = live_server.add_user("rep")
    ids = _add_deals(live_server, rep, [f"Deal {i:02d}" for i in range(12)])
    stages = _stage_ids(live_server)
    sign_in(page, live_server, rep.email, rep.password)
    page.goto(f"{live_server.url}/deals")
    card = page.locator(f"#deal-{ids[4]}")
    card.scroll_into_view_if_needed()
    box = page.locator(f"#deal-{ids[4]} .deal-sub").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before = page.evaluate("window.scrollY")
    cdp = page.context.new_cdp_session(page)
    # A real finger: touch events the browser turns into pointer events and a scroll.
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for step in range(1, 11):
        point = {"x": x, "y": y - 30 * step}
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    page.wait_for_timeout(300)  # the scroll settles
    assert page.evaluate("window.scrollY") > before + 200  # the finger went up: the page scrolled
    moved = _deal(live_server, ids[4])
    assert (moved.stage_id, moved.position) == (stages["Qualified"], 5.0)
    cards = page.locator(f'.cards[data-stage="{stages["Qualified"]}"] > .deal-card')
    assert [int(i) for i in cards.evaluate_all("(els) => els.map((e) => e.dataset.id)")] == ids
    expect(page.locator(".deal-card.dragging, .drop-placeholder")).to_have_count(0)
