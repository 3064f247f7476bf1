"""Users, for admins (manage) and managers (view): invite, roles, disable and enable, end
sessions, password-reset links, removal, and the audit log (admins only); and the pages
an invite or reset link opens, where the person sets a password and is signed in."""

from __future__ import annotations

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
from flask_login import current_user, login_user

from webapp.extensions import db
from webapp.htmx import render
from webapp.inputs import id_field
from webapp.models import ROLES, User
from webapp.models.base import utcnow
from webapp.services import account_links, audit, auth, users
from webapp.services.errors import ValidationError
from webapp.services.permissions import require
from webapp.views import client_address, home_for

bp = Blueprint("users", __name__, url_prefix="/users")
# The pages a link opens, for people not signed in (yet).
PUBLIC = {"users.join", "users.reset_password"}
# Where a link made a moment ago waits to be shown once (only its hash is stored).
SHOWN_LINK = "shown_link"


@bp.before_request
def signed_in():
    """Every page here but the link pages needs a signed-in user."""
    if request.endpoint in PUBLIC:
        return None
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    return None


def _first(errors: dict[str, str]) -> str:
    return next(iter(errors.values()), "That was not possible.")


def _show_once(kind: str, token: str, name: str, email: str) -> None:
    """Keep the new link for the next page, which shows it and forgets it."""
    endpoint = "users.join" if kind == "invite" else "users.reset_password"
    session[SHOWN_LINK] = {
        "url": url_for(endpoint, token=token, _external=True),
        "kind": kind,
        "name": name,
        "email": email,
    }


def _index(form: dict | None = None, errors: dict | None = None, status: int = 200):
    return (
        render_template(
            "users/index.html",
            users=users.list_users(db.session, current_user),
            links=account_links.open_links(db.session, current_user),
            removed=users.removed_users(db.session, current_user),
            roles=ROLES,
            form=form or {"role": "rep"},
            errors=errors or {},
            shown=session.pop(SHOWN_LINK, None),
            link_days=account_links.LINK_LIFETIME.days,
            now=utcnow(),
        ),
        status,
    )


@bp.get("/")
def index():
    """Users with their role and state, open invites, removed users; the invite form for
    admins. :raise 403: not admin or manager."""
    return _index()


@bp.post("/invite")
def invite():
    """Make an invite link, shown once on the next page; bad input comes back with
    messages by the fields."""
    data = {f: request.form.get(f, "") for f in ("email", "name", "role")}
    try:
        link, token = account_links.invite(db.session, current_user, **data)
    except ValidationError as exc:
        db.session.rollback()
        return _index(form=data, errors=exc.errors, status=422)
    db.session.commit()
    _show_once("invite", token, link.name, link.email)
    return redirect(url_for("users.index"), 303)


@bp.post("/links/<int:link_id>/revoke")
def revoke_link(link_id: int):
    """Withdraw an invite or reset link. :raise 403: not admin. :raise 404:"""
    link = account_links.revoke_link(db.session, current_user, link_id)
    db.session.commit()
    flash(f"The link for {link.email} no longer works.", "success")
    return redirect(url_for("users.index"), 303)


@bp.get("/<int:user_id>")
def show(user_id: int):
    """One user: role, state, devices, and the admin's actions."""
    user = users.get_user(db.session, current_user, user_id)
    return render_template(
        "users/show.html",
        user=user,
        roles=ROLES,
        sessions=len(auth.sessions_of(db.session, user)),
        owned=users.owned_contacts(db.session, user),
        shown=session.pop(SHOWN_LINK, None),
        link_days=account_links.LINK_LIFETIME.days,
    )


def _back(user: User):
    return redirect(url_for("users.show", user_id=user.id), 303)


def _refused(user: User, exc: ValidationError):
    db.session.rollback()
    flash(_first(exc.errors), "error")
    return _back(user)


@bp.post("/<int:user_id>/role")
def set_role(user_id: int):
    """Give another user a role; never one's own, never demoting the last admin."""
    user = users.get_user(db.session, current_user, user_id)
    role = request.form.get("role", "")
    try:
        changed = users.set_role(db.session, current_user, user, role)
    except ValidationError as exc:
        return _refused(user, exc)
    db.session.commit()
    if changed:
        flash(f"{user.name} is now {role}.", "success")
    return _back(user)


@bp.post("/<int:user_id>/disable")
def disable(user_id: int):
    """Disable a user; their sessions end at once. :raise 403: not admin."""
    user = users.get_user(db.session, current_user, user_id)
    try:
        users.set_disabled(db.session, current_user, user, True)
    except ValidationError as exc:
        return _refused(user, exc)
    db.session.commit()
    flash(f"{user.name} is disabled and signed out everywhere.", "success")
    return redirect(url_for("users.index"), 303)


@bp.post("/<int:user_id>/enable")
def enable(user_id: int):
    """Let a disabled user sign in again. :raise 403: not admin."""
    user = users.get_user(db.session, current_user, user_id)
    users.set_disabled(db.session, current_user, user, False)
    db.session.commit()
    flash(f"{user.name} can sign in again.", "success")
    return redirect(url_for("users.index"), 303)


@bp.post("/<int:user_id>/sign-out")
def sign_out(user_id: int):
    """End every session of a user (a lost phone). :raise 403: not admin."""
    user = users.get_user(db.session, current_user, user_id)
    users.end_sessions(db.session, current_user, user)
    db.session.commit()
    flash(f"{user.name} is signed out on every device.", "success")
    return redirect(url_for("users.index"), 303)


