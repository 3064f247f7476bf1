"""The sync API of the phone's outbox: each entry stored once per UUID with the time it was
made, a replay answered with the stored record, refusals that name the entry, JSON 401
instead of a redirect, CSRF from a fresh token; and the own contacts kept offline."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.engine import Engine

from webapp.extensions import db
from webapp.models import Activity, User
from webapp.models.base import utcnow
from webapp.services import activities, auth, contacts, offline


def entry(contact_id: int, **fields) -> dict:
    """An outbox entry as static/js/offline.js sends it."""
    return {
        "uuid": str(uuid.uuid4()),
        "contact_id": contact_id,
        "kind": "visit",
        "body": "Checked the stand",
        "occurred_at": (utcnow() - timedelta(hours=3)).isoformat(),
        **fields,
    }


def stored(app) -> list[Activity]:
    with app.app_context():
        return list(db.session.scalars(select(Activity).order_by(Activity.id)))


def test_an_entry_is_stored_once_with_its_time_and_a_replay_gets_the_same_record(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Ada")
    login(rep)
    made = utcnow().replace(microsecond=123000) - timedelta(days=3, hours=2)
    data = entry(c.id, occurred_at=made.astimezone().isoformat())

    first = client.post("/api/activities", json=data)
    assert first.status_code == 201
    receipt = first.get_json()
    assert receipt["uuid"] == data["uuid"] and receipt["status"] == "stored"
    assert datetime.fromisoformat(receipt["occurred_at"]) == made
    assert first.headers["Cache-Control"] == "no-store"

    for _ in range(2):
        again = client.post("/api/activities", json=data)
        assert again.status_code == 200
        assert again.get_json() == receipt

    (activity,) = stored(app)
    assert (activity.uuid, activity.contact_id, activity.author_id) == (data["uuid"], c.id, rep.id)
    assert activity.occurred_at == made
    assert activity.created_at - activity.occurred_at > timedelta(days=3)


def test_a_replay_after_the_contact_was_deleted_still_gets_its_receipt(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Bo")
    login(rep)
    data = entry(c.id)
    assert client.post("/api/activities", json=data).status_code == 201
    with app.app_context():
        contact = contacts.get_contact(db.session, rep, c.id)
        contacts.delete_contact(db.session, rep, contact)
        db.session.commit()
    # The phone missed the first answer: the entry was stored, so it must leave the outbox.
    r = client.post("/api/activities", json=data)
    assert r.status_code == 200 and r.get_json()["status"] == "stored"
    # A new entry for the deleted contact is refused, and says why.
    fresh = entry(c.id)
    r = client.post("/api/activities", json=fresh)
    assert r.status_code == 404
    assert r.get_json() == {
        "uuid": fresh["uuid"],
        "error": "This contact was deleted while the entry waited, so it was not stored.",
    }
    assert len(stored(app)) == 1


def test_an_unknown_contact_is_404_and_a_forbidden_one_403(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Cy")
    login(rep)
    data = entry(999_999)
    r = client.post("/api/activities", json=data)
    assert r.status_code == 404 and r.get_json()["uuid"] == data["uuid"]

    # The rep's role changed while entries waited: marketers may not log activities.
    with app.app_context():
        db.session.get(User, rep.id).role = "marketer"
        db.session.commit()
    data = entry(c.id)
    r = client.post("/api/activities", json=data)
    assert r.status_code == 403
    assert r.get_json() == {
        "uuid": data["uuid"],
        "error": "You may no longer log entries on this contact, so it was not stored.",
    }
    assert stored(app) == []


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"occurred_at": (utcnow() + timedelta(hours=2)).isoformat()},
            "occurred_at",
            "That time is in the future: check the phone's clock, then fix the time.",
        ),
        (
            {"occurred_at": (utcnow() - timedelta(days=91)).isoformat()},
            "occurred_at",
            "That is more than 90 days ago: fix the time.",
        ),
        (
            {"occurred_at": "2024-05-01T10:00:00"},
            "occurred_at",
            "Give the time with its time zone.",
        ),
        (
            {"occurred_at": "yesterday"},
            "occurred_at",
            "Give the time as an ISO 8601 date and time with its zone.",
        ),
        ({"occurred_at": None}, "occurred_at", "Give the time the entry was made."),
        ({"kind": "lunch"}, "kind", "Choose call, visit, meeting, email or note."),
        ({"kind": "mention"}, "kind", "Choose call, visit, meeting, email or note."),
        ({"kind": "note", "body": "  "}, "body", "Write the note first."),
        ({"body": "x" * 5001}, "body", "At most 5000 characters (this has 5001)."),
        ({"contact_id": "seven"}, "contact_id", "Say which contact this entry is for."),
        ({"contact_id": True}, "contact_id", "Say which contact this entry is for."),
    ],
)
def test_a_bad_entry_is_refused_with_its_message_and_its_uuid(
    app, client, login, make_user, make_contact, fields, field, message
):
    rep = make_user("rep")
    c = make_contact(rep, name="Di")
    login(rep)
    data = {**entry(c.id), **fields}
    r = client.post("/api/activities", json=data)
    assert r.status_code == 422
    assert r.get_json() == {"uuid": data["uuid"], "errors": {field: message}}
    assert stored(app) == []


def test_a_bad_uuid_or_body_is_refused(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Ed")
    login(rep)
    r = client.post("/api/activities", json=entry(c.id, uuid="not-a-uuid"))
    assert r.status_code == 422
    assert r.get_json()["uuid"] == "not-a-uuid"
    assert r.get_json()["errors"] == {"uuid": "This form is out of date: reload the page."}
    r = client.post("/api/activities", data="kind=call", content_type="text/plain")
    assert r.status_code == 400 and r.is_json
    r = client.post("/api/activities", json=["a list"])
    assert r.status_code == 400 and r.is_json
    assert stored(app) == []


def test_a_uuid_belongs_to_one_entry_of_one_author(app, client, login, make_user, make_contact):
    rep, other = make_user("rep"), make_user("rep")
    a, b = make_contact(rep, name="Fi"), make_contact(rep, name="Gus")
    login(rep)
    data = entry(a.id)
    assert client.post("/api/activities", json=data).status_code == 201
    # The same UUID for another contact is not a replay, and never moves the entry.
    r = client.post("/api/activities", json={**data, "contact_id": b.id})
    assert r.status_code == 422 and r.get_json()["errors"] == {
        "uuid": "This entry was already stored elsewhere."
    }
    client.post("/logout")
    login(other)
    r = client.post("/api/activities", json=data)
    assert r.status_code == 422 and r.get_json()["uuid"] == data["uuid"]
    (activity,) = stored(app)
    assert (activity.contact_id, activity.author_id) == (a.id, rep.id)


def test_two_copies_arriving_at_once_store_one(app, client, login, make_user, make_contact):
    """The page and the service worker send the same entry at the same moment: the
    second insert hits the unique UUID and answers with the first one's record."""
    rep = make_user("rep")
    c = make_contact(rep, name="Hal")
    login(rep)
    data = entry(c.id)
    when = datetime.fromisoformat(data["occurred_at"])

    done = []

    def other_copy_commits_first(_conn, _cursor, statement, *_):
        if done or not statement.startswith("INSERT INTO activities"):
            return
        done.append(True)
        with engine.begin() as conn:
            conn.execute(
                insert(Activity.__table__).values(
                    uuid=data["uuid"],
                    contact_id=c.id,
                    author_id=rep.id,
                    kind="visit",
                    body=data["body"],
                    occurred_at=when,
                    created_at=utcnow(),
                )
            )

    with app.app_context():
        engine = db.engine
    event.listen(Engine, "before_cursor_execute", other_copy_commits_first)
    try:
        r = client.post("/api/activities", json=data)
    finally:
        if event.contains(Engine, "before_cursor_execute", other_copy_commits_first):
            event.remove(Engine, "before_cursor_execute", other_copy_commits_first)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["uuid"] == data["uuid"]
    assert [a.uuid for a in stored(app)] == [data["uuid"]]


