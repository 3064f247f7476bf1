"""What an admin does in the first week: invite people (one-time links), make password-reset
links, change roles, remove users; the last active admin is always kept; managers view,
others may not."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import sign_in
from webapp.extensions import db
from webapp.models import AccountLink, Activity, AuditEvent, Contact, User
from webapp.services import account_links, users
from webapp.services.errors import PermissionDenied, ValidationError

NEW_PASSWORD = "a brand new passphrase"
LINK = re.compile(
    r'id="link-url" type="url" value="(https://localhost/users/(?:join|reset)/[^"]+)"'
)


def _link_from(html: str) -> str:
    found = LINK.search(html)
    assert found, "no link shown"
    return found.group(1).removeprefix("https://localhost")


def _invite(client, email="nina@example.com", name="Nina New", role="rep") -> str:
    """Invite through the form; the path of the link shown once."""
    r = client.post("/users/invite", data={"email": email, "name": name, "role": role})
    assert r.status_code == 303, r.get_data(as_text=True)
    return _link_from(client.get("/users/").get_data(as_text=True))


def _open_links(app) -> list[AccountLink]:
    with app.app_context():
        rows = db.session.scalars(
            select(AccountLink).where(
                AccountLink.used_at.is_(None), AccountLink.revoked_at.is_(None)
            )
        ).all()
        for row in rows:
            db.session.expunge(row)
        return rows


def _user_by_email(app, email: str) -> User | None:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        if user is not None:
            db.session.expunge(user)
        return user


# Invites ----------------------------------------------------------------------------


def test_an_invite_link_is_shown_once_and_signs_the_invitee_in(app, make_user, login):
    admin_client = login(make_user("admin"))
    path = _invite(admin_client, role="support")
    token = path.rsplit("/", 1)[1]
    # Shown once: the next page has no link, and the database only its hash.
    assert "link-url" not in admin_client.get("/users/").get_data(as_text=True)
    with app.app_context():
        link = db.session.scalar(select(AccountLink))
        assert token not in (link.token_hash, str(link.__dict__))
        assert link.expires_at - link.created_at == timedelta(days=7)
    pending = admin_client.get("/users/").get_data(as_text=True)
    assert "nina@example.com" in pending and "Invite as support" in pending

    invitee = app.test_client()
    page = invitee.get(path)
    assert page.status_code == 200
    assert "You are invited to Field CRM as support" in page.get_data(as_text=True)
    short = invitee.post(path, data={"password": "too short"})
    assert short.status_code == 422
    assert "Use at least 10 characters." in short.get_data(as_text=True)
    assert _user_by_email(app, "nina@example.com") is None

    done = invitee.post(path, data={"password": NEW_PASSWORD})
    # Support staff start on the inbox.
    assert done.status_code == 303 and done.headers["Location"].endswith("/inbox/")
    assert invitee.get("/contacts").status_code == 200
    user = _user_by_email(app, "nina@example.com")
    assert (user.name, user.role) == ("Nina New", "support")
    # The password set is the one that signs in from now on.
    assert sign_in(app.test_client(), user, NEW_PASSWORD).status_code == 303
    # No longer pending: listed as a user.
    after = admin_client.get("/users/").get_data(as_text=True)
    assert "Open invite and reset links" not in after and "nina@example.com · support" in after


def test_a_used_link_says_so_in_words(app, make_user, login):
    path = _invite(login(make_user("admin")))
    invitee = app.test_client()
    assert invitee.post(path, data={"password": NEW_PASSWORD}).status_code == 303
    for again in (
        app.test_client().get(path),
        app.test_client().post(path, data={"password": "x" * 12}),
    ):
        assert again.status_code == 410
        assert "This link was used already" in again.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 2


def test_an_expired_link_says_so_and_makes_no_user(app, make_user, login):
    path = _invite(login(make_user("admin")))
    with app.app_context():
        link = db.session.scalar(select(AccountLink))
        link.expires_at = link.created_at - timedelta(seconds=1)
        db.session.commit()
    invitee = app.test_client()
    page = invitee.get(path)
    assert page.status_code == 410
    assert "This link expired on" in page.get_data(as_text=True)
    assert invitee.post(path, data={"password": NEW_PASSWORD}).status_code == 410
    assert _user_by_email(app, "nina@example.com") is None


def test_an_unknown_link_is_a_404_in_words(client):
    r = client.get("/users/join/not-a-real-token")
    assert r.status_code == 404
    assert "This link is not known" in r.get_data(as_text=True)


def test_inviting_again_replaces_the_pending_invite(app, make_user, login):
    admin_client = login(make_user("admin"))
    first = _invite(admin_client, name="Nina First")
    second = _invite(admin_client, name="Nina Second")
    assert first != second
    links = _open_links(app)
    assert [link.name for link in links] == ["Nina Second"]
    r = app.test_client().get(first)
    assert r.status_code == 410 and "A newer link replaced this one" in r.get_data(as_text=True)
    assert app.test_client().post(second, data={"password": NEW_PASSWORD}).status_code == 303
    assert _user_by_email(app, "nina@example.com").name == "Nina Second"


def test_inviting_an_existing_users_email_says_so(app, make_user, login):
    rep = make_user("rep")
    admin_client = login(make_user("admin"))
    r = admin_client.post(
        "/users/invite", data={"email": rep.email.upper(), "name": "X", "role": "rep"}
    )
    assert r.status_code == 422
    assert "A user with this email exists already" in r.get_data(as_text=True)
    assert _open_links(app) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "not-an-email", "name": "N", "role": "rep"}, "Enter an email address"),
        ({"email": "n@example.com", "name": "", "role": "rep"}, "Enter a name"),
        ({"email": "n@example.com", "name": "N", "role": "owner"}, "Choose one of"),
    ],
)
def test_bad_invites_are_explained_and_make_nothing(app, make_user, login, data, message):
    r = login(make_user("admin")).post("/users/invite", data=data)
    assert r.status_code == 422 and message in r.get_data(as_text=True)
    assert _open_links(app) == []


def test_a_revoked_invite_no_longer_works(app, make_user, login):
    admin_client = login(make_user("admin"))
    path = _invite(admin_client)
    (link,) = _open_links(app)
    assert admin_client.post(f"/users/links/{link.id}/revoke").status_code == 303
    assert _open_links(app) == []
    r = app.test_client().post(path, data={"password": NEW_PASSWORD})
    assert r.status_code == 410 and "An admin withdrew this link" in r.get_data(as_text=True)
    assert _user_by_email(app, "nina@example.com") is None


def test_a_removed_users_email_can_be_invited_again(app, make_user, login):
    rep = make_user("rep", email="rita@example.com", name="Rita Old")
    admin_client = login(make_user("admin"))
    assert admin_client.post(f"/users/{rep.id}/remove").status_code == 303
    path = _invite(admin_client, email="rita@example.com", name="Rita New")
    assert app.test_client().post(path, data={"password": NEW_PASSWORD}).status_code == 303
    new = _user_by_email(app, "rita@example.com")
    assert new.id != rep.id and new.name == "Rita New"
    with app.app_context():
        old = db.session.get(User, rep.id)
        assert old.removed_at is not None and old.shown_email == "rita@example.com"


def test_two_invites_of_one_email_at_once_leave_one_open(app, make_user):
    """A double submit whose requests overlap: the second waits for the first and replaces
    it, rather than failing on the one-open-link rule."""
    admin = make_user("admin")
    with app.app_context():
        actor = db.session.get(User, admin.id)
        account_links.invite(db.session, actor, "twin@example.com", "Twin One", "rep")
        db.session.flush()
        outcome = {}

        def second():
            with app.app_context():
                try:
                    other = db.session.get(User, admin.id)
                    account_links.invite(db.session, other, "twin@example.com", "Twin Two", "rep")
                    db.session.commit()
                    outcome["ok"] = True
                except Exception as exc:
                    outcome["error"] = exc
                    db.session.rollback()

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=1)
        db.session.commit()
    thread.join()
    assert outcome == {"ok": True}
    assert [link.name for link in _open_links(app)] == ["Twin Two"]


# Password-reset links ----------------------------------------------------------------


def test_a_reset_link_sets_a_new_password_and_ends_every_session(app, make_user, login):
    rep = make_user("rep")
    phone = app.test_client()
    sign_in(phone, rep)
    assert phone.get("/contacts").status_code == 200
    admin_client = login(make_user("admin"))
    r = admin_client.post(f"/users/{rep.id}/reset-link")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/users/{rep.id}")
    path = _link_from(admin_client.get(f"/users/{rep.id}").get_data(as_text=True))
    assert path.startswith("/users/reset/")
    assert "link-url" not in admin_client.get(f"/users/{rep.id}").get_data(as_text=True)

    laptop = app.test_client()
    assert "Every device signed in now will be signed out" in laptop.get(path).get_data(
        as_text=True
    )
    assert laptop.post(path, data={"password": NEW_PASSWORD}).status_code == 303
    assert laptop.get("/contacts").status_code == 200
    assert phone.get("/contacts").status_code == 302
    assert sign_in(app.test_client(), rep).status_code == 401
    assert sign_in(app.test_client(), rep, NEW_PASSWORD).status_code == 303
    r = app.test_client().get(path)
    assert r.status_code == 410 and "used already" in r.get_data(as_text=True)


def test_a_reset_link_of_a_disabled_user_is_refused(app, make_user, login):
    rep = make_user("rep")
    admin_client = login(make_user("admin"))
    admin_client.post(f"/users/{rep.id}/disable")
    r = admin_client.post(f"/users/{rep.id}/reset-link", follow_redirects=True)
    assert "is disabled: enable them first" in r.get_data(as_text=True)
    assert _open_links(app) == []


def test_a_reset_link_of_a_user_removed_meanwhile_says_so(app, make_user, login):
    rep = make_user("rep")
    admin_client = login(make_user("admin"))
    admin_client.post(f"/users/{rep.id}/reset-link")
    path = _link_from(admin_client.get(f"/users/{rep.id}").get_data(as_text=True))
    admin_client.post(f"/users/{rep.id}/remove")
    r = app.test_client().post(path, data={"password": NEW_PASSWORD})
    assert r.status_code == 410 and "is removed" in r.get_data(as_text=True)


# Roles -------------------------------------------------------------------------------


def test_admin_changes_another_users_role(app, make_user, login):
    rep = make_user("rep")
    admin_client = login(make_user("admin"))
    r = admin_client.post(f"/users/{rep.id}/role", data={"role": "manager"}, follow_redirects=True)
    assert f"{rep.name} is now manager." in r.get_data(as_text=True)
    assert _user_by_email(app, rep.email).role == "manager"
    rep_client = app.test_client()
    sign_in(rep_client, rep)
    assert rep_client.get("/users/").status_code == 200


def test_an_unknown_role_is_explained_and_changes_nothing(app, make_user, login):
    rep = make_user("rep")
    r = login(make_user("admin")).post(
        f"/users/{rep.id}/role", data={"role": "owner"}, follow_redirects=True
    )
    assert "Choose one of: admin, manager, rep, support, marketer." in r.get_data(as_text=True)
    assert _user_by_email(app, rep.email).role == "rep"


def test_an_admin_cannot_change_their_own_role(app, make_user, login):
    admin = make_user("admin")
    make_user("admin")
    client = login(admin)
    assert client.post(f"/users/{admin.id}/role", data={"role": "rep"}).status_code == 403
    assert _user_by_email(app, admin.email).role == "admin"
    assert "Change role" not in client.get(f"/users/{admin.id}").get_data(as_text=True)


def _stale_last_admin(app, make_user):
    """Two admins, A and B. B disables A; A's request, begun before that, still acts: B
    is now the last active admin, whatever A's copy of itself says."""
    a, b = make_user("admin"), make_user("admin")
    with app.app_context():
        users.set_disabled(db.session, db.session.get(User, b.id), db.session.get(User, a.id), True)
        db.session.commit()
    return a, b