@bp.post("/<int:user_id>/reset-link")
def reset_link(user_id: int):
    """Make a password-reset link for a user, shown once on their page."""
    user = users.get_user(db.session, current_user, user_id)
    try:
        link, token = account_links.make_reset_link(db.session, current_user, user)
    except ValidationError as exc:
        return _refused(user, exc)
    db.session.commit()
    _show_once("reset", token, link.name, link.email)
    return _back(user)


def _remove_page(user: User, errors: dict | None = None, status: int = 200):
    require(current_user, "user.manage")
    return (
        render_template(
            "users/remove.html",
            user=user,
            owned=users.owned_contacts(db.session, user),
            successors=users.successors(db.session, user),
            errors=errors or {},
        ),
        status,
    )


@bp.get("/<int:user_id>/remove")
def remove_form(user_id: int):
    """Ask first: who takes over the user's contacts. :raise 403: not admin."""
    user = users.get_user(db.session, current_user, user_id)
    if user.removed_at is not None:
        return _back(user)
    return _remove_page(user)


@bp.post("/<int:user_id>/remove")
def remove(user_id: int):
    """Remove a user; their contacts go to the one chosen (or to no one)."""
    user = users.get_user(db.session, current_user, user_id)
    owner = request.form.get("owner", "")
    # "none": no one takes them over; empty: not chosen yet, which only a user owning
    # no contacts may leave.
    owner_id = id_field(request.form, "owner") if owner not in ("", "none") else None
    if owner == "" and users.owned_contacts(db.session, user):
        return _remove_page(user, {"owner": "Choose who takes over the contacts, or no one."}, 422)
    name = user.name
    try:
        moved = users.remove_user(db.session, current_user, user, owner_id)
    except ValidationError as exc:
        db.session.rollback()
        if "owner" in exc.errors:
            return _remove_page(user, exc.errors, 422)
        return _refused(user, exc)
    db.session.commit()
    flash(
        f"{name} is removed."
        + (f" {moved} contact{'s' if moved != 1 else ''} moved." if moved else ""),
        "success",
    )
    return redirect(url_for("users.index"), 303)


@bp.get("/audit")
def audit_log():
    """The audit log, newest first, by actor and by record. :raise 403: not admin."""
    require(current_user, "audit.view")
    before = id_field(request.args, "before")
    actor_id = id_field(request.args, "actor")
    record_type = request.args.get("record_type") or None
    if record_type not in (None, *audit.RECORD_TYPES):
        record_type = None
    record_id = id_field(request.args, "record_id") if record_type else None
    page = audit.events(
        db.session,
        current_user,
        before=before,
        actor_id=actor_id,
        record_type=record_type,
        record_id=record_id,
    )
    args = {
        k: v
        for k, v in {
            "actor": actor_id,
            "record_type": record_type,
            "record_id": record_id,
        }.items()
        if v is not None
    }
    everyone = users.list_users(db.session, current_user) + users.removed_users(
        db.session, current_user
    )
    return render(
        "users/audit.html",
        "users/_audit_rows.html" if before else "users/audit.html",
        page=page,
        args=args,
        people=sorted(everyone, key=lambda u: u.name.lower()),
        record_types=audit.RECORD_TYPES,
        words=audit.ACTION_WORDS,
    )


# The pages a link opens --------------------------------------------------------------


def _link_page(token: str, kind: str):
    link = account_links.link_by_token(db.session, token)
    if link is None or link.kind != kind:
        return None, (
            render_template(
                "users/link.html",
                link=None,
                why="This link is not known: check that it was copied whole,"
                " or ask an admin for a new one.",
                errors={},
            ),
            404,
        )
    state = account_links.link_state(link)
    if not state.open:
        return None, (render_template("users/link.html", link=link, why=state.why, errors={}), 410)
    return link, None


def _use(token: str, kind: str):
    """Show the link's form (GET) or set the password and sign in (POST)."""
    link, closed = _link_page(token, kind)
    if closed:
        return closed
    if request.method == "GET":
        return render_template("users/link.html", link=link, why=None, errors={})
    try:
        user = account_links.use_link(
            db.session, token, request.form.get("password", ""), client_address()
        )
    except account_links.LinkClosed as exc:
        db.session.rollback()
        return render_template("users/link.html", link=link, why=str(exc), errors={}), 410
    except ValidationError as exc:
        db.session.rollback()
        if "password" in exc.errors:
            return render_template("users/link.html", link=link, why=None, errors=exc.errors), 422
        return render_template("users/link.html", link=link, why=_first(exc.errors), errors={}), 409
    if current_user.is_authenticated:
        # Someone else was signed in on this browser: that session ends, as by Sign out.
        auth.end_session(db.session, current_user.session_key)
    auth.start_session(db.session, user, request.headers.get("User-Agent", ""), client_address())
    db.session.commit()
    session.clear()
    session.permanent = True
    login_user(user)
    if kind == "invite":
        flash(f"Welcome, {user.name}: you are signed in.", "success")
    else:
        flash("Your new password is set; every other device is signed out.", "success")
    return redirect(url_for(home_for(user)), 303)


@bp.route("/join/<token>", methods=["GET", "POST"])
def join(token: str):
    """An invite: set a password, and the account is made and signed in."""
    return _use(token, "invite")


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    """A password reset: set a new password; every session ends and this one starts."""
    return _use(token, "reset")
