"""Tasks on a phone (390x844, Chromium): a follow-up set with one tap after logging a
call shows on Today; ticked done with no signal it waits on the phone and is stored once
when the signal returns; a push delivered to the service worker shows a notification
with the reminder's tag and counts on the badge."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import controlled, open_place, sign_in
from tests.browser.test_offline import ALL_SENT, app_errors, outbox, status
from webapp.extensions import db
from webapp.models import Activity, Task
from webapp.services import notifications


def _tasks(live_server) -> list[tuple[str, str, object]]:
    with live_server.app.app_context():
        rows = db.session.scalars(select(Task).order_by(Task.id))
        return [(t.title, t.status, t.done_at) for t in rows]


def test_a_follow_up_from_a_logged_call_shows_on_today_and_is_ticked_done_offline_once(
    page, live_server
):
    rep = live_server.add_user("rep", name="Rita Rep")
    contact_id = live_server.add_contact(rep, name="Alice Hartley", phone="+44 20 7946 0018")
    url = live_server.url
    sign_in(page, live_server, rep.email)
    expect(page).to_have_url(re.compile(r"/today$"))
    controlled(page)
    page.goto(f"{url}/contacts/{contact_id}")
    page.locator("#timeline").get_by_role("button", name="Call", exact=True).tap()
    expect(page.locator(".log-status")).to_have_text("Call logged.")
    chips = page.locator("#follow-up")
    expect(chips).to_be_visible()
    chips.get_by_role("button", name="Tomorrow").tap()
    expect(page.locator("#follow-up")).to_contain_text("Follow-up task added (tomorrow).")
    assert [t[:2] for t in _tasks(live_server)] == [("Follow up with Alice Hartley", "todo")]

    open_place(page, "Today")
    coming = page.locator("#g-coming").locator("xpath=..")
    row = coming.locator("li.task", has_text="Follow up with Alice Hartley")
    expect(row).to_contain_text("09:00")

    page.context.set_offline(True)
    row.get_by_role("button", name="Done: Follow up with Alice Hartley").tap()
    expect(row.locator(".task-state")).to_have_text("Done · waiting to send")
    expect(status(page)).to_contain_text("Offline · 1 entry waiting to send")
    page.reload()
    expect(page.locator(".saved-copy")).to_contain_text("Saved copy from")
    expect(row.locator(".task-state")).to_have_text("Done · waiting to send")
    assert _tasks(live_server)[0][1] == "todo"
    (tick,) = outbox(page)
    assert tick["kind"] == "task-done"

    page.context.set_offline(False)
    expect(status(page)).to_have_text(ALL_SENT, timeout=30_000)
    expect(row.locator(".task-state")).to_have_text("Done")
    ((title, state, done_at),) = _tasks(live_server)
    assert state == "done" and done_at is not None

    # The same tick sent again (a replay): still one task, done at the first time.
    page.evaluate("(e) => Offline.add(e)", tick)
    page.evaluate("Offline.flush()")
    assert outbox(page) == []
    assert _tasks(live_server) == [(title, "done", done_at)]
    page.reload()
    expect(page.locator("#g-coming").locator("xpath=..")).not_to_contain_text("Alice Hartley")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert app_errors(page) == []


def test_a_call_with_its_outcome_and_its_follow_up_wait_offline_and_are_stored_once(
    page, live_server
):
    rep = live_server.add_user("rep", name="Rita Rep")
    contact_id = live_server.add_contact(rep, name="Alice Hartley", phone="+44 20 7946 0018")
    sign_in(page, live_server, rep.email)
    controlled(page)
    page.goto(f"{live_server.url}/contacts/{contact_id}")
    page.context.set_offline(True)
    timeline = page.locator("#timeline")
    timeline.get_by_text("No answer").tap()
    timeline.get_by_role("button", name="Call", exact=True).tap()
    expect(page.locator(".log-status")).to_contain_text("saved on this phone")
    page.locator("#follow-up").get_by_role("button", name="In 3 days").tap()
    expect(page.locator(".follow-up-status")).to_contain_text(
        "Follow-up (in 3 days) saved on this phone"
    )
    expect(status(page)).to_contain_text("Offline · 2 entries waiting to send")
    # Only the call waits on the timeline; the follow-up is a task, not an entry.
    expect(page.locator("#timeline-entries li[data-pending]")).to_have_count(1)
    assert _tasks(live_server) == []
    waiting = outbox(page)
    assert sorted(e["kind"] for e in waiting) == ["call", "follow-up"]

    page.context.set_offline(False)
    expect(status(page)).to_have_text(ALL_SENT, timeout=30_000)
    ((title, state, _),) = _tasks(live_server)
    assert (title, state) == ("Follow up with Alice Hartley", "todo")
    with live_server.app.app_context():
        (call,) = db.session.scalars(select(Activity)).all()
        assert (call.kind, call.outcome) == ("call", "no_answer")
    # Both sent again (a replay, as after a lost answer): still one call and one task.
    for entry in waiting:
        page.evaluate("(e) => Offline.add(e)", entry)
    page.evaluate("Offline.flush()")
    assert outbox(page) == []
    assert len(_tasks(live_server)) == 1
    with live_server.app.app_context():
        assert len(db.session.scalars(select(Activity)).all()) == 1
    page.reload()
    expect(page.locator("#timeline")).to_contain_text("No answer")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert app_errors(page) == []


def test_a_delivered_push_shows_a_notification_and_counts_on_the_badge(page, live_server):
    rep = live_server.add_user("rep", name="Rita Rep")
    url = live_server.url
    page.context.grant_permissions(["notifications"], origin=url)
    sign_in(page, live_server, rep.email)
    controlled(page)
    open_place(page, "Notifications")
    expect(page.get_by_role("heading", level=1)).to_have_text("Notifications")
    expect(page.locator("#push-on")).to_be_visible()

    cdp = page.context.new_cdp_session(page)
    registrations = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(event["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    for _ in range(100):  # playwright hands over CDP events while it waits
        if registrations:
            break
        page.wait_for_timeout(100)
    registration = next(r for r in registrations if r["scopeURL"].startswith(url))
    with live_server.app.app_context():
        key = "task-due:7:2026-12-02T09:00:00+00:00"
        notifications.add(db.session, rep.id, key, "task-due", "Call Alice", "Due 09:00", "/tasks")
        db.session.commit()
    payload = json.dumps({"title": "Call Alice", "body": "Due 09:00", "url": "/tasks", "tag": key})
    for _ in range(2):  # the same reminder twice: its tag makes it one notification
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": url, "registrationId": registration["registrationId"], "data": payload},
        )
    badge = page.get_by_role("navigation", name="Main").locator(".unread-count")
    expect(badge).to_have_text("2")
    shown = page.evaluate(
        """() => navigator.serviceWorker.ready
            .then((r) => r.getNotifications())
            .then((ns) => ns.map((n) => (
                { title: n.title, body: n.body, tag: n.tag, url: n.data.url })))"""
    )
    assert shown == [{"title": "Call Alice", "body": "Due 09:00", "tag": key, "url": "/tasks"}]
    assert app_errors(page) == []


def _subscription(endpoint: str) -> dict:
    """A subscription as PushSubscription.toJSON() gives it, with real-shaped keys."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    return {
        "endpoint": endpoint,
        "expirationTime": None,
        "keys": {"p256dh": b64(public), "auth": b64(b"0123456789abcdef")},
    }