@pytest.mark.parametrize(
    "change",
    [
        lambda s, actor, user: users.set_role(s, actor, user, "manager"),
        lambda s, actor, user: users.set_disabled(s, actor, user, True),
        lambda s, actor, user: users.remove_user(s, actor, user, None),
    ],
    ids=["demoted", "disabled", "removed"],
)
def test_the_last_active_admin_is_never_demoted_disabled_or_removed(app, make_user, change):
    a, b = _stale_last_admin(app, make_user)
    with app.app_context():
        with pytest.raises(ValidationError, match="is the last active admin"):
            change(db.session, a, db.session.get(User, b.id))
        db.session.rollback()
        last = db.session.get(User, b.id)
        assert (last.role, last.disabled_at, last.removed_at) == ("admin", None, None)
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 1


def test_two_admins_demoting_each_other_at_once_leave_one_admin(app, make_user):
    a, b = make_user("admin"), make_user("admin")
    outcome = {}
    with app.app_context():
        users.set_role(db.session, db.session.get(User, a.id), db.session.get(User, b.id), "rep")
        db.session.flush()

        def other_admin():
            with app.app_context():
                try:
                    actor = db.session.get(User, b.id)
                    users.set_role(db.session, actor, db.session.get(User, a.id), "rep")
                    db.session.commit()
                    outcome["done"] = True
                except ValidationError as exc:
                    outcome["refused"] = exc.errors["user"]
                    db.session.rollback()

        thread = threading.Thread(target=other_admin)
        thread.start()
        # Most often the other request is now waiting for this one's transaction.
        thread.join(timeout=1)
        db.session.commit()
    thread.join()
    assert "is the last active admin" in outcome.get("refused", "")
    with app.app_context():
        roles = dict(db.session.execute(select(User.id, User.role)).all())
    assert roles == {a.id: "admin", b.id: "rep"}


