"""The rep in the field, through the pages: Nearby, check-in and check-out, contact
coordinates, logging at an earlier time, a call's outcome, editing and deleting one's
own entries with Undo."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Activity, Contact
from webapp.models.base import utcnow


def _locate(app, contact_id, lat, lon):
    with app.app_context():
        contact = db.session.get(Contact, contact_id)
        contact.latitude, contact.longitude = lat, lon
        db.session.commit()


def _activities(app, contact_id=None):
    with app.app_context():
        stmt = select(Activity).order_by(Activity.id)
        if contact_id:
            stmt = stmt.where(Activity.contact_id == contact_id)
        rows = db.session.scalars(stmt).all()
        for a in rows:
            db.session.expunge(a)
        return rows


def _log(client, contact_id, kind="call", **extra):
    data = {"kind": kind, "body": "", "uuid": str(uuid.uuid4()), **extra}
    return client.post(f"/contacts/{contact_id}/activities", data=data)


# Nearby


def test_nearby_lists_own_contacts_nearest_first_with_call_and_map(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    far = make_contact(rep, name="Far Away", phone="+44 113 496 0000")
    near = make_contact(rep, name="<b>Near</b> & Co", phone="+44 113 496 0001")
    other = make_contact(make_user("rep"), name="Someone Elses")
    _locate(app, far.id, 53.90, -1.55)
    _locate(app, near.id, 53.8005, -1.5492)
    _locate(app, other.id, 53.7998, -1.5492)
    login(rep)
    html = client.get("/nearby?latitude=53.7997&longitude=-1.5492").get_data(as_text=True)
    assert html.index("&lt;b&gt;Near&lt;/b&gt; &amp; Co") < html.index("Far Away")
    assert "<b>Near</b>" not in html
    assert "Someone Elses" not in html
    assert "90 m" in html and "11 km" in html
    assert 'href="tel:+441134960001"' in html
    assert "maps/search/?api=1&amp;query=53.800500%2C-1.549200" in html
    everyone = client.get("/nearby?latitude=53.7997&longitude=-1.5492&all=1").get_data(as_text=True)
    assert everyone.index("Someone Elses") < everyone.index("Far Away")


def test_nearby_without_a_place_asks_for_one_and_the_nav_has_it(client, login, make_user):
    login(make_user("rep"))
    r = client.get("/nearby")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "Use where I am" in html and 'name="latitude"' in html
    assert 'href="/nearby"' in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"latitude": "91", "longitude": "0"}, "Latitude is a number of degrees"),
        ({"latitude": "nan", "longitude": "0"}, "Latitude is a number of degrees"),
        ({"latitude": "10", "longitude": "-inf"}, "Longitude is a number of degrees"),
        ({"latitude": "10"}, "Give the longitude"),
        ({"latitude": "10", "longitude": "1", "accuracy_m": "-5"}, "Accuracy is a number"),
    ],
)
def test_nearby_refuses_bad_coordinates_clearly(client, login, make_user, query, message):
    login(make_user("rep"))
    r = client.get("/nearby", query_string=query)
    assert r.status_code == 422
    assert message in r.get_data(as_text=True)


def test_nearby_centres_on_a_contact(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    centre = make_contact(rep, name="Centre Point")
    close = make_contact(rep, name="Close By")
    unplaced = make_contact(rep, name="Unplaced")
    _locate(app, centre.id, 51.5, -0.12)
    _locate(app, close.id, 51.501, -0.12)
    login(rep)
    html = client.get(f"/nearby?contact={centre.id}").get_data(as_text=True)
    assert "nearest to Centre Point" in " ".join(html.split())
    assert "Close By" in html and "110 m" in html
    r = client.get(f"/nearby?contact={unplaced.id}")
    assert r.status_code == 422
    assert "Unplaced has no coordinates yet" in r.get_data(as_text=True)
    assert client.get("/nearby?contact=999999").status_code == 404


def test_support_staff_have_no_nearby(client, login, make_user):
    login(make_user("support"))
    assert client.get("/nearby?latitude=1&longitude=1").status_code == 403
    assert 'href="/nearby"' not in client.get("/inbox/").get_data(as_text=True)


# Check-in and check-out


def _check_in(client, contact_id, key=None, **position):
    data = {"uuid": key or str(uuid.uuid4()), **position}
    return client.post(f"/contacts/{contact_id}/check-in", data=data)


def test_check_in_stamps_the_visit_and_locates_the_contact_once(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Visited")
    login(rep)
    key = str(uuid.uuid4())
    for _ in range(2):
        r = _check_in(client, c.id, key, latitude="53.8", longitude="-1.55", accuracy_m="12")
        assert r.status_code == 303
    [visit] = _activities(app, c.id)
    assert (visit.kind, visit.latitude, visit.longitude, visit.accuracy_m) == (
        "visit",
        53.8,
        -1.55,
        12.0,
    )
    with app.app_context():
        contact = db.session.get(Contact, c.id)
        assert (contact.latitude, contact.longitude) == (53.8, -1.55)
        assert contact.located_at is not None
    # A second check-in elsewhere leaves the contact where it is.
    _check_in(client, c.id, latitude="50", longitude="0", accuracy_m="5")
    with app.app_context():
        assert db.session.get(Contact, c.id).latitude == 53.8


def test_a_poor_fix_does_not_place_the_contact(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Fuzzy")
    login(rep)
    _check_in(client, c.id, latitude="53.8", longitude="-1.55", accuracy_m="850")
    [visit] = _activities(app, c.id)
    assert visit.accuracy_m == 850
    with app.app_context():
        assert db.session.get(Contact, c.id).latitude is None


def test_check_in_with_a_bad_position_stores_nothing(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Nobody")
    login(rep)
    r = _check_in(client, c.id, latitude="95", longitude="0", accuracy_m="5")
    assert r.status_code == 422
    assert "Latitude is a number of degrees" in r.get_data(as_text=True)
    assert _activities(app, c.id) == []


def test_check_out_shows_the_duration_and_a_second_tap_changes_nothing(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Long Visit")
    login(rep)
    _check_in(client, c.id, latitude="53.8", longitude="-1.55", accuracy_m="10")
    [visit] = _activities(app, c.id)
    with app.app_context():
        row = db.session.get(Activity, visit.id)
        row.occurred_at = utcnow() - timedelta(minutes=25)
        db.session.commit()
    page = client.get(f"/contacts/{c.id}").get_data(as_text=True)
    assert "Check out" in page and "Check in here" not in page
    assert client.post(f"/activities/{visit.id}/check-out").status_code == 303
    [ended] = _activities(app, c.id)
    again = client.post(f"/activities/{visit.id}/check-out")
    assert again.status_code == 303
    assert _activities(app, c.id)[0].ended_at == ended.ended_at
    page = client.get(f"/contacts/{c.id}").get_data(as_text=True)
    assert "· 25 min" in page
    assert "Check in here" in page


def test_only_the_author_checks_out_and_only_of_a_visit(
    app, client, login, make_user, make_contact
):
    rep, other = make_user("rep"), make_user("rep")
    c = make_contact(rep, name="Shared")
    login(rep)
    _check_in(client, c.id)
    _log(client, c.id, "call")
    visit, call = _activities(app, c.id)
    assert client.post(f"/activities/{call.id}/check-out").status_code == 422
    client.post("/logout")
    login(other)
    assert client.post(f"/activities/{visit.id}/check-out").status_code == 403
    assert _activities(app, c.id)[0].ended_at is None


def test_a_check_in_from_the_outbox_keeps_its_position_and_time(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Offline Visit")
    login(rep)
    at = (utcnow() - timedelta(minutes=40)).isoformat()
    entry = {
        "uuid": str(uuid.uuid4()),
        "contact_id": c.id,
        "kind": "visit",
        "body": "",
        "occurred_at": at,
        "latitude": 53.81,
        "longitude": -1.56,
        "accuracy_m": 20,
    }
    assert client.post("/api/activities", json=entry).status_code == 201
    assert client.post("/api/activities", json=entry).status_code == 200
    [visit] = _activities(app, c.id)
    assert (visit.latitude, visit.longitude, visit.accuracy_m) == (53.81, -1.56, 20.0)
    assert visit.occurred_at == datetime.fromisoformat(at)
    with app.app_context():
        assert db.session.get(Contact, c.id).latitude == 53.81
    bad = {**entry, "uuid": str(uuid.uuid4()), "latitude": "north"}
    r = client.post("/api/activities", json=bad)
    assert r.status_code == 422 and "latitude" in r.get_json()["errors"]
    call = {**entry, "uuid": str(uuid.uuid4()), "kind": "call"}
    assert client.post("/api/activities", json=call).status_code == 422
    assert len(_activities(app, c.id)) == 1


# Coordinates entered


def test_contact_edit_takes_coordinates_and_refuses_bad_ones(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Placed")
    login(rep)
    page = client.get(f"/contacts/{c.id}/edit").get_data(as_text=True)
    assert "Use my position" in page
    data = {"name": "Placed", "latitude": "53.7997", "longitude": "-1.5492"}
    assert client.post(f"/contacts/{c.id}/edit", data=data).status_code == 303
    with app.app_context():
        contact = db.session.get(Contact, c.id)
        assert (contact.latitude, contact.longitude) == (53.7997, -1.5492)
        assert contact.located_at is not None
    r = client.post(
        f"/contacts/{c.id}/edit", data={"name": "Renamed", "latitude": "inf", "longitude": "2"}
    )
    assert r.status_code == 422
    assert "Latitude is a number of degrees" in r.get_data(as_text=True)
    with app.app_context():
        contact = db.session.get(Contact, c.id)
        assert (contact.name, contact.latitude) == ("Placed", 53.7997)
    assert 'value="53.7997"' in client.get(f"/contacts/{c.id}/edit").get_data(as_text=True)


def test_quick_add_takes_coordinates(app, client, login, make_user):
    login(make_user("rep"))
    data = {
        "name": "New Place",
        "latitude": "51.5",
        "longitude": "-0.12",
        "uuid": str(uuid.uuid4()),
    }
    assert client.post("/contacts", data=data).status_code == 303
    with app.app_context():
        contact = db.session.scalar(select(Contact).where(Contact.name == "New Place"))
        assert (contact.latitude, contact.longitude) == (51.5, -0.12)


# Logging at an earlier time


def test_log_an_hour_ago_or_at_a_local_time(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Earlier")
    login(rep)
    assert _log(client, c.id, "call", when="1h").status_code == 303
    local = (datetime.now(UTC) - timedelta(hours=3)).replace(tzinfo=None)
    # A phone two hours ahead of UTC (getTimezoneOffset says -120).
    at = (local + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    assert _log(client, c.id, "visit", when="at", at=at, tz="-120").status_code == 303
    hour_ago, three_ago = _activities(app, c.id)
    assert abs(utcnow() - hour_ago.occurred_at - timedelta(hours=1)) < timedelta(minutes=1)
    assert abs(utcnow() - three_ago.occurred_at - timedelta(hours=3)) < timedelta(minutes=2)
    html = client.get(f"/contacts/{c.id}").get_data(as_text=True)
    assert html.index('class="entry entry-call"') < html.index('class="entry entry-visit"')


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"when": "at", "at": "2999-01-01T10:00"}, "in the future"),
        ({"when": "at", "at": "2001-01-01T10:00"}, "more than 90 days ago"),
        ({"when": "at", "at": ""}, "Give the date and time"),
        ({"when": "at", "at": "2026-13-45T99:00"}, "Give the date and time"),
        ({"when": "at", "at": "2026-01-01T10:00", "tz": "99999"}, "time zone is unreadable"),
        ({"when": "last week"}, "Choose when it happened"),
    ],
)
def test_a_bad_time_is_refused_and_nothing_stored(
    app, client, login, make_user, make_contact, extra, message
):
    rep = make_user("rep")
    c = make_contact(rep, name="Timely")
    login(rep)
    r = _log(client, c.id, "call", **extra)
    assert r.status_code == 422
    assert message in r.get_data(as_text=True)
    assert _activities(app, c.id) == []


# A call's outcome, edit, delete and undo


def test_a_logged_call_gets_its_outcome_in_one_more_tap(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Caller")
    login(rep)
    _log(client, c.id, "call")
    [call] = _activities(app, c.id)
    page = client.get(f"/contacts/{c.id}").get_data(as_text=True)
    # The row's own chips (buttons; the log form's are radios for the next entry).
    chip = 'type="submit" name="outcome" value="voicemail"'
    assert chip in page
    r = client.post(f"/activities/{call.id}/outcome", data={"outcome": "voicemail"})
    assert r.status_code == 303
    assert _activities(app, c.id)[0].outcome == "voicemail"
    page = client.get(f"/contacts/{c.id}").get_data(as_text=True)
    assert "Left a voicemail" in page
    assert chip not in page
    assert client.post(f"/activities/{call.id}/outcome", data={"outcome": "x"}).status_code == 422
    _log(client, c.id, "note", body="A note")
    note = _activities(app, c.id)[1]
    r = client.post(f"/activities/{note.id}/outcome", data={"outcome": "reached"})
    assert r.status_code == 422 and "Only a call has an outcome" in r.get_data(as_text=True)


def test_edit_one_s_own_entry_marks_it_edited(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Editable")
    login(rep)
    _log(client, c.id, "call", body="Frist try")
    [call] = _activities(app, c.id)
    form = client.get(f"/activities/{call.id}/edit").get_data(as_text=True)
    assert "Frist try" in form and "As logged" in form
    data = {"body": "First try", "outcome": "reached", "when": "2h"}
    assert client.post(f"/activities/{call.id}/edit", data=data).status_code == 303
    [edited] = _activities(app, c.id)
    assert (edited.body, edited.outcome) == ("First try", "reached")
    assert edited.edited_at is not None
    assert abs(utcnow() - edited.occurred_at - timedelta(hours=2)) < timedelta(minutes=1)
    page = client.get(f"/contacts/{c.id}").get_data(as_text=True)
    assert "· edited" in page and "Reached" in page


def test_a_bad_edit_changes_nothing(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Kept")
    login(rep)
    _log(client, c.id, "note", body="Keep me")
    [note] = _activities(app, c.id)
    for data, message in (
        ({"body": "", "when": "keep"}, "Write the note first."),
        ({"body": "x", "when": "at", "at": "2999-01-01T00:00"}, "in the future"),
        ({"body": "x", "outcome": "reached"}, "Only a call has an outcome"),
        ({"body": "a\x00b"}, "NUL"),
    ):
        r = client.post(f"/activities/{note.id}/edit", data=data)
        assert r.status_code in (400, 422)
        if r.status_code == 422:
            assert message in r.get_data(as_text=True)
    [same] = _activities(app, c.id)
    assert (same.body, same.edited_at) == ("Keep me", None)


def test_others_may_not_edit_or_delete_but_managers_may(
    app, client, login, make_user, make_contact
):
    rep, other, manager = make_user("rep"), make_user("rep"), make_user("manager")
    c = make_contact(rep, name="Guarded")
    login(rep)
    _log(client, c.id, "call")
    [call] = _activities(app, c.id)
    client.post("/logout")
    login(other)
    assert client.get(f"/activities/{call.id}/edit").status_code == 403
    assert client.post(f"/activities/{call.id}/edit", data={"body": "x"}).status_code == 403
    assert client.post(f"/activities/{call.id}/delete").status_code == 403
    assert (
        client.post(f"/activities/{call.id}/outcome", data={"outcome": "reached"}).status_code
        == 403
    )
    assert "Change</summary>" not in client.get(f"/contacts/{c.id}").get_data(as_text=True)
    client.post("/logout")
    login(manager)
    assert client.post(f"/activities/{call.id}/edit", data={"body": "ok"}).status_code == 303
    assert _activities(app, c.id)[0].body == "ok"


def test_delete_takes_it_off_the_timeline_and_undo_brings_it_back(
    app, client, login, make_user, make_contact
):
    rep = make_user("rep")
    c = make_contact(rep, name="Undoable")
    login(rep)
    key = str(uuid.uuid4())
    client.post(
        f"/contacts/{c.id}/activities", data={"kind": "note", "body": "Oops note", "uuid": key}
    )
    [note] = _activities(app, c.id)
    r = client.post(f"/activities/{note.id}/delete")
    assert r.status_code == 303
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Oops note" not in page
    assert "Note deleted." in page and f"/activities/{note.id}/restore" in page
    # The same form sent again is the stored (deleted) entry, not a new one.
    client.post(
        f"/contacts/{c.id}/activities", data={"kind": "note", "body": "Oops note", "uuid": key}
    )
    assert len(_activities(app, c.id)) == 1
    assert client.get(f"/activities/{note.id}/edit").status_code == 404
    assert client.post(f"/activities/{note.id}/restore").status_code == 303
    assert "Oops note" in client.get(f"/contacts/{c.id}").get_data(as_text=True)
    assert client.post(f"/activities/{note.id}/restore").status_code == 404


def test_undo_ends_with_its_window(app, client, login, make_user, make_contact):
    rep = make_user("rep")
    c = make_contact(rep, name="Too Late")
    login(rep)
    _log(client, c.id, "call")
    [call] = _activities(app, c.id)
    client.post(f"/activities/{call.id}/delete")
    with app.app_context():
        row = db.session.get(Activity, call.id)
        row.deleted_at = utcnow() - timedelta(hours=2)
        db.session.commit()
    assert client.post(f"/activities/{call.id}/restore").status_code == 404
    assert _activities(app, c.id)[0].deleted_at is not None


def test_mentions_on_a_timeline_are_not_editable(app, client, login, make_user, make_contact):
    admin = make_user("admin")
    c = make_contact(admin, name="Mentioned")
    with app.app_context():
        db.session.add(Activity(uuid=str(uuid.uuid4()), contact_id=c.id, kind="mention", body=""))
        db.session.commit()
    [mention] = _activities(app, c.id)
    login(admin)
    assert client.get(f"/activities/{mention.id}/edit").status_code == 404
    assert client.post(f"/activities/{mention.id}/delete").status_code == 404


def test_hostile_values_on_real_entries_are_4xx_and_change_nothing(
    app, client, login, make_user, make_contact
):
    from tests.webapp.test_hostile_input import FIELDS, HOSTILE_VALUES

    rep = make_user("rep")
    c = make_contact(rep, name="Target")
    login(rep)
    _log(client, c.id, "call", body="Original")
    _check_in(client, c.id, latitude="53.8", longitude="-1.55", accuracy_m="10")
    call, visit = _activities(app, c.id)
    routes = [
        f"/contacts/{c.id}/check-in",
        f"/contacts/{c.id}/activities",
        f"/activities/{call.id}/edit",
        f"/activities/{call.id}/outcome",
        f"/activities/{visit.id}/edit",
    ]
    for value in HOSTILE_VALUES:
        data = {f: value for f in FIELDS}
        for url in routes:
            r = client.post(url, data=data)
            assert 400 <= r.status_code < 500, (url, value[:20], r.status_code)
        r = client.get("/nearby", query_string=data)
        assert 400 <= r.status_code < 500, ("/nearby", value[:20], r.status_code)
    after = _activities(app, c.id)
    assert [(a.body, a.outcome, a.edited_at, a.latitude) for a in after] == [
        ("Original", None, None, None),
        ("", None, None, 53.8),
    ]


def test_the_demo_shows_nearby_check_ins_and_call_outcomes(app, client):
    from webapp.models import User
    from webapp.services import demo

    with app.app_context():
        demo.seed(db.session, contacts=80)
        db.session.commit()
        people = db.session.scalars(select(Contact)).all()
        placed = [c for c in people if c.latitude is not None]
        assert 0 < len(people) - len(placed) < len(people) // 4
        rep = db.session.scalar(select(User).where(User.role == "rep"))
        visits = db.session.scalars(
            select(Activity).where(Activity.kind == "visit", Activity.latitude.is_not(None))
        ).all()
        assert sum(v.ended_at is not None for v in visits) >= 5
        assert [v.author_id for v in visits if v.ended_at is None] == [rep.id]
        calls = db.session.scalars(select(Activity).where(Activity.kind == "call")).all()
        assert {c.outcome for c in calls} >= {"reached", "no_answer", "voicemail"}
        email = rep.email
    r = client.post("/login", data={"email": email, "password": demo.PASSWORD})
    assert r.status_code == 303
    html = client.get("/nearby?latitude=53.7997&longitude=-1.5492").get_data(as_text=True)
    assert html.count('class="row nearby-row"') >= 5
