"""Users, for admins (manage) and managers (view): disable, enable, end sessions."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import User
from webapp.services import auth, users
from webapp.services.permissions import can, require

bp = Blueprint("users", __name__, url_prefix="/users")


@bp.before_request
@login_required
def signed_in():
    """Every page here needs a signed-in user."""


@bp.get("/")
def index():
    """All users with their role and state. :raise 403: not admin or manager."""
    require(current_user, "user.view")
    rows = db.session.scalars(select(User).order_by(User.name)).all()
    return render_template(
        "users/index.html", users=rows, can_manage=can(current_user, "user.manage")
    )


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.post("/<int:user_id>/disable")
def disable(user_id: int):
    """Disable a user; their sessions end at once. :raise 403: not admin."""
    user = _user(user_id)
    users.set_disabled(db.session, current_user, user, True)
    db.session.commit()
    flash(f"{user.name} is disabled and signed out everywhere.", "success")
    return redirect(url_for("users.index"), 303)


@bp.post("/<int:user_id>/enable")
def enable(user_id: int):
    """Let a disabled user sign in again. :raise 403: not admin."""
    user = _user(user_id)
    users.set_disabled(db.session, current_user, user, False)
    db.session.commit()
    flash(f"{user.name} can sign in again.", "success")
    return redirect(url_for("users.index"), 303)


@bp.post("/<int:user_id>/sign-out")
def sign_out(user_id: int):
    """End every session of a user (a lost phone). :raise 403: not admin."""
    user = _user(user_id)
    require(current_user, "user.manage")
    auth.end_all_sessions(db.session, user)
    db.session.commit()
    flash(f"{user.name} is signed out on every device.", "success")
    return redirect(url_for("users.index"), 303)
