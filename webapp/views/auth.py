"""Signing in and out, and the account page."""

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

from webapp.extensions import db
from webapp.services import users
from webapp.views import client_address, safe_next

bp = Blueprint("auth", __name__)


@bp.get("/login")
def login_form():
    """The sign-in page."""
    if current_user.is_authenticated:
        return redirect(url_for("contacts.index"))
    return render_template("auth/login.html", email="", error=None, next=request.args.get("next"))


@bp.post("/login")
def login():
    """Check the password; throttled after repeated failures."""
    email = request.form.get("email", "")
    nxt = request.form.get("next")
    cfg = current_app.config
    try:
        user = users.authenticate(
            db.session,
            email,
            request.form.get("password", ""),
            client_address(),
            cfg["LOGIN_MAX_FAILURES"],
            timedelta(minutes=cfg["LOGIN_LOCK_MINUTES"]),
        )
    except users.LoginThrottled as exc:
        error = f"Too many failed sign-ins. Try again in {exc.minutes} minutes."
        return render_template("auth/login.html", email=email, error=error, next=nxt), 429
    db.session.commit()
    if user is None:
        error = "That email and password do not match an active account."
        return render_template("auth/login.html", email=email, error=error, next=nxt), 401
    session.clear()
    session.permanent = True
    login_user(user)
    return redirect(safe_next(nxt, url_for("contacts.index")), 303)


@bp.post("/logout")
@login_required
def logout():
    """Sign out on this device."""
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login_form"), 303)


@bp.post("/account/sign-out-everywhere")
@login_required
def sign_out_everywhere():
    """End this user's sessions on every device, this one included."""
    users.end_all_sessions(db.session, current_user)
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are signed out on every device.", "info")
    return redirect(url_for("auth.login_form"), 303)


@bp.get("/account")
@login_required
def account():
    """Who is signed in, with the sign-out actions."""
    return render_template("auth/account.html")
