"""A rep in the field on a phone: Nearby from where the phone is (granted, and refused),
check-in then check-out with its duration, and a call logged, given its outcome,
edited, deleted and brought back."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.browser.conftest import LiveServer, controlled, open_place, sign_in
from tests.browser.test_offline import app_errors, eventually, outbox
from webapp.extensions import db
from webapp.models import Activity, Contact
from webapp.models.base import utcnow

pytestmark = pytest.mark.browser

HERE = {"latitude": 53.7997, "longitude": -1.5492, "accuracy": 15}


def _placed(live_server: LiveServer, owner, name: str, lat: float, lon: float, **fields) -> int:
    contact_id = live_server.add_contact(owner, name=name, **fields)
    with live_server.app.app_context():
        contact = db.session.get(Contact, contact_id)
        contact.latitude, contact.longitude = lat, lon
        db.session.commit()
    return contact_id


def _seed(live_server: LiveServer):
    rep = live_server.add_user("rep", name="Rita Rep")
    _placed(live_server, rep, "Far Farm", 53.95, -1.08, phone="+44 1904 000000")
    _placed(live_server, rep, "Corner Shop", 53.8005, -1.5492, phone="+44 113 496 0001")
    _placed(live_server, rep, "Market Hall", 53.7960, -1.5400)
    return rep


def _geo_page(new_page) -> Page:
    return new_page(geolocation=HERE, permissions=["geolocation"])


def test_nearby_lists_the_nearest_first_from_where_the_phone_is(live_server, new_page):
    rep = _seed(live_server)
    page = _geo_page(new_page)
    sign_in(page, live_server, rep.email, rep.password)
    open_place(page, "Nearby")
    expect(page).to_have_url(f"{live_server.url}/nearby")
    page.get_by_role("button", name="Use where I am").tap()

    rows = page.locator(".nearby-list > li")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Corner Shop")
    expect(rows.nth(0).locator(".distance")).to_have_text("90 m")
    expect(rows.nth(1)).to_contain_text("Market Hall")
    expect(rows.nth(1).locator(".distance")).to_have_text("730 m")
    expect(rows.nth(2)).to_contain_text("Far Farm")
    expect(rows.nth(2).locator(".distance")).to_have_text("35 km")
    call = rows.nth(0).get_by_role("link", name="Call Corner Shop")
    expect(call).to_have_attribute("href", "tel:+441134960001")
    expect(rows.nth(0).get_by_role("link", name="Map of Corner Shop")).to_have_attribute(
        "href", re.compile(r"^https://www\.google\.com/maps/search/\?api=1&query=53\.8005")
    )
    expect(page).to_have_url(re.compile(r"/nearby\?latitude=53\.7997&longitude=-1\.5492"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.console_errors == []


def test_a_refused_position_says_so_and_coordinates_still_work(live_server, new_page):
    rep = _seed(live_server)
    page = new_page()  # the site was never granted the position: the browser refuses
    sign_in(page, live_server, rep.email, rep.password)
    page.goto(f"{live_server.url}/nearby")
    page.get_by_role("button", name="Use where I am").tap()
    expect(page.locator("#locate-status")).to_contain_text("Location is blocked for this site")
    expect(page.locator(".nearby-list")).to_have_count(0)

    page.get_by_label("Latitude").fill("53.7960")
    page.get_by_label("Longitude").fill("-1.5400")
    page.get_by_role("button", name="Show the nearest").tap()
    expect(page.locator(".nearby-list > li").first).to_contain_text("Market Hall")
    page.get_by_label("Latitude").fill("123")
    page.get_by_role("button", name="Show the nearest").tap()
    expect(page.locator("#n-latitude-e")).to_have_text(
        "Latitude is a number of degrees from -90 to 90."
    )


def test_check_in_then_check_out_shows_the_duration(live_server, new_page):
    rep = live_server.add_user("rep", name="Rita Rep")
    contact_id = live_server.add_contact(rep, name="Unplaced Depot")
    page = _geo_page(new_page)
    sign_in(page, live_server, rep.email, rep.password)
    page.goto(f"{live_server.url}/contacts/{contact_id}")
    page.get_by_role("button", name="Check in here").tap()

    expect(page.locator("#check-in")).to_contain_text("Checked in since")
    visit = page.locator("#timeline-entries > li.entry-visit")
    expect(visit).to_have_count(1)
    expect(visit.get_by_role("link", name="Checked in here")).to_be_visible()
    # The first check-in placed the contact where the phone was.
    expect(page.get_by_role("link", name="Contacts near Unplaced Depot")).to_be_visible()
    page.locator("#check-in").get_by_role("button", name="Check out").tap()

    expect(page.locator(".flashes")).to_contain_text("Checked out.")
    expect(visit.locator(".duration")).to_have_text(re.compile(r"· \d+ min"))
    expect(page.get_by_role("button", name="Check in here")).to_be_visible()
    with live_server.app.app_context():
        [row] = db.session.scalars(select(Activity)).all()
        assert (row.kind, row.latitude, row.longitude) == ("visit", 53.7997, -1.5492)
        assert row.accuracy_m == 15 and row.ended_at is not None
    assert page.console_errors == []


def test_check_in_with_no_signal_goes_through_the_outbox_with_its_position(live_server, new_page):
    rep = live_server.add_user("rep", name="Rita Rep")
    contact_id = live_server.add_contact(rep, name="Basement Bar")
    page = _geo_page(new_page)
    sign_in(page, live_server, rep.email, rep.password)
    page.goto(f"{live_server.url}/contacts/{contact_id}")
    controlled(page)
    page.context.set_offline(True)
    page.get_by_role("button", name="Check in here").tap()
    expect(page.locator(".check-in-status")).to_have_text(
        "Checked in on this phone; it will be sent when there is signal."
    )
    expect(page.locator("#timeline-entries > li.entry-visit[data-pending]")).to_have_count(1)

    page.context.set_offline(False)

    def stored():
        with live_server.app.app_context():
            return db.session.scalars(select(Activity)).all()

    [visit] = eventually(stored, what="the check-in stored")
    assert (visit.kind, visit.latitude, visit.longitude, visit.accuracy_m) == (
        "visit",
        53.7997,
        -1.5492,
        15,
    )
    expect(page.locator("#timeline-entries > li.entry-visit[data-pending]")).to_have_count(0)
    assert len(stored()) == 1


def test_check_in_and_out_with_no_signal_stores_the_visit_with_its_duration(live_server, new_page):
    rep = live_server.add_user("rep", name="Rita Rep")
    contact_id = live_server.add_contact(rep, name="Basement Bar")
    page = _geo_page(new_page)
    sign_in(page, live_server, rep.email, rep.password)
    page.goto(f"{live_server.url}/contacts/{contact_id}")
    controlled(page)
    page.context.set_offline(True)
    page.get_by_role("button", name="Check in here").tap()
    visit = page.locator("#timeline-entries > li.entry-visit[data-pending]")
    expect(visit).to_have_count(1)
    # The visit is still on the phone; it can be checked out of all the same.
    visit.get_by_role("button", name="Check out").tap()
    expect(visit).to_contain_text("Checked out · waiting to send")
    assert sorted(e["kind"] for e in outbox(page)) == ["check-out", "visit"]

    page.context.set_offline(False)

    def ended():
        with live_server.app.app_context():
            rows = db.session.scalars(select(Activity)).all()
            return rows if rows and rows[0].ended_at is not None else None

    [row] = eventually(ended, what="the visit stored and checked out")
    assert row.kind == "visit" and row.latitude == 53.7997
    assert row.occurred_at <= row.ended_at <= utcnow()
    expect(page.locator("#sync-status")).to_contain_text("nothing waiting to send")
    # Checked out offline from the stored visit's own row too: a second visit.
    page.reload()
    page.get_by_role("button", name="Check in here").tap()
    expect(page.locator("#check-in")).to_contain_text("Checked in since", timeout=15_000)
    page.context.set_offline(True)
    page.locator("#check-in").get_by_role("button", name="Check out").tap()
    expect(page.locator(".check-out-status")).to_contain_text("Checked out on this phone")
    page.context.set_offline(False)

    def both_ended():
        with live_server.app.app_context():
            rows = db.session.scalars(select(Activity)).all()
            return rows if len(rows) == 2 and all(r.ended_at for r in rows) else None

    eventually(both_ended, what="the second visit checked out")
    assert app_errors(page) == []


def test_log_a_call_set_its_outcome_edit_delete_and_undo(live_server, page):
    rep = live_server.add_user("rep", name="Rita Rep")
    contact_id = live_server.add_contact(rep, name="Busy Buyer")
    sign_in(page, live_server, rep.email, rep.password)
    page.goto(f"{live_server.url}/contacts/{contact_id}")
    page.locator("#timeline").get_by_role("button", name="Call", exact=True).tap()
    expect(page.locator("#timeline .flash-success")).to_have_text("Call logged.")

    # The stored entry comes back from the server with its outcome chips.
    page.reload()
    entry = page.locator("#timeline-entries > li.entry-call")
    expect(entry).to_have_count(1)
    entry.get_by_role("button", name="No answer").tap()
    expect(entry.locator(".outcome")).to_have_text("No answer")
    expect(entry.get_by_role("button", name="Reached")).to_have_count(0)

    entry.locator("summary", has_text="Change").tap()
    entry.get_by_role("link", name="Edit").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit call · Busy Buyer")
    page.get_by_label("What happened?").fill("Rang twice, try Friday")
    page.get_by_label("Reached").check()
    page.get_by_role("button", name="Save").tap()
    expect(entry.locator(".entry-body")).to_have_text("Rang twice, try Friday")
    expect(entry.locator(".outcome")).to_have_text("Reached")
    expect(entry.locator(".edited")).to_have_text("· edited")

    entry.locator("summary", has_text="Change").tap()
    entry.get_by_role("button", name="Delete").tap()
    expect(page.locator(".flashes")).to_contain_text("Call deleted.")
    expect(entry).to_have_count(0)
    page.locator(".flashes").get_by_role("button", name="Undo").tap()
    expect(page.locator(".flashes")).to_contain_text("Call restored.")
    expect(entry.locator(".entry-body")).to_have_text("Rang twice, try Friday")
    assert page.console_errors == []


def test_an_entry_logged_for_earlier_keeps_that_time_through_the_outbox(live_server, page):
    rep = live_server.add_user("rep", name="Rita Rep")
    live_server.add_contact(rep, name="Late Logger")
    sign_in(page, live_server, rep.email, rep.password)
    open_place(page, "Contacts")  # a rep starts on Today
    page.get_by_role("link", name="Late Logger").tap()  # a boosted link, as a rep goes
    expect(page.get_by_role("heading", level=1)).to_have_text("Late Logger")
    page.locator("#timeline summary", has_text="When").tap()
    page.get_by_label("When", exact=True).select_option("2h")
    page.locator("#timeline").get_by_role("button", name="Meeting", exact=True).tap()
    expect(page.locator("#timeline .log-status")).to_have_text("Meeting logged.")
    expect(page.get_by_label("When", exact=True)).to_have_value("now")
    with live_server.app.app_context():
        [row] = db.session.scalars(select(Activity)).all()
        ago = utcnow() - row.occurred_at
        assert timedelta(hours=2) - timedelta(minutes=1) < ago < timedelta(hours=2, minutes=1)
    assert page.console_errors == []
