"""Deals: the board (a list grouped by stage on a phone), a deal's page, new and edit,
moving along the stages (picker, drag, keys), won and lost, delete and undo; the
pipeline, forecast, stuck-deal and team reports; the stages admins edit."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from webapp.extensions import db
from webapp.htmx import render, wants_fragment
from webapp.inputs import id_field
from webapp.models.base import utcnow
from webapp.services import board, contacts, deal_reports, deals
from webapp.services import stages as pipeline_stages
from webapp.services.errors import ValidationError
from webapp.services.permissions import require
from webapp.templating import user_zone
from webapp.views import form_data, safe_next, undo_flash

bp = Blueprint("deals", __name__)
DEAL_FIELDS = (
    "title",
    "amount",
    "currency",
    "stage_id",
    "expected_close",
    "company",
    "next_step",
    "notes",
)
STAGE_FIELDS = ("name", "position", "probability", "rotting_days", "kind")


@bp.before_request
@login_required
def signed_in():
    """Every deal page needs a signed-in user."""


def _currency() -> str:
    return current_app.config["DEFAULT_CURRENCY"]


def _back(default: str) -> str:
    return safe_next(request.form.get("next") or request.args.get("next"), default)


@bp.get("/deals")
def index():
    """The pipeline: columns of open stages on a desktop, stages one under another on a
    phone, each card with a stage picker."""
    require(current_user, "deal.view")
    mine = request.args.get("mine") == "1"
    columns = board.board(db.session, current_user, mine=mine)
    return render_template(
        "deals/index.html", columns=columns, mine=mine, stages=deals.stages(db.session)
    )


@bp.get("/deals/columns/<int:stage_id>")
def column(stage_id: int):
    """More cards of one stage after ?after= (the rows, for htmx), or the whole stage's
    page. :raise 404:"""
    require(current_user, "deal.view")
    stage = deals.get_stage(db.session, stage_id)
    mine = request.args.get("mine") == "1"
    after = id_field(request.args, "after")
    cards, more = board.column_deals(db.session, current_user, stage, after=after, mine=mine)
    return render(
        "deals/column.html",
        "deals/_cards.html",
        stage=stage,
        cards=cards,
        more=more,
        mine=mine,
        stages=deals.stages(db.session),
    )


def _form_page(template: str, status: int = 200, **ctx):
    ctx.setdefault("errors", {})
    ctx.setdefault("open_stages", deals.open_stages(db.session))
    return render_template(template, **ctx), status


@bp.get("/contacts/<int:contact_id>/deals/new")
def new(contact_id: int):
    """The new-deal form for a contact. :raise 404: :raise 403:"""
    contact = contacts.get_contact(db.session, current_user, contact_id)
    require(current_user, "deal.create")
    form = deals.new_deal_form(db.session, contact, _currency())
    return _form_page("deals/form.html", contact=contact, deal=None, form=form)


@bp.post("/contacts/<int:contact_id>/deals")
def create(contact_id: int):
    """Make the deal, once however often the form is sent."""
    contact = contacts.get_contact(db.session, current_user, contact_id)
    form = form_data(*DEAL_FIELDS, "uuid")
    try:
        deal, created = deals.create_deal(
            db.session, current_user, contact, form, form["uuid"], _currency()
        )
    except ValidationError as exc:
        db.session.rollback()
        return _form_page(
            "deals/form.html", 422, contact=contact, deal=None, form=form, errors=exc.errors
        )
    db.session.commit()
    if created:
        flash(f"Added the deal {deal.title}.", "success")
    return redirect(url_for("deals.show", deal_id=deal.id), 303)


def _show(deal, status: int = 200, errors: dict | None = None, form: dict | None = None):
    return render_template(
        "deals/show.html",
        deal=deal,
        history=deals.history(db.session, deal),
        stages=deals.stages(db.session),
        errors=errors or {},
        form=form or {},
    ), status


@bp.get("/deals/<int:deal_id>")
def show(deal_id: int):
    """A deal's page: where it stands, its next step, its history. :raise 404:"""
    return _show(deals.get_deal(db.session, current_user, deal_id))


@bp.get("/deals/<int:deal_id>/edit")
def edit(deal_id: int):
    """The edit form. :raise 404: :raise 403:"""
    deal = deals.get_deal(db.session, current_user, deal_id)
    require(current_user, "deal.edit", deal)
    return _form_page(
        "deals/form.html", contact=deal.contact, deal=deal, form=deals.edit_form(deal)
    )


