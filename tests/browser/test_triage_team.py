"""Support as a team, on phones (390 x 844): two people on one mention see each other and
the second reply is held back; the queue shows new items and a woken snooze without a
reload; the round robin and bulk resolve with Undo; an SLA breach reaches the lead; a
correction is shown and counted on the admin's sentiment page."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Page, expect
from redis import Redis
from sqlalchemy import select

from tests.browser.conftest import LiveServer, sign_in
from tests.social.fake_replies import bluesky_replies
from tests.webapp.incoming import incoming
from webapp.extensions import db
from webapp.models import Mention, Notification, SlaPolicy, Source, User
from webapp.models.base import utcnow
from webapp.services import mentions, triage
from workers import jobs

ANGRY = "My machine broke AGAIN. Worst service ever, useless."


def _fast(live: LiveServer) -> None:
    live.app.config["LIVE_POLL_SECONDS"] = 1
    live.app.config["PRESENCE_POLL_SECONDS"] = 1


def _ingest(live: LiveServer, *items) -> list[int]:
    with live.app.app_context():
        stored = mentions.ingest(db.session, list(items)).stored
        db.session.commit()
        return stored


def _no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_two_people_on_one_mention_see_each_other_and_the_second_reply_waits(
    live_server: LiveServer, new_page, redis_url
):
    _fast(live_server)
    live_server.app.config["OUTBOUND_ALLOW_PRIVATE"] = True
    with bluesky_replies() as fake:
        with live_server.app.app_context():
            source = Source(name="Brand on Bluesky", kind="bluesky", config=fake.config)
            db.session.add(source)
            db.session.flush()
            (mention_id,) = mentions.ingest(db.session, [fake.mention(1, ANGRY)], source).stored
            db.session.commit()
        _collide(live_server, new_page, redis_url, mention_id)


def _collide(live_server: LiveServer, new_page, redis_url: str, mention_id: int) -> None:
    Redis.from_url(redis_url).delete(f"crm:presence:mention:{mention_id}")
    ann = live_server.add_user("support", name="Ann Agent")
    bob = live_server.add_user("support", name="Bob Agent")
    ann_page, bob_page = new_page(), new_page()
    sign_in(ann_page, live_server, ann.email, ann.password)
    sign_in(bob_page, live_server, bob.email, bob.password)
    url = f"{live_server.url}/inbox/{mention_id}"
    ann_page.goto(url)
    bob_page.goto(url)
    expect(ann_page.locator("#presence")).to_contain_text("Bob Agent is looking at this too.")
    expect(bob_page.locator("#presence")).to_contain_text("Ann Agent is looking at this too.")
    # Bob starts a reply: Ann sees him writing.
    bob_page.locator("#reply-body").fill("Sorry about that, we are on it.")
    bob_page.locator("#reply-body").dispatch_event("input")
    expect(ann_page.locator("#presence")).to_contain_text("Bob Agent is writing a reply to this.")
    ann_page.locator("#reply-body").fill("Hello! Could you DM us?")
    bob_page.get_by_role("button", name="Send the reply").tap()
    expect(bob_page.locator(".flashes")).to_contain_text("Reply queued")
    # Ann's page hears that the thread changed, and her reply is held back with it.
    expect(ann_page.locator("#presence")).to_contain_text("Something was added to the thread")
    ann_page.get_by_role("button", name="Send the reply").tap()
    expect(ann_page.locator("main")).to_contain_text("Not sent: the thread changed")
    expect(ann_page.locator("main")).to_contain_text("Sorry about that, we are on it.")
    expect(ann_page.locator("#reply-body")).to_have_value("Hello! Could you DM us?")
    _no_sideways_scroll(ann_page)
    # The held-back reply's page is a 409, which the console reports; nothing else.
    assert [e for e in ann_page.console_errors if "409" not in e] == []
    assert not bob_page.console_errors


def test_the_queue_shows_new_items_and_a_woken_snooze_without_a_reload(
    live_server: LiveServer, page: Page
):
    _fast(live_server)
    (first,) = _ingest(live_server, incoming("1", handle="early", text="Where is my order?"))
    support = live_server.add_user("support", name="Sam Support")
    sign_in(page, live_server, support.email, support.password)
    rows = page.locator("#mention-rows li.row")
    expect(rows).to_have_count(1)
    page.locator("a.row-main").first.tap()
    page.get_by_role("button", name="Snooze 1 hour").tap()
    expect(page.locator(".flashes")).to_contain_text("Snoozed until")
    page.goto(f"{live_server.url}/inbox/")
    expect(page.locator("#mention-list")).to_contain_text("all caught up")
    # A new angry mention arrives: it shows up on the open queue, counts and all.
    (angry,) = _ingest(live_server, incoming("2", handle="angry", text=ANGRY))
    expect(page.locator(f'#mention-rows li[data-id="{angry}"]')).to_be_visible()
    expect(page.locator("#inbox-nav")).to_contain_text("Open1")
    # The snooze's time comes; the minute's sweep wakes it and the queue shows it again.
    with live_server.app.app_context():
        db.session.get(Mention, first).snoozed_until = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert jobs.triage_sweep()["woken"] == 1
    expect(page.locator(f'#mention-rows li[data-id="{first}"]')).to_be_visible()
    expect(rows).to_have_count(2)
    _no_sideways_scroll(page)
    assert not page.console_errors


def test_round_robin_then_a_bulk_resolve_undone(live_server: LiveServer, page: Page):
    ids = _ingest(
        live_server,
        *(incoming(str(n), handle=f"fan{n}", text=ANGRY) for n in range(1, 4)),
    )
    support = live_server.add_user("support", name="Sam Support")
    sign_in(page, live_server, support.email, support.password)
    page.get_by_role("button", name="Take new items").tap()
    expect(page.locator(".flashes")).to_contain_text("got 3 waiting items")
    expect(page.locator("#inbox-nav")).to_contain_text("Mine3")
    for mention_id in ids[:2]:
        page.locator(f'li[data-id="{mention_id}"] .pick input').check()
    page.get_by_text("Act on the selected items").tap()
    page.get_by_role("button", name="Resolve").tap()
    expect(page.locator(".flashes")).to_contain_text("Resolved 2 items.")
    expect(page.locator("#mention-rows li.row")).to_have_count(1)
    page.locator(".flashes").get_by_role("button", name="Undo").tap()
    expect(page.locator(".flashes")).to_contain_text("Put back 2 items.")
    expect(page.locator("#mention-rows li.row")).to_have_count(3)
    _no_sideways_scroll(page)


def test_an_sla_breach_reaches_the_lead_and_a_correction_is_counted(
    live_server: LiveServer, new_page
):
    support = live_server.add_user("support", name="Sam Support")
    admin = live_server.add_user("admin", name="Ada Admin")
    with live_server.app.app_context():
        db.session.add(
            SlaPolicy(
                name="Support",
                first_response_minutes=60,
                resolution_minutes=120,
                warn_minutes=15,
                active=True,
                created_at=utcnow(),
            )
        )
        db.session.commit()
    (mention_id,) = _ingest(live_server, incoming("1", handle="fan", text=ANGRY))
    with live_server.app.app_context():
        mention = db.session.get(Mention, mention_id)
        triage.assign(db.session, db.session.get(User, support.id), mention, support.id)
        mention.first_response_due = mention.resolution_due = utcnow() - timedelta(minutes=1)
        db.session.commit()
        assert jobs.triage_sweep()["breached"] == 1
        told = db.session.scalars(select(Notification.user_id)).all()
        assert admin.id in told and support.id in told
    lead = new_page()
    sign_in(lead, live_server, admin.email, admin.password)
    lead.goto(f"{live_server.url}/notifications")
    expect(lead.locator("main")).to_contain_text("@fan")
    lead.locator("main a", has_text="SLA breached").first.tap()
    expect(lead).to_have_url(f"{live_server.url}/inbox/{mention_id}")

    agent = new_page()
    sign_in(agent, live_server, support.email, support.password)
    agent.goto(f"{live_server.url}/inbox/{mention_id}")
    agent.get_by_role("button", name="It is negative").tap()
    expect(agent.locator("#sentiment")).to_contain_text("Corrected to negative by Sam Support")
    lead.goto(f"{live_server.url}/inbox/sentiment")
    expect(lead.locator("main")).to_contain_text(
        "Staff checked 1 mention and kept VADER's label on 1 (100%)."
    )
    _no_sideways_scroll(lead)
