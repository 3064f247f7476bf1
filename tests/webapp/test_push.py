"""Web Push against a local push service that checks the VAPID JWT and decrypts the
payload: our keys made once and shared through the database, the contact refused when
it is a placeholder (and the admin page says so), subscriptions (only push services we
send to), each send with a TTL, its own claims, and 404/410 deleting the subscription;
the in-app list with its unread count."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.pushservice import PushService
from webapp import create_app
from webapp.extensions import db
from webapp.models import AppSecret, Notification, PushSubscription, User
from webapp.models.base import utcnow
from webapp.services import notifications, push

SUBJECT = "mailto:ops@fieldcrm.app"


@pytest.fixture
def service():
    running = PushService().start()
    yield running
    running.stop()


@pytest.fixture
def pushing(app):
    app.config.update(VAPID_SUBJECT=SUBJECT, OUTBOUND_ALLOW_PRIVATE=True)
    return app


def _subscribe(app, user, subscription) -> None:
    with app.app_context():
        push.subscribe(db.session, db.session.get(User, user.id), subscription, app.config)
        db.session.commit()


def _notify(app, user, key="k1", title="Call Ada", url="/tasks/1") -> int:
    with app.app_context():
        row = notifications.add(db.session, user.id, key, "task-due", title, "Due 09:00", url)
        db.session.commit()
        return row.id


@pytest.mark.parametrize(
    "subject",
    [
        "",
        "ops@fieldcrm.app",
        "mailto:me@localhost",
        "mailto:admin@crm.local",
        "mailto:x@site.invalid",
        "mailto:you@example.com",
        "mailto:you@mail.example.org",
        "https://localhost",
        "https://crm.example.net",
        "http://fieldcrm.app",
        "mailto:",
    ],
)
def test_a_placeholder_or_malformed_contact_is_refused(subject):
    assert push.subject_problem(subject)


@pytest.mark.parametrize("subject", [SUBJECT, "https://fieldcrm.app/contact"])
def test_a_real_contact_is_taken(subject):
    assert push.subject_problem(subject) is None


def test_nothing_is_sent_with_a_placeholder_contact_and_the_admin_page_says_why(
    app, client, login, make_user
):
    app.config["VAPID_SUBJECT"] = "mailto:admin@localhost"
    with app.app_context(), pytest.raises(push.PushNotReady, match="placeholder"):
        push.Sender(db.session, app.config)
    login(make_user("admin"))
    page = client.get("/push").get_data(as_text=True)
    assert "Push is not sent" in page and "placeholder" in page and "BadJwtToken" in page
    client.post("/logout")
    login(make_user("rep"))
    assert client.get("/push").status_code == 403


def test_the_key_pair_is_made_once_and_every_app_on_the_database_signs_with_it(app, tmp_path):
    with app.app_context():
        _, first = push.keys(db.session, app.config)
        db.session.commit()
        _, again = push.keys(db.session, app.config)
        assert again == first
        assert db.session.scalar(select(func.count()).select_from(AppSecret)) == 1
    other = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "SECRET_KEY": "other",
            "SECRET_KEY_FROM_DISK": False,
        }
    )
    with other.app_context():
        assert push.keys(db.session, other.config)[1] == first
        db.session.remove()
        db.engine.dispose()


def test_a_push_reaches_the_phone_signed_encrypted_with_a_ttl_and_a_gone_one_is_forgotten(
    pushing, service, make_user
):
    rep = make_user("rep")
    phone = service.subscribe("phone")
    gone = service.subscribe("gone", status=410)
    lost = service.subscribe("lost", status=404)
    for subscription in (phone, gone, lost):
        _subscribe(pushing, rep, subscription)
    note = _notify(pushing, rep, title="Call <Ada>")
    with pushing.app_context():
        sender = push.Sender(db.session, pushing.config)
        sent = sender.send(db.session, [note])
        db.session.commit()
        assert (sent.delivered, sent.gone) == (1, 2)
        left = db.session.scalars(select(PushSubscription.endpoint)).all()
        assert left == [phone["endpoint"]]
        row = db.session.get(Notification, note)
        assert row.pushed_at is not None
        # Pushed once: a second send of the same row sends nothing.
        assert sender.send(db.session, [note]).delivered == 0
    (delivery,) = service.accepted()
    assert delivery.payload == {
        "title": "Call <Ada>",
        "body": "Due 09:00",
        "url": "/tasks/1",
        "tag": "k1",
    }
    assert delivery.ttl == pushing.config["PUSH_TTL_SECONDS"] > 0
    assert delivery.claims["sub"] == SUBJECT and delivery.claims["aud"] == service.origin


def test_each_push_service_gets_its_own_audience(pushing, service, make_user):
    """pywebpush writes aud into the claims it is given: shared, the first service's
    audience would go to the second, which refuses it."""
    second = PushService().start()
    try:
        rep = make_user("rep")
        _subscribe(pushing, rep, service.subscribe("a"))
        _subscribe(pushing, rep, second.subscribe("b"))
        note = _notify(pushing, rep)
        with pushing.app_context():
            sent = push.Sender(db.session, pushing.config).send(db.session, [note])
        assert sent.delivered == 2
        assert [d.claims["aud"] for d in service.accepted()] == [service.origin]
        assert [d.claims["aud"] for d in second.accepted()] == [second.origin]
    finally:
        second.stop()


def test_a_phone_subscribes_only_to_a_push_service_we_send_to(app, client, login, make_user):
    rep = make_user("rep")
    login(rep)
    key = {"p256dh": "B" + "A" * 86, "auth": "A" * 22}
    good = {"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "keys": key}
    assert client.post("/api/push/subscription", json=good).status_code == 201
    assert client.post("/api/push/subscription", json=good).status_code == 201
    for bad in (
        {**good, "endpoint": "https://169.254.169.254/latest"},
        {**good, "endpoint": "http://fcm.googleapis.com/fcm/send/abc"},
        {**good, "endpoint": "https://fcm.googleapis.com.evil.example/x"},
        {**good, "keys": {"p256dh": "short", "auth": "A" * 22}},
        {**good, "keys": {"p256dh": key["p256dh"], "auth": 5}},
        {"endpoint": good["endpoint"]},
        [],
    ):
        answer = client.post("/api/push/subscription", json=bad)
        assert answer.status_code == 422, bad
        assert answer.get_json()["errors"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PushSubscription)) == 1
    assert (
        client.post("/api/push/unsubscribe", json={"endpoint": good["endpoint"]}).get_json()[
            "removed"
        ]
        == 1
    )


def test_the_list_counts_unread_opens_the_target_and_marks_read(app, client, login, make_user):
    rep, other = make_user("rep"), make_user("rep")
    first = _notify(app, rep, "a", "Call <b>Ada</b>", "/tasks/7")
    _notify(app, rep, "b", "Visit Bob", "/tasks/8")
    theirs = _notify(app, other, "c", "Not yours")
    # The same occasion again (a retried job) is no second row.
    with app.app_context():
        assert notifications.add(db.session, rep.id, "a", "task-due", "again") is None
    login(rep)
    page = client.get("/notifications").get_data(as_text=True)
    assert 'aria-label="2 unread"' in page
    assert "Call &lt;b&gt;Ada&lt;/b&gt;" in page and "Not yours" not in page
    opened = client.get(f"/notifications/{first}")
    assert opened.status_code == 303 and opened.headers["Location"].endswith("/tasks/7")
    assert 'aria-label="1 unread"' in client.get("/notifications").get_data(as_text=True)
    assert client.get(f"/notifications/{theirs}").status_code == 404
    client.post("/notifications/read")
    assert "unread-count" not in client.get("/notifications").get_data(as_text=True)


def test_a_notification_never_opens_another_site(app, client, login, make_user):
    rep = make_user("rep")
    note = _notify(app, rep, "x", "Phish", "https://evil.example/")
    login(rep)
    assert client.get(f"/notifications/{note}").headers["Location"].endswith("/notifications")


def test_unpushed_lists_only_what_a_dead_sweep_left(app, make_user):
    rep = make_user("rep")
    _notify(app, rep, "old")
    with app.app_context():
        row = db.session.scalar(select(Notification))
        row.created_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
        assert notifications.unpushed(db.session, utcnow()) == [row.id]
        notifications.mark_pushed(db.session, [row.id])
        assert notifications.unpushed(db.session, utcnow()) == []
    assert uuid  # ids above are the service's own
