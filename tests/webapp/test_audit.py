"""The audit log: each admin action leaves one entry, written with the change (or not at
all), naming who did what to which record from where, with no secret in it; admins read
it newest first, page by page, filtered by user and by record; no one else may."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from tests.conftest import sign_in
from webapp.extensions import db
from webapp.models import AccountLink, AuditEvent, User
from webapp.services import audit

NEW_PASSWORD = "a brand new passphrase"


def _events(app) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        for row in rows:
            db.session.expunge(row)
        return rows


def _shown_link(client, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(r'value="https://localhost(/users/(?:join|reset)/[^"]+)"', html).group(1)


def test_every_admin_action_leaves_one_entry_with_its_changes(app, make_user, login):
    admin = make_user("admin", name="Ada Admin")
    rep = make_user("rep", name="Rita Rep")
    client = login(admin)
    base = {"REMOTE_ADDR": "203.0.113.7"}

    def post(path, **data):
        r = client.post(path, data=data, environ_base=base)
        assert r.status_code == 303, (path, r.status_code)

    post("/users/invite", email="nina@example.com", name="Nina New", role="support")
    invite_path = _shown_link(client, "/users/")
    post("/users/invite", email="otto@example.com", name="Otto", role="rep")
    with app.app_context():
        otto = db.session.scalar(select(AccountLink).where(AccountLink.email == "otto@example.com"))
    post(f"/users/links/{otto.id}/revoke")
    post(f"/users/{rep.id}/role", role="manager")
    post(f"/users/{rep.id}/disable")
    post(f"/users/{rep.id}/enable")
    sign_in(app.test_client(), rep)
    post(f"/users/{rep.id}/sign-out")
    post(f"/users/{rep.id}/reset-link")
    reset_path = _shown_link(client, f"/users/{rep.id}")
    invitee = app.test_client()
    invitee.post(
        invite_path, data={"password": NEW_PASSWORD}, environ_base={"REMOTE_ADDR": "198.51.100.9"}
    )
    app.test_client().post(reset_path, data={"password": NEW_PASSWORD})
    post(f"/users/{rep.id}/remove", owner="none")

    events = _events(app)
    summary = [(e.action, e.actor_name, e.record_type, e.record_label) for e in events]
    assert summary == [
        ("user.invited", "Ada Admin", "invite", "nina@example.com"),
        ("user.invited", "Ada Admin", "invite", "otto@example.com"),
        ("user.invite_revoked", "Ada Admin", "invite", "otto@example.com"),
        ("user.role_changed", "Ada Admin", "user", "Rita Rep"),
        ("user.disabled", "Ada Admin", "user", "Rita Rep"),
        ("user.enabled", "Ada Admin", "user", "Rita Rep"),
        ("user.signed_out", "Ada Admin", "user", "Rita Rep"),
        ("user.reset_link_made", "Ada Admin", "user", "Rita Rep"),
        ("user.joined", "Nina New", "user", "Nina New"),
        ("user.password_reset", "Rita Rep", "user", "Rita Rep"),
        ("user.removed", "Ada Admin", "user", "Rita Rep"),
    ]
    by_action = {e.action: e for e in reversed(events)}  # the first of each action
    assert all(e.actor_id == admin.id for e in events if e.actor_name == "Ada Admin")
    assert by_action["user.invited"].changes == {
        "email": [None, "nina@example.com"],
        "name": [None, "Nina New"],
        "role": [None, "support"],
    }
    assert by_action["user.invite_revoked"].record_id == otto.id
    assert by_action["user.role_changed"].changes == {"role": ["rep", "manager"]}
    assert by_action["user.role_changed"].record_id == rep.id
    disabled = by_action["user.disabled"].changes
    assert disabled["disabled_at"][0] is None and disabled["disabled_at"][1].startswith("20")
    assert by_action["user.enabled"].changes["disabled_at"][1] is None
    assert by_action["user.signed_out"].changes == {"sessions": [1, 0]}
    assert by_action["user.joined"].changes["role"] == [None, "support"]
    assert by_action["user.joined"].address == "198.51.100.9"
    assert by_action["user.password_reset"].changes == {
        "password": ["(hidden)", "(hidden)"],
        "sessions": [0, 0],
    }
    removed = by_action["user.removed"].changes
    assert removed["contacts_owned"] == [0, 0] and removed["removed_at"][0] is None
    assert {e.address for e in events if e.actor_name == "Ada Admin"} == {"203.0.113.7"}
    # No token, hash or password anywhere in the log.
    with app.app_context():
        hashes = set(db.session.scalars(select(AccountLink.token_hash)))
        password_hashes = set(db.session.scalars(select(User.password_hash)))
    dumped = json.dumps([[e.changes, e.record_label] for e in events])
    tokens = {invite_path.rsplit("/", 1)[1], reset_path.rsplit("/", 1)[1]}
    for secret in tokens | hashes | password_hashes | {NEW_PASSWORD}:
        assert secret not in dumped


def test_a_refused_change_leaves_no_entry(app, make_user, login):
    admin = make_user("admin")
    client = login(admin)
    assert client.post(f"/users/{admin.id}/role", data={"role": "rep"}).status_code == 403
    r = client.post("/users/invite", data={"email": "bad", "name": "X", "role": "rep"})
    assert r.status_code == 422
    assert _events(app) == []


def test_an_entry_keeps_its_actors_name_after_the_actor_is_removed(app, make_user, login):
    first = make_user("admin", name="First Admin")
    second = make_user("admin", name="Second Admin")
    rep = make_user("rep")
    login(first).post(f"/users/{rep.id}/disable")
    other = app.test_client()
    sign_in(other, second)
    assert other.post(f"/users/{first.id}/remove", data={"owner": "none"}).status_code == 303
    page = other.get("/users/audit").get_data(as_text=True)
    assert "<strong>First Admin</strong> disabled" in page
    assert "<strong>Second Admin</strong> removed" in page
    assert _events(app)[0].actor_id == first.id


def test_admins_read_the_log_newest_first_page_by_page(app, make_user, login):
    admin = make_user("admin")
    with app.app_context():
        actor = db.session.get(User, admin.id)
        for n in range(audit.PAGE_SIZE + 5):
            audit.record(db.session, actor, "user.disabled", "user", 1000 + n, label=f"Person {n}")
        db.session.commit()
    client = login(admin)
    first = client.get("/users/audit").get_data(as_text=True)
    labels = re.findall(r">Person (\d+)<", first)
    assert labels == [str(n) for n in range(audit.PAGE_SIZE + 4, 4, -1)]
    older = re.search(r'href="(/users/audit\?before=\d+)"', first).group(1)
    rest = client.get(older, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert re.findall(r">Person (\d+)<", rest) == ["4", "3", "2", "1", "0"]
    assert "<html" not in rest and "Older entries" not in rest
    assert "Older entries" not in client.get(older).get_data(as_text=True)


def test_the_log_filters_by_user_and_by_record(app, make_user, login, make_contact):
    first, second = make_user("admin", name="First Admin"), make_user("admin", name="Second Admin")
    rep, other = make_user("rep", name="Rita Rep"), make_user("rep", name="Otis Other")
    login(first).post(f"/users/{rep.id}/disable")
    client = app.test_client()
    sign_in(client, second)
    client.post(f"/users/{other.id}/disable")
    client.post(f"/users/{rep.id}/enable")

    def entries(query: str) -> list[str]:
        html = client.get(f"/users/audit?{query}").get_data(as_text=True)
        return re.findall(r"<strong>([^<]+)</strong> (\w+)", html)

    assert entries(f"actor={second.id}") == [
        ("Second Admin", "enabled"),
        ("Second Admin", "disabled"),
    ]
    assert entries(f"record_type=user&record_id={rep.id}") == [
        ("Second Admin", "enabled"),
        ("First Admin", "disabled"),
    ]
    assert entries(f"actor={first.id}&record_type=user&record_id={other.id}") == []
    assert entries("record_type=source") == []
    # The user page links to both views of the log.
    page = client.get(f"/users/{rep.id}").get_data(as_text=True)
    assert f"record_type=user&amp;record_id={rep.id}" in page and f"actor={rep.id}" in page


def test_bad_filters_are_a_clear_400(make_user, login):
    client = login(make_user("admin"))
    r = client.get("/users/audit?actor=abc")
    assert r.status_code == 400 and "actor" in r.get_data(as_text=True)


@pytest.mark.parametrize("role", ["manager", "rep", "support", "marketer"])
def test_only_admins_read_the_log(client, make_user, login, role):
    login(make_user(role))
    assert client.get("/users/audit").status_code == 403


def test_secret_fields_are_masked_whoever_records_them(app, make_user):
    admin = make_user("admin")
    with app.app_context():
        event = audit.record(
            db.session,
            db.session.get(User, admin.id),
            "source.updated",
            "source",
            1,
            changes={"secret": ("old-token", "new-token"), "name": ("A", "B")},
        )
        db.session.commit()
        assert event.changes == {"secret": ["(hidden)", "(hidden)"], "name": ["A", "B"]}


def test_pipeline_stage_changes_are_in_the_audit_log(app, client, login, make_user):
    """The stages weigh every forecast: who added, changed or removed one is on record,
    with what changed and how many deals a removal moved."""
    from webapp.models import Stage
    from webapp.services import deals as deal_service
    from webapp.services import once

    admin = make_user("admin", name="Ada Admin")
    rep = make_user("rep")
    login(admin)
    with app.app_context():
        ids = {s.name: s.id for s in db.session.scalars(select(Stage))}
        owner = db.session.get(User, rep.id)
        data = {"title": "Ladders", "stage_id": str(ids["Meeting booked"])}
        deal_service.create_deal(db.session, owner, None, data, once.new_key(), "EUR")
        db.session.commit()
    fields = {
        "name": "Trial",
        "position": "3",
        "probability": "50",
        "rotting_days": "",
        "kind": "open",
    }
    assert client.post("/deals/stages", data=fields).status_code == 303
    with app.app_context():
        trial = db.session.scalar(select(Stage).where(Stage.name == "Trial")).id
    changed = {**fields, "probability": "55"}
    assert client.post(f"/deals/stages/{trial}", data=changed).status_code == 303
    assert client.post(f"/deals/stages/{trial}", data=changed).status_code == 303  # no change
    moved = {"move_to": str(ids["Qualified"])}
    assert (
        client.post(f"/deals/stages/{ids['Meeting booked']}/delete", data=moved).status_code == 303
    )
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.record_type == "stage").order_by(AuditEvent.id)
        ).all()
        rows = [(e.action, e.actor_id, e.record_id, e.record_label) for e in events]
        assert rows == [
            ("stage.added", admin.id, trial, "Trial"),
            ("stage.changed", admin.id, trial, "Trial"),
            ("stage.deleted", admin.id, ids["Meeting booked"], "Meeting booked"),
        ]
        assert events[1].changes == {"probability": [50, 55]}
        assert events[2].changes == {"deals_moved": [None, 1]}
    log = client.get("/users/audit?record_type=stage").get_data(as_text=True)
    assert "added the pipeline stage" in log and "deleted the pipeline stage" in log
