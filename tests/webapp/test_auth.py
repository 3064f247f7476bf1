"""Signing in and out, throttling, ending sessions, disabling users."""

from datetime import timedelta

from tests.conftest import PASSWORD, sign_in
from webapp.extensions import db
from webapp.models import LoginFailure
from webapp.models.base import utcnow


def test_pages_need_sign_in(client):
    r = client.get("/contacts")
    assert r.status_code == 302
    assert "/login?next=%2Fcontacts" in r.headers["Location"]


def test_sign_in_goes_to_the_page_asked_for(client, make_user, make_contact):
    rep = make_user("rep")
    contact = make_contact(rep, name="Nina Next")
    r = client.post(
        "/login",
        data={"email": rep.email, "password": PASSWORD, "next": f"/contacts/{contact.id}"},
    )
    assert r.status_code == 303
    assert r.headers["Location"] == f"/contacts/{contact.id}"


def test_sign_in_ignores_offsite_next(client, make_user):
    rep = make_user("rep")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = client.post("/login", data={"email": rep.email, "password": PASSWORD, "next": target})
        assert r.headers["Location"] == "/contacts"
        client.post("/logout")


def test_wrong_password_is_refused_with_a_message(client, make_user):
    rep = make_user("rep")
    r = client.post("/login", data={"email": rep.email, "password": "wrong password"})
    assert r.status_code == 401
    assert "do not match" in r.get_data(as_text=True)
    assert client.get("/contacts").status_code == 302


def test_email_is_case_insensitive(client, make_user):
    make_user("rep", email="Case@Example.com")
    r = client.post("/login", data={"email": "CASE@example.COM", "password": PASSWORD})
    assert r.status_code == 303


def test_throttled_after_repeated_failures_even_with_the_right_password(app, client, make_user):
    rep = make_user("rep")
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert (
            client.post("/login", data={"email": rep.email, "password": "nope"}).status_code == 401
        )
    r = sign_in(client, rep)
    assert r.status_code == 429
    assert "Too many failed sign-ins" in r.get_data(as_text=True)
    assert client.get("/contacts").status_code == 302


def test_throttle_lifts_after_the_lock_window(app, client, make_user):
    rep = make_user("rep")
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        client.post("/login", data={"email": rep.email, "password": "nope"})
    past = utcnow() - timedelta(minutes=app.config["LOGIN_LOCK_MINUTES"] + 1)
    with app.app_context():
        db.session.query(LoginFailure).update({LoginFailure.at: past})
        db.session.commit()
    assert sign_in(client, rep).status_code == 303


def test_throttle_by_client_address_across_accounts(app, client, make_user):
    """Guessing across many accounts from one address is throttled too."""
    victim = make_user("rep")
    limit = app.config["LOGIN_MAX_FAILURES"] * 4
    for i in range(limit):
        client.post("/login", data={"email": f"nobody{i}@example.com", "password": "x"})
    assert sign_in(client, victim).status_code == 429


def test_unknown_email_and_wrong_password_answer_alike(client, make_user):
    rep = make_user("rep")
    a = client.post("/login", data={"email": "ghost@example.com", "password": "x"})
    b = client.post("/login", data={"email": rep.email, "password": "x"})
    assert a.status_code == b.status_code == 401
    message = "That email and password do not match an active account."
    assert message in a.get_data(as_text=True)
    assert message in b.get_data(as_text=True)


def test_session_cookie_flags(client, make_user):
    rep = make_user("rep")
    r = sign_in(client, rep)
    cookie = r.headers["Set-Cookie"]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_logout_ends_the_session(client, make_user, login):
    login(make_user("rep"))
    assert client.get("/contacts").status_code == 200
    assert client.post("/logout").status_code == 303
    assert client.get("/contacts").status_code == 302


def test_sign_out_everywhere_ends_other_devices(app, make_user):
    rep = make_user("rep")
    phone, laptop = app.test_client(), app.test_client()
    sign_in(phone, rep)
    sign_in(laptop, rep)
    assert phone.get("/contacts").status_code == 200
    laptop.post("/account/sign-out-everywhere")
    assert phone.get("/contacts").status_code == 302
    assert laptop.get("/contacts").status_code == 302
    assert sign_in(phone, rep).status_code == 303


def test_disabling_a_user_ends_their_sessions_and_sign_in(app, make_user):
    admin, rep = make_user("admin"), make_user("rep")
    admin_client, rep_client = app.test_client(), app.test_client()
    sign_in(admin_client, admin)
    sign_in(rep_client, rep)
    assert rep_client.get("/contacts").status_code == 200
    assert admin_client.post(f"/users/{rep.id}/disable").status_code == 303
    assert rep_client.get("/contacts").status_code == 302
    assert sign_in(rep_client, rep).status_code == 401
    admin_client.post(f"/users/{rep.id}/enable")
    assert sign_in(rep_client, rep).status_code == 303


def test_admin_ends_a_users_sessions(app, make_user):
    admin, rep = make_user("admin"), make_user("rep")
    admin_client, rep_client = app.test_client(), app.test_client()
    sign_in(admin_client, admin)
    sign_in(rep_client, rep)
    admin_client.post(f"/users/{rep.id}/sign-out")
    assert rep_client.get("/contacts").status_code == 302


def test_only_admins_manage_users(app, make_user, login):
    manager, rep = make_user("manager"), make_user("rep")
    client = login(manager)
    assert client.get("/users/").status_code == 200
    assert client.post(f"/users/{rep.id}/disable").status_code == 403
    assert client.post(f"/users/{rep.id}/sign-out").status_code == 403
    client.post("/logout")
    login(rep)
    assert client.get("/users/").status_code == 403


def test_admin_cannot_disable_themselves(make_user, login):
    admin = make_user("admin")
    client = login(admin)
    assert client.post(f"/users/{admin.id}/disable").status_code == 403
    assert client.get("/contacts").status_code == 200


def test_unknown_user_id_is_404(make_user, login):
    client = login(make_user("admin"))
    assert client.post("/users/9999/disable").status_code == 404
