"""Support's round robin as its people meet it: nothing is handed out until someone takes
new items; the oldest waiting items go out in turn, each person up to their limit;
whoever frees up first gets the next; new mentions go to whoever has room; a manager
sets limits on the team page; and two runs at once never overfill anyone."""

import re
import threading
from datetime import timedelta

from sqlalchemy import select

from tests.conftest import sign_in
from tests.webapp.incoming import incoming
from webapp.extensions import db
from webapp.models import AuditEvent, Mention, User
from webapp.models.base import utcnow
from webapp.services import mentions, routing

TEAM = "/inbox/team"


def _csrf(client, url="/inbox/"):
    page = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def _arrive(app, *numbers: int) -> list[int]:
    """Mentions posted an hour apart, in the order given (the first is the oldest)."""
    start = utcnow() - timedelta(days=1)
    with app.app_context():
        stored = mentions.ingest(
            db.session,
            [
                incoming(str(n), handle=f"fan{n}", created_at=start + timedelta(hours=n))
                for n in numbers
            ],
        ).stored
        db.session.commit()
        return stored


def _holders(app, ids) -> list[str | None]:
    with app.app_context():
        by_id = {
            m.id: (m.assignee.name if m.assignee else None)
            for m in db.session.scalars(select(Mention).where(Mention.id.in_(ids)))
        }
        return [by_id[i] for i in ids]


def _take_new_items(client, on=True):
    return client.post(
        "/inbox/available", data={"csrf_token": _csrf(client), "available": "1" if on else "0"}
    )


def _set_limit(client, user_id, limit, available=False):
    form = {"csrf_token": _csrf(client, TEAM), "limit": limit}
    if available:
        form["available"] = "1"
    return client.post(f"{TEAM}/{user_id}", data=form)


def _status(client, mention_id, status):
    url = f"/inbox/{mention_id}"
    return client.post(f"{url}/status", data={"csrf_token": _csrf(client, url), "status": status})


def test_items_go_out_oldest_first_in_turn_up_to_each_limit(app, client, login, make_user):
    m1, m2, m3, m4 = _arrive(app, 1, 2, 3, 4)
    ann = make_user("support", name="Ann")
    bob = make_user("support", name="Bob")
    # Nobody takes new items until they say so.
    assert _holders(app, [m1, m2, m3, m4]) == [None] * 4
    login(make_user("manager"))
    assert _set_limit(client, ann.id, "1").status_code == 303
    assert _set_limit(client, bob.id, "2").status_code == 303
    team = client.get(TEAM).get_data(as_text=True)
    assert "Ann" in team and "holds 0 open of 1" in team

    ann_client, bob_client = app.test_client(), app.test_client()
    sign_in(ann_client, ann)
    r = _take_new_items(ann_client)
    assert r.status_code == 303
    assert "got 1 waiting item" in ann_client.get(r.location).get_data(as_text=True)
    sign_in(bob_client, bob)
    _take_new_items(bob_client)
    assert _holders(app, [m1, m2, m3, m4]) == ["Ann", "Bob", "Bob", None]
    # Mine counts what the round robin gave.
    bob_inbox = bob_client.get("/inbox/").get_data(as_text=True)
    assert re.search(r'Mine<span class="count">2<', bob_inbox)

    # Ann frees up first, so she gets the one still waiting.
    assert _status(ann_client, m1, "resolved").status_code == 303
    assert _holders(app, [m4]) == ["Ann"]
    # A new mention finds everyone full, and waits; then Bob pends one and gets it.
    (m5,) = _arrive(app, 5)
    assert _holders(app, [m5]) == [None]
    _status(bob_client, m2, "pending")
    assert _holders(app, [m5]) == ["Bob"]
    with app.app_context():
        given = db.session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "mention.assign", AuditEvent.actor_id.is_(None)
            )
        ).all()
        assert len(given) == 5
        assert all(e.changes["by"] == [None, "round robin"] for e in given)


def test_new_mentions_go_in_turn_and_stepping_out_keeps_what_one_holds(
    app, client, login, make_user
):
    ann = make_user("support", name="Ann")
    bob = make_user("support", name="Bob")
    ann_client, bob_client = app.test_client(), app.test_client()
    sign_in(ann_client, ann)
    _take_new_items(ann_client)
    sign_in(bob_client, bob)
    _take_new_items(bob_client)
    ids = _arrive(app, 1, 2, 3, 4)
    # With no limits the turn goes round: Ann came in first, so she starts.
    assert _holders(app, ids) == ["Ann", "Bob", "Ann", "Bob"]
    r = _take_new_items(ann_client, on=False)
    assert "what you hold stays yours" in ann_client.get(r.location).get_data(as_text=True)
    later = _arrive(app, 5, 6)
    assert _holders(app, ids + later) == ["Ann", "Bob", "Ann", "Bob", "Bob", "Bob"]


def test_the_team_page_refuses_bad_limits_and_is_for_managers(app, client, login, make_user):
    ann = make_user("support", name="Ann")
    for role in ("support", "rep", "marketer"):
        login(make_user(role))
        assert client.get(TEAM).status_code == 403, role
        assert client.post(f"{TEAM}/{ann.id}", data={"limit": "3"}).status_code in (400, 403)
    login(make_user("admin"))
    for bad in ("abc", "0", "501", "-2", "1e3"):
        r = _set_limit(client, ann.id, bad)
        assert r.status_code == 422, bad
        assert "from 1 to 500" in r.get_data(as_text=True)
    assert _set_limit(client, 99_999, "3").status_code == 404
    rep = make_user("rep")
    assert _set_limit(client, rep.id, "3").status_code == 404
    with app.app_context():
        assert db.session.get(User, ann.id).triage_limit is None
    # Switching someone in on their behalf hands them what waits.
    (waiting,) = _arrive(app, 1)
    r = _set_limit(client, ann.id, "", available=True)
    assert "1 waiting item given to them" in client.get(r.location).get_data(as_text=True)
    assert _holders(app, [waiting]) == ["Ann"]


def test_two_runs_at_once_never_fill_a_place_twice(app, make_user):
    ids = _arrive(app, *range(1, 9))
    ann = make_user("support", name="Ann")
    with app.app_context():
        person = db.session.get(User, ann.id)
        person.triage_limit, person.available = 3, True
        db.session.commit()
    barrier = threading.Barrier(4)
    given: list[int] = []
    errors: list[BaseException] = []

    def run():
        try:
            with app.app_context():
                barrier.wait()
                given.append(routing.assign_waiting(db.session))
                db.session.commit()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(given) == [0, 0, 0, 3]
    assert _holders(app, ids) == ["Ann"] * 3 + [None] * 5
