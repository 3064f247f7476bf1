"""How the inbox works, set by those allowed: the ready replies support keeps (managers,
admins and support), the team's round robin (who takes new items, how many each holds;
managers and admins), the SLA policy, and the sentiment page where admins see how often
staff agree with VADER and teach it the words it reads wrongly here (admins)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from social import sentiment
from webapp.extensions import db
from webapp.htmx import render
from webapp.inputs import id_field
from webapp.models import CannedReply, User
from webapp.services import canned as ready_replies
from webapp.services import lexicon, routing, sla, triage
from webapp.services.errors import NotFoundError, ValidationError
from webapp.services.permissions import can
from webapp.views import counted

bp = Blueprint("inbox_settings", __name__, url_prefix="/inbox")

TRY_MAX = 1_000


@bp.before_request
@login_required
def signed_in():
    """Every settings page needs a signed-in user."""


def _allowed(action: str) -> None:
    if not can(current_user, action):
        abort(403)


# -- ready replies --------------------------------------------------------------------


def _canned_page(form=None, errors=None, editing: int | None = None, status: int = 200):
    return render(
        "inbox/canned.html",
        "inbox/canned.html",
        status=status,
        canned=ready_replies.canned_replies(db.session),
        variables=ready_replies.VARIABLES,
        form=form or {},
        errors=errors or {},
        editing=editing,
    )


@bp.get("/canned")
def canned():
    """The ready replies, with their short codes; adding and changing them."""
    _allowed("canned.manage")
    return _canned_page()


@bp.post("/canned")
def save_canned():
    """Add a ready reply, or change one (canned_id)."""
    _allowed("canned.manage")
    canned_id = id_field(request.form, "canned_id")
    existing = db.session.get(CannedReply, canned_id) if canned_id else None
    if canned_id and existing is None:
        abort(404)
    try:
        saved = ready_replies.save_canned(
            db.session,
            current_user,
            request.form.get("short_code", ""),
            request.form.get("body", ""),
            existing,
        )
    except ValidationError as exc:
        db.session.rollback()
        return _canned_page(request.form, exc.errors, editing=canned_id, status=422)
    db.session.commit()
    flash(f"Saved /{saved.short_code}.", "success")
    return redirect(url_for("inbox_settings.canned"), 303)


@bp.post("/canned/<int:canned_id>/delete")
def delete_canned(canned_id: int):
    ready_replies.delete_canned(db.session, current_user, canned_id)
    db.session.commit()
    flash("Deleted.", "success")
    return redirect(url_for("inbox_settings.canned"), 303)


# -- the team's round robin -----------------------------------------------------------


def _team_page(errors=None, editing: int | None = None, status: int = 200):
    return render(
        "inbox/team.html",
        "inbox/team.html",
        status=status,
        team=routing.team(db.session),
        limit_max=routing.LIMIT_MAX,
        errors=errors or {},
        editing=editing,
    )


@bp.get("/team")
def team():
    """The support team: who is taking new items, what each holds, each one's limit."""
    _allowed("triage.team")
    return _team_page()


@bp.post("/team/<int:user_id>")
def save_member(user_id: int):
    """A person's limit, and whether they take new items now."""
    _allowed("triage.team")
    person = db.session.get(User, user_id)
    if person is None:
        abort(404)
    try:
        routing.set_limit(db.session, current_user, person, request.form.get("limit", ""))
        on = request.form.get("available") == "1"
        given = routing.set_available(db.session, current_user, person, on)
    except ValidationError as exc:
        db.session.rollback()
        return _team_page(exc.errors, editing=user_id, status=422)
    db.session.commit()
    got = f"; {counted(given, 'waiting item')} given to them" if given else ""
    flash(f"Saved {person.name}{got}.", "success")
    return redirect(url_for("inbox_settings.team"), 303)


# -- the SLA policy -------------------------------------------------------------------


@bp.route("/sla", methods=["GET", "POST"])
def sla_policy():
    """The service-level targets mentions are held to (admins set them)."""
    _allowed("sla.manage")
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = {**request.form.to_dict(), "days": request.form.getlist("days")}
        try:
            sla.save_policy(db.session, current_user, form)
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            flash("SLA policy saved: it applies to mentions from now on.", "success")
            return redirect(url_for("inbox_settings.sla_policy"), 303)
    policy = sla.active_policy(db.session)
    return render(
        "inbox/sla.html",
        "inbox/sla.html",
        status=422 if errors else 200,
        policy=policy,
        described=sla.describe(policy),
        days=sla.DAY_NAMES,
        errors=errors,
    )


# -- sentiment: agreement and lexicon rules -------------------------------------------


def _sentiment_page(form=None, errors=None, status: int = 200):
    rows = triage.agreement(db.session)
    checked = sum(r["checked"] for r in rows)
    agreed = sum(r["agreed"] for r in rows)
    tried = request.args.get("try", "").strip()[:TRY_MAX]
    return render(
        "inbox/sentiment.html",
        "inbox/sentiment.html",
        status=status,
        agreement=rows,
        checked=checked,
        agreed=agreed,
        rules=lexicon.live(db.session),
        history=lexicon.history(db.session),
        tried=tried,
        trial=sentiment.explain(tried, "en", lexicon.in_force(db.session)) if tried else None,
        form=form or {},
        errors=errors or {},
    )


@bp.get("/sentiment")
def sentiment_page():
    """How often staff agree with VADER, per network and language; the lexicon rules in
    force, who added them, and a sentence to try them on."""
    _allowed("lexicon.manage")
    return _sentiment_page()


@bp.post("/sentiment/rules")
def save_rule():
    """Add a rule (or change the valence of the rule for that phrase)."""
    _allowed("lexicon.manage")
    try:
        phrase, valence = request.form.get("phrase", ""), request.form.get("valence", "")
        rule = lexicon.save(db.session, current_user, phrase, valence)
    except ValidationError as exc:
        db.session.rollback()
        return _sentiment_page(request.form, exc.errors, status=422)
    db.session.commit()
    flash(f"“{rule.phrase}” now counts {rule.valence:+g} in mentions from now on.", "success")
    return redirect(url_for("inbox_settings.sentiment_page"), 303)


@bp.post("/sentiment/rules/<int:rule_id>/remove")
def remove_rule(rule_id: int):
    """Take a rule back; mentions already scored keep their score."""
    _allowed("lexicon.manage")
    try:
        rule = lexicon.remove(db.session, current_user, rule_id)
    except NotFoundError as exc:
        db.session.rollback()
        flash(str(exc), "info")
    else:
        db.session.commit()
        flash(f"Removed “{rule.phrase}”: new mentions are scored without it.", "success")
    return redirect(url_for("inbox_settings.sentiment_page"), 303)
