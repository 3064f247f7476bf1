"""Bulk triage from the queue: select items, then assign, label or resolve them all (a
resolve undone in one tap); each item changed as a single change would be; a bad or
empty selection says so and changes nothing."""

import re

from sqlalchemy import func, select

from tests.webapp.incoming import incoming
from webapp.extensions import db
from webapp.models import AuditEvent, LabelCorrection, Mention
from webapp.services import mentions

QUEUE = "/inbox/?status=open"


def _ingest(app, n: int) -> list[int]:
    with app.app_context():
        stored = mentions.ingest(
            db.session, [incoming(str(i), handle=f"fan{i}") for i in range(n)]
        ).stored
        db.session.commit()
        return stored


def _page(client, url=QUEUE) -> str:
    return client.get(url).get_data(as_text=True)


def _bulk(client, ids, action, **form):
    page = _page(client)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    data = {"csrf_token": token, "ids": [str(i) for i in ids], "action": action, **form}
    return client.post("/inbox/bulk", data={**data, "back": QUEUE}, follow_redirects=True)


def _states(app, ids):
    with app.app_context():
        rows = db.session.scalars(select(Mention).where(Mention.id.in_(ids))).all()
        return {m.id: (m.status, m.assignee.name if m.assignee else None) for m in rows}


def test_select_and_resolve_then_undo(app, client, login, make_user):
    a, b, c = _ingest(app, 3)
    login(make_user("support", name="Sue"))
    page = _page(client)
    # Every row has its box, tied to the bulk form.
    assert len(re.findall(r'name="ids" value="\d+" form="bulk-form"', page)) == 3
    r = _bulk(client, [a, b], "resolve")
    text = r.get_data(as_text=True)
    assert r.request.path == "/inbox/" and "Resolved 2 items." in text
    assert _states(app, [a, b, c]) == {
        a: ("resolved", None),
        b: ("resolved", None),
        c: ("open", None),
    }
    token = re.search(r'name="csrf_token" value="([^"]+)"', text)[1]
    restore = re.search(r'name="restore" value="([^"]+)"', text)[1]
    r = client.post(
        "/inbox/bulk/undo", data={"csrf_token": token, "restore": restore}, follow_redirects=True
    )
    assert "Put back 2 items." in r.get_data(as_text=True)
    assert {s for s, _ in _states(app, [a, b, c]).values()} == {"open"}
    # A second resolve of what is resolved says so.
    _bulk(client, [a], "resolve")
    assert "already so" in _bulk(client, [a, b], "resolve").get_data(as_text=True)


def test_assign_and_label_many_each_audited(app, client, login, make_user):
    ids = _ingest(app, 4)
    bob = make_user("support", name="Bob")
    login(make_user("support", name="Sue"))
    r = _bulk(client, ids[:3], "assign", assignee=str(bob.id))
    assert "Assigned 3 items." in r.get_data(as_text=True)
    assert [who for _, who in _states(app, ids).values()].count("Bob") == 3
    _bulk(client, ids[:2], "assign", assignee="me")
    assert _states(app, ids[:2]) == {i: ("open", "Sue") for i in ids[:2]}
    assert "Labelled 2 items." in _bulk(client, ids[2:], "label", label="negative").get_data(
        as_text=True
    )
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LabelCorrection)) == 2
        actions = db.session.scalars(select(AuditEvent.action)).all()
        assert actions.count("mention.assign") == 5 and actions.count("mention.correct") == 2


def test_a_bad_selection_changes_nothing_and_says_why(app, client, login, make_user):
    ids = _ingest(app, 2)
    login(make_user("support"))
    cases = [
        ([], "resolve", {}, "Select the items first"),
        (["x1"], "resolve", {}, "not an item"),
        (["1" * 20], "resolve", {}, "not an item"),
        ([str(i) for i in range(1, 102)], "resolve", {}, "at most 100"),
        (ids, "explode", {}, "Choose assign, resolve or label"),
        (ids, "label", {"label": "furious"}, "Choose positive, neutral or negative"),
        (ids, "assign", {"assignee": "999999"}, "Choose someone on the support team"),
    ]
    for selection, action, form, message in cases:
        text = _bulk(client, selection, action, **form).get_data(as_text=True)
        assert message in text, (selection[:2], action)
    token = re.search(r'name="csrf_token" value="([^"]+)"', _page(client))[1]
    not_a_person = {"csrf_token": token, "ids": [str(ids[0])], "action": "assign", "assignee": "x"}
    assert client.post("/inbox/bulk", data=not_a_person).status_code == 400
    assert {s for s, _ in _states(app, ids).values()} == {"open"}
    # Only a path of the inbox is a way back.
    r = client.post(
        "/inbox/bulk",
        data={"csrf_token": token, "ids": [str(ids[0])], "action": "resolve", "back": "//evil"},
    )
    assert r.status_code == 303 and r.location.endswith("/inbox/")


def test_readers_have_no_boxes_and_cannot_post(app, client, login, make_user):
    ids = _ingest(app, 1)
    login(make_user("marketer"))
    assert 'form="bulk-form"' not in _page(client, "/inbox/?status=all")
    r = client.post("/inbox/bulk", data={"ids": [str(ids[0])], "action": "resolve"})
    assert r.status_code in (400, 403)
    assert _states(app, ids)[ids[0]][0] == "open"