@bp.post("/deals/<int:deal_id>/edit")
def update(deal_id: int):
    """Save the edit form; bad input comes back with messages and the input kept."""
    deal = deals.get_deal(db.session, current_user, deal_id)
    form = form_data(*DEAL_FIELDS)
    try:
        deals.update_deal(db.session, current_user, deal, form, _currency())
    except ValidationError as exc:
        db.session.rollback()
        deal = deals.get_deal(db.session, current_user, deal_id)
        return _form_page(
            "deals/form.html", 422, contact=deal.contact, deal=deal, form=form, errors=exc.errors
        )
    db.session.commit()
    flash("Saved.", "success")
    return redirect(url_for("deals.show", deal_id=deal.id), 303)


@bp.post("/deals/<int:deal_id>/move")
def move(deal_id: int):
    """Move the deal to a stage (and between two cards): htmx and the board's script
    get the card back; a plain form goes back where it came from. A move made on a
    page that is out of date is refused (409) and says so."""
    deal = deals.get_deal(db.session, current_user, deal_id)
    try:
        deals.move_deal(
            db.session,
            current_user,
            deal,
            id_field(request.form, "stage_id"),
            id_field(request.form, "from_stage"),
            id_field(request.form, "prev_id"),
            id_field(request.form, "next_id"),
        )
    except ValidationError as exc:
        db.session.rollback()
        status = 409 if isinstance(exc, deals.StaleMove) else 422
        message = " ".join(exc.errors.values())
        if wants_fragment():
            return render_template("deals/_problem.html", message=message), status
        flash(message, "error")
        return redirect(_back(url_for("deals.index")), 303)
    db.session.commit()
    if wants_fragment():
        card = render_template(
            "deals/_card.html", c=board.card_of(current_user, deal), stages=deals.stages(db.session)
        )
        return card + _column_sums(id_field(request.form, "from_stage"), deal.stage_id)
    flash(f"Moved {deal.title} to {deal.stage.name}.", "success")
    return redirect(_back(url_for("deals.index")), 303)


def _column_sums(*stage_ids: int | None) -> str:
    """The new count and totals of the board columns a move touched, as the board shows
    them (everyone's, or the viewer's own with mine=1)."""
    ids = sorted({i for i in stage_ids if i is not None})
    totals = board.totals_by_stage(db.session, current_user, ids, request.form.get("mine") == "1")
    return "".join(
        render_template(
            "deals/_column_sum.html",
            stage_id=i,
            count=totals.get(i, (0, {}))[0],
            totals=totals.get(i, (0, {}))[1],
        )
        for i in ids
    )


@bp.post("/deals/<int:deal_id>/win")
def win(deal_id: int):
    """Mark the deal won."""
    deal = deals.get_deal(db.session, current_user, deal_id)
    was_in = deal.stage_id
    deals.win_deal(db.session, current_user, deal)
    db.session.commit()
    if wants_fragment():  # the board's script takes the card off the board
        return _column_sums(was_in), 200
    flash(f"Won: {deal.title}.", "success")
    return redirect(_back(url_for("deals.show", deal_id=deal.id)), 303)


@bp.get("/deals/<int:deal_id>/lose")
def lose_form(deal_id: int):
    """Why was it lost? (a reason from the list, and a note). :raise 404: :raise 403:"""
    deal = deals.get_deal(db.session, current_user, deal_id)
    require(current_user, "deal.edit", deal)
    return render_template("deals/lose.html", deal=deal, form={}, errors={})


@bp.post("/deals/<int:deal_id>/lose")
def lose(deal_id: int):
    """Mark the deal lost; without a reason the form comes back saying so."""
    deal = deals.get_deal(db.session, current_user, deal_id)
    form = form_data("lost_reason", "lost_note")
    try:
        deals.lose_deal(db.session, current_user, deal, form["lost_reason"], form["lost_note"])
    except ValidationError as exc:
        db.session.rollback()
        deal = deals.get_deal(db.session, current_user, deal_id)
        return render_template("deals/lose.html", deal=deal, form=form, errors=exc.errors), 422
    db.session.commit()
    flash(f"Lost: {deal.title} ({deal.lost_reason}).", "success")
    return redirect(url_for("deals.show", deal_id=deal.id), 303)


@bp.post("/deals/<int:deal_id>/reopen")
def reopen(deal_id: int):
    """Put a won or lost deal back in an open stage."""
    deal = deals.get_deal(db.session, current_user, deal_id)
    try:
        deals.reopen_deal(db.session, current_user, deal, id_field(request.form, "stage_id"))
    except ValidationError as exc:
        db.session.rollback()
        return _show(deals.get_deal(db.session, current_user, deal_id), 422, exc.errors)
    db.session.commit()
    flash(f"Reopened in {deal.stage.name}.", "success")
    return redirect(url_for("deals.show", deal_id=deal.id), 303)