def test_the_guard_also_holds_for_the_disable_button(app, make_user):
    a, b = _stale_last_admin(app, make_user)
    with app.app_context(), pytest.raises(ValidationError):
        users.set_disabled(db.session, a, db.session.get(User, b.id), True)


# Removal -----------------------------------------------------------------------------


def _rep_with_history(make_user, make_contact, app):
    rep = make_user("rep", name="Rita Rep")
    owned = [make_contact(rep, name=f"Owned {i}") for i in range(3)]
    with app.app_context():
        from webapp.services import activities

        contact = db.session.get(Contact, owned[0].id)
        activities.log_activity(
            db.session,
            db.session.get(User, rep.id),
            contact,
            "call",
            "Called about the order",
            activities.new_uuid(),
            None,
        )
        db.session.commit()
    return rep, owned


def test_removing_a_user_keeps_their_history_and_hands_over_their_contacts(
    app, make_user, make_contact, login
):
    rep, owned = _rep_with_history(make_user, make_contact, app)
    manager = make_user("manager", name="Mona Manager")
    rep_client = app.test_client()
    sign_in(rep_client, rep)
    admin_client = login(make_user("admin"))

    ask = admin_client.get(f"/users/{rep.id}/remove").get_data(as_text=True)
    assert "Who takes over Rita Rep's 3 contacts?" in ask
    r = admin_client.post(f"/users/{rep.id}/remove", data={"owner": str(manager.id)})
    assert r.status_code == 303
    assert "Rita Rep is removed. 3 contacts moved." in admin_client.get("/users/").get_data(
        as_text=True
    )

    # No sign-in, no session.
    assert rep_client.get("/contacts").status_code == 302
    assert sign_in(app.test_client(), rep).status_code == 401
    # Out of the list, in the Removed section.
    page = admin_client.get("/users/").get_data(as_text=True)
    listed, removed = page.split('id="removed-h"')
    assert "Rita Rep" not in listed.split('aria-label="Users"')[1]
    assert "Rita Rep" in removed and rep.email in removed
    with app.app_context():
        owners = set(db.session.scalars(select(Contact.owner_id)))
        assert owners == {manager.id}
        activity = db.session.scalar(select(Activity))
        assert activity.author_id == rep.id
    # The history still names them.
    timeline = admin_client.get(f"/contacts/{owned[0].id}").get_data(as_text=True)
    assert "Called about the order" in timeline and "Rita Rep" in timeline


