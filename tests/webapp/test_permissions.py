"""The role table of the design, enforced by the views (403, never a 500)."""

import uuid

import pytest

from webapp.extensions import db
from webapp.models import Activity, Contact


@pytest.fixture
def world(make_user, make_contact):
    owner = make_user("rep")
    contact = make_contact(owner, name="Quinn Owned", company="Q Co")
    return owner, contact


@pytest.mark.parametrize(
    ("role", "edit", "renames", "delete", "log", "create"),
    [
        ("admin", 303, True, 303, 303, 303),
        ("manager", 303, True, 303, 303, 303),
        ("rep", 403, False, 403, 303, 303),
        # Support may save the form, but only its handles are taken.
        ("support", 303, False, 403, 303, 403),
        ("marketer", 403, False, 403, 403, 403),
    ],
)
def test_role_table(app, client, login, make_user, world, role, edit, renames, delete, log, create):
    _, contact = world
    login(make_user(role))
    assert client.get(f"/contacts/{contact.id}").status_code == 200
    assert client.get("/contacts?q=quinn").status_code == 200
    r = client.post(f"/contacts/{contact.id}/edit", data={"name": "Renamed", "company": "Q Co"})
    assert r.status_code == edit
    r = client.post(
        f"/contacts/{contact.id}/activities", data={"kind": "call", "uuid": str(uuid.uuid4())}
    )
    assert r.status_code == log
    new_one = {"name": "New One", "uuid": str(uuid.uuid4())}
    assert client.post("/contacts", data=new_one).status_code == create
    assert client.post(f"/contacts/{contact.id}/delete").status_code == delete
    with app.app_context():
        stored = db.session.get(Contact, contact.id)
        assert (stored.name == "Renamed") == renames
        assert (stored.deleted_at is not None) == (delete == 303)
        assert db.session.query(Activity).count() == (1 if log == 303 else 0)


def test_rep_edits_own_contacts(app, client, login, world):
    owner, contact = world
    login(owner)
    assert client.post(f"/contacts/{contact.id}/edit", data={"name": "Mine Now"}).status_code == 303


def test_support_edits_only_handles(app, client, login, make_user, world):
    _, contact = world
    login(make_user("support"))
    page = client.get(f"/contacts/{contact.id}/edit").get_data(as_text=True)
    assert 'name="handle_x"' in page
    assert 'name="name"' not in page
    r = client.post(f"/contacts/{contact.id}/edit", data={"name": "Hijacked", "handle_x": "@quinn"})
    assert r.status_code == 303
    with app.app_context():
        stored = db.session.get(Contact, contact.id)
        assert stored.name == "Quinn Owned"
        assert [(h.network, h.handle) for h in stored.handles] == [("x", "quinn")]


def test_marketer_sees_no_log_form_or_edit_button(client, login, make_user, world):
    _, contact = world
    login(make_user("marketer"))
    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "Log as" not in page
    assert f"/contacts/{contact.id}/edit" not in page
    assert client.get(f"/contacts/{contact.id}/edit").status_code == 403


def test_forbidden_page_is_a_page(client, login, make_user, world):
    _, contact = world
    login(make_user("marketer"))
    r = client.post(f"/contacts/{contact.id}/delete")
    assert r.status_code == 403
    assert "You do not have access to this." in r.get_data(as_text=True)
