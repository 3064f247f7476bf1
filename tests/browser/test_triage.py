"""Support's triage on a phone (390 x 844): from the queue to a sent reply, with a ready
reply typed as /code, assignment, a label correction and resolving; nothing wider than
the screen."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.browser.conftest import LiveServer, sign_in
from tests.social.fake_replies import bluesky_replies
from webapp.extensions import db
from webapp.models import CannedReply, Mention, Reply, Source
from webapp.models.base import utcnow
from webapp.services import mentions
from workers import jobs


def _no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_support_triages_from_the_queue_to_a_sent_reply(live_server: LiveServer, page: Page):
    live_server.app.config["OUTBOUND_ALLOW_PRIVATE"] = True
    support = live_server.add_user("support", name="Sam Support")
    with bluesky_replies() as fake:
        with live_server.app.app_context():
            source = Source(name="Brand on Bluesky", kind="bluesky", config=fake.config)
            db.session.add(source)
            db.session.flush()
            mentions.ingest(
                db.session,
                [
                    fake.mention(1, "@brand love the new grinder, thank you!"),
                    fake.mention(2, "@brand my machine broke AGAIN. Worst service ever, useless."),
                ],
                source,
            )
            db.session.add(
                CannedReply(
                    short_code="sorry",
                    body="Sorry {first_name}! {agent_name} here, on it.",
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
            db.session.commit()
            angry_id = db.session.scalar(select(Mention.id).where(Mention.text.contains("AGAIN")))

        sign_in(page, live_server, support.email, support.password)
        expect(page).to_have_url(f"{live_server.url}/inbox/")
        rows = page.locator("#mention-rows li.row")
        expect(rows).to_have_count(2)
        # The angry one first, saying why.
        expect(rows.first).to_contain_text("broke AGAIN")
        expect(rows.first.locator(".why")).to_contain_text("negative (")
        _no_sideways_scroll(page)
        rows.first.locator("a.row-main").tap()
        expect(page).to_have_url(f"{live_server.url}/inbox/{angry_id}")

        page.get_by_role("button", name="Assign to me").tap()
        expect(page.locator(".flashes")).to_contain_text("Assigned to Sam Support.")

        box = page.get_by_label("Reply on Bluesky to @fan2.bsky.social")
        box.tap()
        box.press_sequentially("/sorry ")
        # The ready reply in place of what was typed, filled in for the author and agent.
        expect(box).to_have_value(re.compile(r"^Sorry Searcher! Sam here, on it\. ?\s*$"))
        page.get_by_role("button", name="Send the reply").tap()
        expect(page.locator(".flashes")).to_contain_text("Reply queued")
        expect(page.locator("#reply .note")).to_contain_text("Queued")
        _no_sideways_scroll(page)

        with live_server.app.app_context():
            reply_id = db.session.scalar(select(Reply.id))
            db.session.rollback()
            assert jobs.send_reply(reply_id)["state"] == "sent"
        assert [r["value"]["text"] for r in fake.replies()] == [
            "@fan2.bsky.social Sorry Searcher! Sam here, on it."
        ]
        page.reload()
        expect(page.locator("#reply .note")).to_contain_text("Sent")
        expect(page.get_by_role("link", name="see it on Bluesky")).to_be_visible()

        page.get_by_label("Reason (optional)").fill("they are angry, not sarcastic")
        page.get_by_role("button", name="It is negative").tap()
        expect(page.locator("#sentiment")).to_contain_text("Corrected to negative by Sam Support")
        page.get_by_role("button", name="Resolve").tap()
        expect(page.locator(".flashes")).to_contain_text("Marked resolved.")
        page.goto(f"{live_server.url}/inbox/")
        expect(rows).to_have_count(1)
        _no_sideways_scroll(page)
