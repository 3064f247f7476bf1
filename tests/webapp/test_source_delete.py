"""Deleting a source: asked first, then a soft delete that stops polling at once, with an
Undo for UNDO_MINUTES, and a purge that removes it for good later (its mentions stay);
each step in the audit log. Admins delete; managers only view."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from social import demo
from tests.webapp.incoming import incoming
from webapp.extensions import db
from webapp.models import AuditEvent, Mention, Source
from webapp.models.base import utcnow
from webapp.services import mentions, polls
from workers import jobs


@pytest.fixture
def feed(app) -> int:
    """A demo source that stored one mention; its id."""
    with app.app_context():
        source = Source(name="Kestrel demo", kind="demo", config={"batch": 3})
        db.session.add(source)
        db.session.flush()
        mentions.ingest(db.session, [incoming("1")], source)
        db.session.commit()
        return source.id


def _source(app, source_id: int) -> Source | None:
    with app.app_context():
        source = db.session.get(Source, source_id)
        if source is not None:
            db.session.expunge(source)
        return source


def _age_delete(app, source_id: int, by: timedelta) -> None:
    with app.app_context():
        source = db.session.get(Source, source_id)
        source.deleted_at -= by
        db.session.commit()


def test_deleting_asks_first(app, client, login, make_user, feed):
    login(make_user("admin"))
    show = client.get(f"/sources/{feed}").get_data(as_text=True)
    assert f'href="/sources/{feed}/delete"' in show
    ask = client.get(f"/sources/{feed}/delete")
    html = ask.get_data(as_text=True)
    assert ask.status_code == 200 and "Delete Kestrel demo?" in html
    assert "It stops being polled at once" in html and "for 30 minutes" in html
    # A delete posted without the confirmation step (an old page) is asked again.
    r = client.post(f"/sources/{feed}/delete")
    assert r.status_code == 200 and "Delete Kestrel demo?" in r.get_data(as_text=True)
    assert _source(app, feed).deleted_at is None


def test_a_deleted_source_stops_polling_at_once_and_leaves_the_list(
    app, client, login, make_user, feed
):
    login(make_user("admin"))
    r = client.post(f"/sources/{feed}/delete", data={"confirm": "yes"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/sources/")
    listing = client.get("/sources/").get_data(as_text=True)
    assert f'href="/sources/{feed}"' not in listing
    assert "Deleted just now" in listing and f'action="/sources/{feed}/restore"' in listing
    for path in (f"/sources/{feed}", f"/sources/{feed}/edit", f"/sources/{feed}/delete"):
        assert client.get(path).status_code == 404
    assert client.post(f"/sources/{feed}/poll").status_code == 404
    with app.app_context():
        source = db.session.get(Source, feed)
        assert polls.due_sources(db.session, utcnow() + timedelta(days=1)) == []
        # A poll queued before the delete and run after it does nothing.
        called = []
        assert polls.poll(db.session, source, lambda *a: called.append(a)) is None
        assert called == [] and source.last_polled_at is None
        # Its mentions stay in the inbox.
        assert db.session.scalar(select(Mention.source_id)) == feed


def test_a_deleted_webhook_accepts_nothing(app, client, login, make_user):
    login(make_user("admin"))
    client.post("/sources/", data={"uuid": str(uuid.uuid4()), "kind": "webhook", "name": "Hook"})
    with app.app_context():
        hook = db.session.scalar(select(Source))
    client.post(f"/sources/{hook.id}/delete", data={"confirm": "yes"})
    r = client.post(f"/api/webhooks/{hook.id}", data=b"{}", content_type="application/json")
    assert r.status_code == 404


def test_undo_brings_the_source_back_within_the_window(app, client, login, make_user, feed):
    login(make_user("admin"))
    client.post(f"/sources/{feed}/delete", data={"confirm": "yes"})
    _age_delete(app, feed, timedelta(minutes=29))
    r = client.post(f"/sources/{feed}/restore")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/sources/{feed}")
    assert "Restored Kestrel demo." in client.get(r.headers["Location"]).get_data(as_text=True)
    assert _source(app, feed).deleted_at is None
    with app.app_context():
        assert [s.id for s in polls.due_sources(db.session, utcnow())] == [feed]


def test_undo_past_the_window_says_so_and_changes_nothing(app, client, login, make_user, feed):
    login(make_user("admin"))
    client.post(f"/sources/{feed}/delete", data={"confirm": "yes"})
    _age_delete(app, feed, timedelta(minutes=31))
    assert "Deleted just now" not in client.get("/sources/").get_data(as_text=True)
    r = client.post(f"/sources/{feed}/restore", follow_redirects=True)
    assert "can no longer be brought back" in r.get_data(as_text=True)
    assert _source(app, feed).deleted_at is not None


def test_the_purge_removes_it_for_good_later_and_keeps_its_mentions(
    app, client, login, make_user, feed
):
    login(make_user("admin"))
    client.post(f"/sources/{feed}/delete", data={"confirm": "yes"})
    with app.app_context():
        assert jobs.purge_deleted_sources() == 0
    _age_delete(app, feed, jobs.PURGE_AFTER + timedelta(minutes=1))
    with app.app_context():
        assert jobs.purge_deleted_sources() == 1
    assert _source(app, feed) is None
    with app.app_context():
        mention = db.session.scalar(select(Mention))
        assert mention is not None and mention.source_id is None
    assert client.post(f"/sources/{feed}/restore").status_code == 303
    assert _source(app, feed) is None


def test_delete_and_undo_are_in_the_audit_log(app, client, login, make_user, feed):
    admin = make_user("admin", name="Ada Admin")
    login(admin)
    client.post(f"/sources/{feed}/delete", data={"confirm": "yes"})
    client.post(f"/sources/{feed}/restore")
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        rows = [(e.action, e.actor_id, e.record_type, e.record_id, e.record_label) for e in events]
        assert rows == [
            ("source.deleted", admin.id, "source", feed, "Kestrel demo"),
            ("source.restored", admin.id, "source", feed, "Kestrel demo"),
        ]
        deleted_at = events[0].changes["deleted_at"]
        assert deleted_at[0] is None and deleted_at[1] == events[1].changes["deleted_at"][0]
    log = client.get(f"/users/audit?record_type=source&record_id={feed}").get_data(as_text=True)
    assert "deleted the source" in log and "restored the source" in log


def test_managers_view_sources_but_neither_delete_nor_undo(app, client, login, make_user, feed):
    login(make_user("manager"))
    assert client.get("/sources/").status_code == 200
    assert client.get(f"/sources/{feed}").status_code == 200
    assert client.get(f"/sources/{feed}/delete").status_code == 403
    assert client.post(f"/sources/{feed}/delete", data={"confirm": "yes"}).status_code == 403
    assert _source(app, feed).deleted_at is None
    with app.app_context():
        source = db.session.get(Source, feed)
        source.deleted_at = utcnow()
        db.session.commit()
    assert "Deleted just now" not in client.get("/sources/").get_data(as_text=True)
    assert client.post(f"/sources/{feed}/restore").status_code == 403
    assert _source(app, feed).deleted_at is not None


@pytest.mark.parametrize("role", ["rep", "support", "marketer"])
def test_others_may_not_touch_sources(app, client, login, make_user, feed, role):
    login(make_user(role))
    assert client.get(f"/sources/{feed}/delete").status_code == 403
    assert client.post(f"/sources/{feed}/delete", data={"confirm": "yes"}).status_code == 403
    assert client.post(f"/sources/{feed}/restore").status_code == 403
    assert _source(app, feed).deleted_at is None


def test_the_demo_connector_is_what_a_restored_source_polls_again(
    app, client, login, make_user, feed
):
    login(make_user("admin"))
    client.post(f"/sources/{feed}/delete", data={"confirm": "yes"})
    client.post(f"/sources/{feed}/restore")
    with app.app_context():
        source = db.session.get(Source, feed)
        outcome = polls.poll(db.session, source, demo.fetch)
        db.session.commit()
        assert outcome is not None and len(outcome.stored) == 3


def test_the_system_is_named_as_the_actor_of_a_purge(app):
    with app.app_context():
        source = Source(name="Old feed", kind="demo", config={"batch": 3})
        source.deleted_at = utcnow() - jobs.PURGE_AFTER - timedelta(minutes=1)
        db.session.add(source)
        db.session.commit()
        assert jobs.purge_deleted_sources() == 1
    with app.app_context():
        (event,) = db.session.scalars(select(AuditEvent)).all()
        assert (event.action, event.actor_id, event.actor_name, event.record_label) == (
            "source.purged",
            None,
            "The system",
            "Old feed",
        )