def test_a_subscription_the_push_service_replaces_is_replaced_on_the_server(page, live_server):
    """pushsubscriptionchange (the push service rotated this phone's subscription): the
    service worker sends the new one and forgets the old, so reminders keep coming."""
    from webapp.models import PushSubscription, User
    from webapp.services import push

    rep = live_server.add_user("rep", name="Rita Rep")
    old = _subscription("https://fcm.googleapis.com/fcm/send/old-one")
    new = _subscription("https://fcm.googleapis.com/fcm/send/new-one")
    with live_server.app.app_context():
        push.subscribe(db.session, db.session.get(User, rep.id), old, live_server.app.config)
        db.session.commit()
    sign_in(page, live_server, rep.email)
    controlled(page)
    (worker,) = page.context.service_workers
    worker.evaluate(
        """([fresh, oldEndpoint]) => {
            const event = new ExtendableEvent("pushsubscriptionchange");
            const replaced = { endpoint: fresh.endpoint, toJSON: () => fresh };
            Object.defineProperty(event, "newSubscription", { value: replaced });
            const gone = { endpoint: oldEndpoint, options: {} };
            Object.defineProperty(event, "oldSubscription", { value: gone });
            self.dispatchEvent(event);
        }""",
        [new, old["endpoint"]],
    )

    def endpoints() -> list[str]:
        with live_server.app.app_context():
            rows = db.session.scalars(
                select(PushSubscription).where(PushSubscription.user_id == rep.id)
            )
            return sorted(r.endpoint for r in rows)

    for _ in range(100):
        if endpoints() == [new["endpoint"]]:
            break
        page.wait_for_timeout(100)
    assert endpoints() == [new["endpoint"]]
    assert app_errors(page) == []