@bp.post("/deals/<int:deal_id>/delete")
def delete(deal_id: int):
    """Soft-delete, then back to the board with an undo button."""
    deal = deals.get_deal(db.session, current_user, deal_id)
    deals.delete_deal(db.session, current_user, deal)
    db.session.commit()
    undo_flash(f"Deleted {deal.title}.", url_for("deals.restore", deal_id=deal.id))
    return redirect(url_for("deals.index"), 303)


@bp.post("/deals/<int:deal_id>/restore")
def restore(deal_id: int):
    """Undo a delete within the undo window. :raise 404: past the window."""
    window = timedelta(minutes=current_app.config["UNDO_MINUTES"])
    deal = deals.restore_deal(db.session, current_user, deal_id, window)
    db.session.commit()
    flash(f"Restored {deal.title}.", "success")
    return redirect(url_for("deals.show", deal_id=deal.id), 303)


@bp.get("/deals/pipeline")
def pipeline():
    """Open deals by stage: counts, totals and weighted totals per currency."""
    rows = deal_reports.pipeline(db.session, current_user)
    return render_template("deals/pipeline.html", rows=rows)


@bp.get("/deals/forecast")
def forecast():
    """The coming months, weighted and not, beside what was won; by owner too."""
    require(current_user, "deal.view")
    tz = user_zone()
    today = utcnow().astimezone(tz).date()
    return render_template(
        "deals/forecast.html", **deal_reports.forecast(db.session, current_user, today, tz=tz)
    )


@bp.get("/deals/stuck")
def stuck():
    """Deals stuck in a stage past its rotting days, and deals whose close date keeps
    moving."""
    now = utcnow()
    return render_template(
        "deals/stuck.html",
        stuck=deal_reports.stuck(db.session, current_user, now),
        pushed=deal_reports.pushed(db.session, current_user),
        pushed_after=deals.PUSHED_AFTER,
    )


@bp.get("/deals/team")
def team():
    """Calls, visits and meetings per person, this week and last. :raise 403:"""
    now, tz = utcnow(), user_zone()
    return render_template(
        "deals/team.html",
        rows=deal_reports.team_activity(db.session, current_user, now, tz),
        monday=deal_reports.week_start(now, tz).astimezone(tz).date(),
    )


def _stages_page(
    status: int = 200, errors: dict | None = None, failed: int | None = None, form=None
):
    return render_template(
        "deals/stages.html",
        stages=deals.stages(db.session),
        held=pipeline_stages.stage_deal_counts(db.session),
        errors=errors or {},
        failed=failed,
        form=form or {},
    ), status


@bp.get("/deals/stages")
def stages():
    """The stages, each with its own form; add one below. :raise 403:"""
    require(current_user, "stage.manage")
    return _stages_page()


@bp.post("/deals/stages")
def add_stage():
    """Add a stage."""
    form = form_data(*STAGE_FIELDS)
    try:
        stage = pipeline_stages.save_stage(db.session, current_user, None, form)
    except ValidationError as exc:
        db.session.rollback()
        return _stages_page(422, exc.errors, failed=0, form=form)
    db.session.commit()
    flash(f"Added the stage {stage.name}.", "success")
    return redirect(url_for("deals.stages"), 303)


@bp.post("/deals/stages/<int:stage_id>")
def save_stage(stage_id: int):
    """Save one stage's form. :raise 404:"""
    require(current_user, "stage.manage")
    stage = deals.get_stage(db.session, stage_id)
    form = form_data(*STAGE_FIELDS)
    try:
        pipeline_stages.save_stage(db.session, current_user, stage, form)
    except ValidationError as exc:
        db.session.rollback()
        return _stages_page(422, exc.errors, failed=stage_id, form=form)
    db.session.commit()
    flash(f"Saved the stage {stage.name}.", "success")
    return redirect(url_for("deals.stages"), 303)


@bp.post("/deals/stages/<int:stage_id>/delete")
def delete_stage(stage_id: int):
    """Remove a stage, moving its deals to another of the same kind. :raise 404:"""
    require(current_user, "stage.manage")
    stage = deals.get_stage(db.session, stage_id)
    name = stage.name
    try:
        moved = pipeline_stages.delete_stage(
            db.session, current_user, stage, id_field(request.form, "move_to")
        )
    except ValidationError as exc:
        db.session.rollback()
        return _stages_page(422, exc.errors, failed=stage_id)
    db.session.commit()
    flash(f"Removed the stage {name}" + (f"; {moved} deals moved." if moved else "."), "success")
    return redirect(url_for("deals.stages"), 303)