def test_removal_asks_who_takes_over_the_contacts(app, make_user, make_contact, login):
    rep, _ = _rep_with_history(make_user, make_contact, app)
    admin_client = login(make_user("admin"))
    r = admin_client.post(f"/users/{rep.id}/remove", data={"owner": ""})
    assert r.status_code == 422
    assert "Choose who takes over the contacts, or no one." in r.get_data(as_text=True)
    assert _user_by_email(app, rep.email).removed_at is None
    disabled = make_user("rep")
    admin_client.post(f"/users/{disabled.id}/disable")
    r = admin_client.post(f"/users/{rep.id}/remove", data={"owner": str(disabled.id)})
    assert r.status_code == 422 and "Choose someone who can sign in" in r.get_data(as_text=True)
    r = admin_client.post(f"/users/{rep.id}/remove", data={"owner": "none"})
    assert r.status_code == 303
    with app.app_context():
        assert set(db.session.scalars(select(Contact.owner_id))) == {None}


def test_a_removed_user_is_gone_for_every_action(app, make_user, login):
    rep = make_user("rep")
    admin_client = login(make_user("admin"))
    admin_client.post(f"/users/{rep.id}/remove")
    for action in ("disable", "enable", "sign-out", "reset-link", "remove"):
        assert admin_client.post(f"/users/{rep.id}/{action}").status_code == 404
    assert admin_client.post(f"/users/{rep.id}/role", data={"role": "admin"}).status_code == 404
    page = admin_client.get(f"/users/{rep.id}").get_data(as_text=True)
    assert "Removed on" in page and "Change role" not in page


