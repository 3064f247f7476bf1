"""Signing in and out, throttling, ending sessions, disabling users."""

from datetime import timedelta

import pytest

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
        assert r.headers["Location"] == "/today"  # a rep's own start page
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


@pytest.mark.parametrize(
    ("setting", "scheme", "name", "secure"),
    [
        (True, "https", "__Host-crm_session", True),
        (True, "http", "crm_session", True),
        # `crm up` on plain http: Safari's engine keeps no Secure cookie from http.
        ("auto", "http", "crm_session", False),
        ("auto", "https", "__Host-crm_session", True),
        (False, "https", "crm_session", False),
    ],
)
def test_session_cookie_is_secure_over_https_and_plain_under_crm_up_on_http(
    app, make_user, setting, scheme, name, secure
):
    app.config["SESSION_COOKIE_SECURE"] = setting
    rep = make_user("rep")
    client = app.test_client()
    base = f"{scheme}://localhost"
    r = client.post(f"{base}/login", data={"email": rep.email, "password": PASSWORD})
    assert r.status_code == 303
    cookies = {c.split("=", 1)[0]: c for c in r.headers.getlist("Set-Cookie")}
    assert name in cookies, cookies
    for cookie in cookies.values():  # the device cookie follows the same rule
        assert ("; Secure" in cookie) is secure, cookie
    assert "; Domain" not in cookies[name] and "; Path=/;" in cookies[name]
    # The cookie is read back under its name: still signed in, and signed out for real.
    assert client.get(f"{base}/contacts").status_code == 200
    client.post(f"{base}/logout")
    assert client.get(f"{base}/contacts").status_code == 302


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [
        (None, True, True),
        (None, "auto", "auto"),
        ("auto", True, "auto"),
        ("false", True, False),
        ("true", "auto", True),
        ("0", "auto", False),
    ],
)
def test_session_cookie_secure_setting(monkeypatch, value, default, expected):
    from webapp import config

    if value is None:
        monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    else:
        monkeypatch.setenv("SESSION_COOKIE_SECURE", value)
    assert config.cookie_secure(default) == expected


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


def _fail(client, email: str, times: int, **kw) -> list[int]:
    return [
        client.post("/login", data={"email": email, "password": "wrong guess"}, **kw).status_code
        for _ in range(times)
    ]


def _age_failures(app, seconds: int) -> None:
    """Move every recorded failure seconds into the past (time passing)."""
    with app.app_context():
        for failure in db.session.query(LoginFailure):
            failure.at = failure.at - timedelta(seconds=seconds)
        db.session.commit()


def test_strangers_guesses_never_lock_the_owner_out_of_a_device_used_before(app, make_user):
    rep = make_user("rep")
    phone, stranger = app.test_client(), app.test_client()
    assert sign_in(phone, rep).status_code == 303
    phone.post("/logout")
    assert 429 in _fail(stranger, rep.email, 12)
    assert sign_in(stranger, rep).status_code == 429
    # The phone where the owner signed in before is not held back.
    assert sign_in(phone, rep).status_code == 303


def test_a_trusted_device_that_guesses_is_throttled_like_a_stranger(app, make_user):
    rep = make_user("rep")
    phone = app.test_client()
    sign_in(phone, rep)
    phone.post("/logout")
    statuses = _fail(phone, rep.email, app.config["LOGIN_MAX_FAILURES"] * 2 + 1)
    assert statuses[-1] == 429


def test_waits_grow_with_each_failure_and_then_lift(app, client, make_user):
    rep = make_user("rep")
    limit = app.config["LOGIN_MAX_FAILURES"]
    assert _fail(client, rep.email, limit) == [401] * limit
    first = sign_in(client, rep)
    assert first.status_code == 429
    assert "30 seconds" in first.get_data(as_text=True)
    _age_failures(app, 31)
    assert _fail(client, rep.email, 1) == [401]  # the wait is over; this one fails again
    second = sign_in(client, rep)
    assert second.status_code == 429
    assert "60 seconds" in second.get_data(as_text=True)
    _age_failures(app, 61)
    assert sign_in(client, rep).status_code == 303


def test_a_sign_in_clears_the_address_counter(app, make_user):
    rep, colleague = make_user("rep"), make_user("rep")
    office = app.test_client()
    limit = app.config["LOGIN_MAX_FAILURES"] * 4
    for i in range(limit - 1):
        office.post("/login", data={"email": f"typo{i}@example.com", "password": "x"})
    assert sign_in(office, rep).status_code == 303
    office.post("/logout")
    for i in range(limit - 1):
        office.post("/login", data={"email": f"again{i}@example.com", "password": "x"})
    fresh = app.test_client()
    assert sign_in(fresh, colleague).status_code == 303


def test_forwarded_addresses_count_only_behind_a_configured_proxy(app, make_user):
    victim = make_user("rep")
    limit = app.config["LOGIN_MAX_FAILURES"] * 4

    def guesses(client, forwarded_for):
        for i in range(limit):
            client.post(
                "/login",
                data={"email": f"nobody{i}@example.com", "password": "x"},
                headers={"X-Forwarded-For": forwarded_for},
            )

    # Without the setting the header is ignored: it cannot be used to dodge the throttle.
    direct = app.test_client()
    guesses(direct, "203.0.113.7")
    blocked = direct.post(
        "/login",
        data={"email": victim.email, "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.9"},
    )
    assert blocked.status_code == 429

    from webapp import create_app

    proxied_app = create_app({**app.config, "TRUSTED_PROXIES": 1})
    proxied = proxied_app.test_client()
    try:
        guesses(proxied, "203.0.113.8")
        other_person = proxied.post(
            "/login",
            data={"email": victim.email, "password": PASSWORD},
            headers={"X-Forwarded-For": "198.51.100.10"},
        )
        assert other_person.status_code == 303
    finally:
        with proxied_app.app_context():
            db.engine.dispose()


def test_a_copied_cookie_dies_with_sign_out(app, client, make_user):
    rep = make_user("rep")
    sign_in(client, rep)
    cookie = client.get_cookie("__Host-crm_session").value
    assert client.post("/logout").status_code == 303
    thief = app.test_client()
    thief.set_cookie("__Host-crm_session", cookie, domain="localhost")
    assert thief.get("/contacts").status_code == 302


def test_account_lists_devices_and_signs_out_another(app, make_user):
    rep = make_user("rep")
    phone, laptop = app.test_client(), app.test_client()
    sign_in(phone, rep, headers={"User-Agent": "Mozilla/5.0 (Linux; Android 14) Chrome/131.0"})
    sign_in(
        laptop, rep, headers={"User-Agent": "Mozilla/5.0 (Macintosh; Mac OS X 14) Firefox/133.0"}
    )
    page = laptop.get("/account").get_data(as_text=True)
    assert "Chrome on Android" in page
    assert "Firefox on macOS" in page
    with app.app_context():
        from webapp.models import UserSession

        ids = {s.user_agent: s.id for s in db.session.query(UserSession)}
    phone_id = next(i for ua, i in ids.items() if "Android" in ua)
    assert laptop.post(f"/account/sessions/{phone_id}/end").status_code == 303
    assert phone.get("/contacts").status_code == 302
    assert laptop.get("/contacts").status_code == 200


def test_a_very_long_email_is_just_a_failed_sign_in(client):
    r = client.post("/login", data={"email": "x" * 20_000 + "@example.com", "password": "x"})
    assert r.status_code == 401
