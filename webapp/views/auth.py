"""Signing in and out, and the account page with the devices signed in."""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from webapp.extensions import db
from webapp.security import cookie_secure
from webapp.services import auth
from webapp.views import client_address, home_for, safe_next

bp = Blueprint("auth", __name__)
# A browser where an account signed in keeps a signed device id: its sign-in attempts
# are throttled on their own, so strangers' guesses never hold the owner back.
DEVICE_COOKIE = "crm_device"
DEVICE_DAYS = 365


def _devices() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="trusted-device")


def _device_user() -> tuple[int, str] | None:
    """(user id, device id) from a valid device cookie, else None."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        user_id, device = _devices().loads(raw, max_age=DEVICE_DAYS * 86400)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(user_id, int) or not isinstance(device, str):
        return None
    return user_id, device


def _throttle() -> auth.Throttle:
    cfg = current_app.config
    return auth.Throttle(cfg["LOGIN_MAX_FAILURES"], timedelta(minutes=cfg["LOGIN_LOCK_MINUTES"]))


def _wait_words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"


@bp.get("/login")
def login_form():
    """The sign-in page."""
    if current_user.is_authenticated:
        return redirect(url_for(home_for(current_user)))
    return render_template("auth/login.html", email="", error=None, next=request.args.get("next"))


@bp.post("/login")
def login():
    """Check the password (throttled after repeated failures); start a session."""
    email = request.form.get("email", "")
    nxt = request.form.get("next")
    device_user = _device_user()
    try:
        user = auth.authenticate(
            db.session,
            email,
            request.form.get("password", ""),
            client_address(),
            _throttle(),
            device_user,
        )
    except auth.LoginThrottled as exc:
        error = (
            "Too many failed sign-ins for this account from this device or network."
            f" Try again in {_wait_words(exc.seconds)}."
        )
        return render_template("auth/login.html", email=email, error=error, next=nxt), 429
    if user is None:
        db.session.commit()
        error = "That email and password do not match an active account."
        return render_template("auth/login.html", email=email, error=error, next=nxt), 401
    key = auth.start_session(
        db.session, user, request.headers.get("User-Agent", ""), client_address()
    )
    db.session.commit()
    session.clear()
    session.permanent = True
    login_user(user)
    response = redirect(safe_next(nxt, url_for(home_for(user))), 303)
    device = device_user[1] if device_user and device_user[0] == user.id else key[:22]
    response.set_cookie(
        DEVICE_COOKIE,
        _devices().dumps([user.id, device]),
        max_age=DEVICE_DAYS * 86400,
        path=url_for("auth.login"),
        secure=cookie_secure(),
        httponly=True,
        samesite="Lax",
    )
    return response


def _signed_out(message: str):
    logout_user()
    session.clear()
    flash(message, "info")
    return redirect(url_for("auth.login_form"), 303)


@bp.post("/logout")
@login_required
def logout():
    """Sign out on this device: its session ends on the server too."""
    auth.end_session(db.session, current_user.session_key)
    db.session.commit()
    return _signed_out("You are signed out.")


@bp.post("/account/sign-out-everywhere")
@login_required
def sign_out_everywhere():
    """End this user's sessions on every device, this one included."""
    auth.end_all_sessions(db.session, current_user)
    db.session.commit()
    return _signed_out("You are signed out on every device.")


@bp.post("/account/sessions/<int:session_id>/end")
@login_required
def end_session(session_id: int):
    """Sign out one of your devices (a lost phone); this one signs out as by Sign out."""
    current = any(
        row.id == session_id and auth.is_current(current_user, row)
        for row in auth.sessions_of(db.session, current_user)
    )
    if not auth.end_session_of(db.session, current_user, session_id):
        flash("That device was already signed out.", "info")
    else:
        flash("That device is signed out.", "success")
    db.session.commit()
    if current:
        return _signed_out("You are signed out.")
    return redirect(url_for("auth.account"), 303)


_BROWSERS = (
    ("Edg/", "Edge"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Mac OS X", "macOS"),
    ("Windows", "Windows"),
    ("Linux", "Linux"),
)


@bp.app_template_filter("device")
def device_name(user_agent: str) -> str:
    """A browser's User-Agent in a few words: "Chrome on Android"."""
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), "A browser")
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), None)
    return f"{browser} on {system}" if system else browser


@bp.get("/account")
@login_required
def account():
    """Who is signed in, on which devices, with the sign-out actions."""
    rows = auth.sessions_of(db.session, current_user)
    return render_template(
        "auth/account.html",
        sessions=[(row, auth.is_current(current_user, row)) for row in rows],
    )