def test_an_admin_cannot_remove_themselves(app, make_user, login):
    admin = make_user("admin")
    client = login(admin)
    assert client.post(f"/users/{admin.id}/remove", data={"owner": "none"}).status_code == 403
    assert client.get("/contacts").status_code == 200


# Who may --------------------------------------------------------------------------------


def test_managers_view_users_and_invites_but_change_nothing(app, make_user, login):
    rep = make_user("rep")
    admin_client = login(make_user("admin"))
    _invite(admin_client)
    (link,) = _open_links(app)
    manager_client = app.test_client()
    sign_in(manager_client, make_user("manager"))
    page = manager_client.get("/users/").get_data(as_text=True)
    assert "nina@example.com" in page and "Invite someone" not in page and "Revoke" not in page
    assert manager_client.get(f"/users/{rep.id}").status_code == 200
    forbidden = [
        manager_client.post(
            "/users/invite", data={"email": "m@example.com", "name": "M", "role": "admin"}
        ),
        manager_client.post(f"/users/links/{link.id}/revoke"),
        manager_client.post(f"/users/{rep.id}/role", data={"role": "admin"}),
        manager_client.post(f"/users/{rep.id}/reset-link"),
        manager_client.get(f"/users/{rep.id}/remove"),
        manager_client.post(f"/users/{rep.id}/remove", data={"owner": "none"}),
        manager_client.post(f"/users/{rep.id}/disable"),
    ]
    assert [r.status_code for r in forbidden] == [403] * len(forbidden)
    assert [link.email for link in _open_links(app)] == ["nina@example.com"]
    assert _user_by_email(app, rep.email).role == "rep"


@pytest.mark.parametrize("role", ["rep", "support", "marketer"])
def test_others_may_not_see_or_change_users(app, make_user, login, role):
    target = make_user("rep")
    client = login(make_user(role))
    answers = [
        client.get("/users/"),
        client.get(f"/users/{target.id}"),
        client.post("/users/invite", data={"email": "x@example.com", "name": "X", "role": "admin"}),
        client.post(f"/users/{target.id}/role", data={"role": "admin"}),
        client.post(f"/users/{target.id}/remove", data={"owner": "none"}),
    ]
    assert [r.status_code for r in answers] == [403] * len(answers)
    assert _open_links(app) == []


def test_service_calls_check_the_role_too(app, make_user):
    manager, rep = make_user("manager"), make_user("rep")
    with app.app_context():
        actor, user = db.session.get(User, manager.id), db.session.get(User, rep.id)
        for call in (
            lambda: account_links.invite(db.session, actor, "z@example.com", "Z", "rep"),
            lambda: users.set_role(db.session, actor, user, "admin"),
            lambda: users.remove_user(db.session, actor, user, None),
            lambda: account_links.make_reset_link(db.session, actor, user),
        ):
            with pytest.raises(PermissionDenied):
                call()


def test_no_link_page_needs_a_sign_in_but_every_other_users_page_does(client):
    assert client.get("/users/").status_code == 302
    assert client.get(f"/users/join/{uuid.uuid4().hex}").status_code == 404
    assert client.get(f"/users/reset/{uuid.uuid4().hex}").status_code == 404