def test_signed_out_the_api_answers_401_in_json_never_a_redirect(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Ivy")
    for r in (
        client.get("/api/csrf"),
        client.post("/api/activities", json=entry(c.id)),
        client.get("/api/offline/contacts"),
    ):
        assert r.status_code == 401
        assert r.is_json and r.get_json()["signed_in"] is False
        assert "Location" not in r.headers
    # Pages still send people to the sign-in page.
    r = client.get(f"/contacts/{c.id}")
    assert r.status_code == 302 and "/login?next=" in r.headers["Location"]

    # A session ended on another device (sign out everywhere) is the same 401.
    login(rep)
    assert client.get("/api/csrf").status_code == 200
    with app.app_context():
        auth.end_all_sessions(db.session, db.session.get(User, rep.id))
        db.session.commit()
    r = client.post("/api/activities", json=entry(c.id))
    assert r.status_code == 401 and r.is_json
    assert stored(app) == []


@pytest.fixture
def csrf_client(app):
    app.config["WTF_CSRF_ENABLED"] = True
    return app.test_client()


def test_csrf_is_required_and_a_fresh_token_comes_from_the_api(
    app, csrf_client, make_user, make_contact
):
    from tests.conftest import PASSWORD

    rep = make_user("rep")
    c = make_contact(rep, name="Jo")
    client = csrf_client
    https = {"base_url": "https://localhost"}
    page = client.get("/login", **https).get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post(
        "/login",
        data={"email": rep.email, "password": PASSWORD, "csrf_token": token},
        headers={"Referer": "https://localhost/login"},
        **https,
    )
    assert r.status_code == 303

    answer = client.get("/api/csrf", **https)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    fresh = answer.get_json()
    assert fresh["user_id"] == rep.id and fresh["csrf_token"]

    # From the service worker the Referer is its script's URL: same origin, so it passes.
    worker = {"Referer": "https://localhost/sw.js"}
    data = entry(c.id)
    r = client.post("/api/activities", json=data, headers=worker, **https)
    assert r.status_code == 400 and r.is_json and "uuid" not in r.get_json()
    r = client.post(
        "/api/activities",
        json=data,
        headers={"X-CSRFToken": fresh["csrf_token"], "Referer": "https://evil.example/"},
        **https,
    )
    assert r.status_code == 400 and r.is_json
    r = client.post(
        "/api/activities",
        json=data,
        headers={**worker, "X-CSRFToken": fresh["csrf_token"]},
        **https,
    )
    assert r.status_code == 201 and r.get_json()["uuid"] == data["uuid"]
    assert len(stored(app)) == 1


def test_own_contacts_for_offline_reading(app, client, login, make_user, make_contact):
    rep, other = make_user("rep"), make_user("rep")
    quiet = make_contact(rep, name="Quiet One", company="Q Ltd", phone="+44 1")
    busy = make_contact(rep, name="Busy One")
    gone = make_contact(rep, name="Gone One")
    make_contact(other, name="Not Mine")
    with app.app_context():
        user = db.session.get(User, rep.id)
        contact = contacts.get_contact(db.session, user, busy.id)
        activities.log_activity(db.session, user, contact, "call", "", activities.new_uuid())
        contacts.delete_contact(db.session, user, contacts.get_contact(db.session, user, gone.id))
        db.session.commit()
        assert [x.name for x in offline.own_contacts(db.session, user, limit=1)] == ["Busy One"]
    login(rep)
    r = client.get("/api/offline/contacts")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    body = r.get_json()
    assert body["user_id"] == rep.id and body["limit"] == offline.OWN_LIMIT == 200
    assert body["contacts"] == [
        {
            "id": busy.id,
            "name": "Busy One",
            "company": "",
            "phone": "",
            "url": f"/contacts/{busy.id}",
        },
        {
            "id": quiet.id,
            "name": "Quiet One",
            "company": "Q Ltd",
            "phone": "+44 1",
            "url": f"/contacts/{quiet.id}",
        },
    ]


def test_the_service_worker_never_answers_the_api_from_its_cache(client):
    sw = client.get("/sw.js").get_data(as_text=True)
    assert 'if (url.pathname.startsWith("/api/")) return;' in sw
    assert '"/static/js/offline.js"' in sw and 'importScripts("/static/js/offline.js")' in sw


def test_a_check_out_from_the_outbox_ends_the_visit_once_at_the_phones_time(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Depot")
    login(rep)
    visit = entry(c.id, occurred_at=(utcnow() - timedelta(hours=2)).isoformat())
    assert client.post("/api/activities", json=visit).status_code == 201
    at = (utcnow() - timedelta(minutes=50)).replace(microsecond=0)
    out = {"uuid": str(uuid.uuid4()), "visit_uuid": visit["uuid"], "ended_at": at.isoformat()}
    first = client.post("/api/activities/check-out", json=out)
    assert first.status_code == 200 and first.get_json()["status"] == "stored"
    later = {**out, "uuid": str(uuid.uuid4()), "ended_at": utcnow().isoformat()}
    assert client.post("/api/activities/check-out", json=later).status_code == 200
    (row,) = stored(app)
    assert row.ended_at == at
    assert "1 h 10 min" in client.get(f"/contacts/{c.id}").get_data(as_text=True)


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"visit_uuid": "nope"}, 422, "visit_uuid"),
        ({"ended_at": "soon"}, 422, "ended_at"),
        ({"ended_at": "2099-01-01T00:00:00+00:00"}, 422, "ended_at"),
        ({"uuid": 7}, 422, "uuid"),
        ({"visit_uuid": str(uuid.uuid4())}, 404, None),
    ],
)
def test_a_bad_check_out_is_refused_by_name_and_changes_nothing(
    app, client, login, make_user, make_contact, change, status, field
):
    rep = make_user("rep")
    c = make_contact(rep, name="Depot")
    login(rep)
    visit = entry(c.id)
    client.post("/api/activities", json=visit)
    out = {"uuid": str(uuid.uuid4()), "visit_uuid": visit["uuid"], "ended_at": utcnow().isoformat()}
    answer = client.post("/api/activities/check-out", json={**out, **change})
    assert answer.status_code == status
    if field:
        assert field in answer.get_json()["errors"]
    assert stored(app)[0].ended_at is None


def test_only_the_author_checks_out_from_the_outbox_and_only_of_a_visit(
    app, client, login, make_user, make_contact
):
    rep, other = make_user("rep"), make_user("rep")
    c = make_contact(rep, name="Depot")
    login(rep)
    visit, call = entry(c.id), entry(c.id, kind="call")
    client.post("/api/activities", json=visit)
    client.post("/api/activities", json=call)
    out = {"uuid": str(uuid.uuid4()), "visit_uuid": call["uuid"], "ended_at": utcnow().isoformat()}
    assert client.post("/api/activities/check-out", json=out).status_code == 422
    login(other)
    theirs = {**out, "visit_uuid": visit["uuid"]}
    assert client.post("/api/activities/check-out", json=theirs).status_code == 404
    assert [a.ended_at for a in stored(app)] == [None, None]
