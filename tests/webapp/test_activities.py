"""Logging activities: two taps, exactly once, newest first, validated."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Activity
from webapp.models.base import utcnow
from webapp.services import activities, contacts

FRAGMENT = {"HX-Request": "true", "HX-Request-Type": "partial"}


def form_uuid(html: str) -> str:
    return html.split('name="uuid" value="')[1].split('"')[0]


def test_log_a_call_in_one_tap_and_see_it_first(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Kay")
    login(rep)
    page = client.get(f"/contacts/{c.id}").get_data(as_text=True)
    r = client.post(
        f"/contacts/{c.id}/activities", data={"kind": "call", "body": "", "uuid": form_uuid(page)}
    )
    assert r.status_code == 303
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Call logged." in html
    assert '<span class="kind">Call</span>' in html
    with app.app_context():
        stored = db.session.scalars(select(Activity)).all()
        assert [(a.kind, a.author_id, a.contact_id) for a in stored] == [("call", rep.id, c.id)]


def test_a_call_logged_with_its_outcome_keeps_it_and_other_kinds_ignore_it(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Kay")
    login(rep)
    page = client.get(f"/contacts/{c.id}").get_data(as_text=True)
    assert 'name="outcome" value="no_answer"' in page
    for kind in ("call", "visit"):
        data = {"kind": kind, "outcome": "no_answer", "uuid": str(uuid.uuid4())}
        assert client.post(f"/contacts/{c.id}/activities", data=data).status_code == 303
    bad = {"kind": "call", "outcome": "shouted", "uuid": str(uuid.uuid4())}
    r = client.post(f"/contacts/{c.id}/activities", data=bad)
    assert r.status_code == 422
    with app.app_context():
        stored = db.session.scalars(select(Activity).order_by(Activity.id)).all()
        assert [(a.kind, a.outcome) for a in stored] == [("call", "no_answer"), ("visit", None)]
    assert "No answer" in client.get(f"/contacts/{c.id}").get_data(as_text=True)


def test_htmx_log_answers_with_the_timeline_and_a_fresh_form(
    client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Lee")
    login(rep)
    first = form_uuid(client.get(f"/contacts/{c.id}").get_data(as_text=True))
    r = client.post(
        f"/contacts/{c.id}/activities",
        data={"kind": "visit", "body": "Checked the stand", "uuid": first},
        headers=FRAGMENT,
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert html.lstrip().startswith('<section id="timeline"')
    assert "Checked the stand" in html
    assert form_uuid(html) != first


def test_resubmitting_the_same_form_stores_once(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Mo")
    login(rep)
    key = str(uuid.uuid4())
    for _ in range(3):
        client.post(
            f"/contacts/{c.id}/activities", data={"kind": "note", "body": "Once", "uuid": key}
        )
    with app.app_context():
        assert db.session.query(Activity).count() == 1


def test_a_uuid_cannot_be_reused_for_another_contact(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    a, b = make_contact(rep, name="A One"), make_contact(rep, name="B Two")
    login(rep)
    key = str(uuid.uuid4())
    client.post(f"/contacts/{a.id}/activities", data={"kind": "call", "uuid": key})
    r = client.post(f"/contacts/{b.id}/activities", data={"kind": "call", "uuid": key})
    assert r.status_code == 422
    with app.app_context():
        assert [x.contact_id for x in db.session.scalars(select(Activity))] == [a.id]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "lunch"}, "Choose call, visit, meeting, email or note."),
        ({"kind": "note", "body": "   "}, "Write the note first."),
        ({"kind": "call", "body": "x" * 5001}, "At most 5000 characters (this has 5001)."),
        ({"kind": "call", "uuid": "not-a-uuid"}, "This form is out of date: reload the page."),
    ],
)
def test_bad_activity_input_is_explained_and_kept(
    app, client, login, make_user, make_contact, data, message
):
    rep = make_user("rep")
    c = make_contact(rep, name="Ned")
    login(rep)
    data = {"uuid": str(uuid.uuid4()), "body": "typed text", **data}
    r = client.post(f"/contacts/{c.id}/activities", data=data, headers=FRAGMENT)
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert message in html
    if len(data["body"]) < 100 and data["body"].strip():
        assert data["body"] in html
    with app.app_context():
        assert db.session.query(Activity).count() == 0


def test_timeline_is_newest_first_and_pages_back(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Olga")
    now = utcnow()
    with app.app_context():
        for i in range(45):
            db.session.add(
                Activity(
                    uuid=str(uuid.uuid4()),
                    contact_id=c.id,
                    author_id=rep.id,
                    kind="note",
                    body=f"entry {i:02d}",
                    occurred_at=now - timedelta(hours=45 - i),
                )
            )
        db.session.commit()
    login(rep)
    html = client.get(f"/contacts/{c.id}").get_data(as_text=True)
    bodies = [
        line.split(">")[1].split("<")[0] for line in html.splitlines() if "entry-body" in line
    ]
    assert bodies == [f"entry {i:02d}" for i in range(44, 24, -1)]
    shown = list(bodies)
    while 'hx-trigger="revealed"' in html:
        url = html.split('hx-get="')[-1].split('"')[0].replace("&amp;", "&")
        html = client.get(url, headers=FRAGMENT).get_data(as_text=True)
        assert "<html" not in html
        shown += [
            line.split(">")[1].split("<")[0] for line in html.splitlines() if "entry-body" in line
        ]
    assert shown == [f"entry {i:02d}" for i in range(44, -1, -1)]


def test_offline_time_is_kept_but_not_the_future_or_long_ago(app, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Pia")
    with app.app_context():
        contact = contacts.get_contact(db.session, rep, c.id)
        when = utcnow() - timedelta(hours=5)
        activity, created = activities.log_activity(
            db.session, rep, contact, "visit", "", str(uuid.uuid4()), occurred_at=when
        )
        assert created and activity.occurred_at == when
        for bad in (utcnow() + timedelta(hours=1), utcnow() - timedelta(days=400)):
            with pytest.raises(activities.ValidationError) as exc:
                activities.log_activity(
                    db.session, rep, contact, "visit", "", str(uuid.uuid4()), bad
                )
            assert "occurred_at" in exc.value.errors


@pytest.mark.parametrize("way", ["form", "api"])
def test_a_double_tap_stores_one_entry_and_answers_both(app, make_user, make_contact, way):
    """Two identical requests at the same moment (a double tap, or the page and the
    service worker sending one entry): one entry, and neither request fails."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from tests.conftest import sign_in

    rep = make_user("rep")
    contact = make_contact(rep, name="Tap Twice")
    taps = [app.test_client(), app.test_client()]
    for tap in taps:
        assert sign_in(tap, rep).status_code == 303
    rounds = 12
    for _ in range(rounds):
        key = str(uuid.uuid4())
        barrier = Barrier(2)

        def send(tap, key=key, barrier=barrier):
            barrier.wait()
            if way == "form":
                return tap.post(
                    f"/contacts/{contact.id}/activities",
                    data={"kind": "call", "body": "twice", "uuid": key},
                ).status_code
            return tap.post(
                "/api/activities",
                json={
                    "uuid": key,
                    "contact_id": contact.id,
                    "kind": "call",
                    "body": "twice",
                    "occurred_at": utcnow().isoformat(),
                },
            ).status_code

        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(pool.map(send, taps))
        expected = [303, 303] if way == "form" else [200, 201]
        assert statuses == expected
    with app.app_context():
        stored = db.session.scalars(select(Activity).where(Activity.contact_id == contact.id)).all()
    assert len(stored) == rounds
