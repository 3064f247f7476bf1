"""Social sources, for admins (manage) and managers (view): add, edit, pause, delete
(asked first, with Undo), poll now, and each source's health."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from webapp.extensions import db
from webapp.htmx import render
from webapp.models import SOURCE_KINDS
from webapp.services import polls, sources
from webapp.services.errors import NotFoundError, ValidationError
from webapp.services.permissions import require
from webapp.views import undo_flash

bp = Blueprint("sources", __name__, url_prefix="/sources")


@bp.before_request
@login_required
def signed_in():
    """Every sources page needs a signed-in user."""


def _undo_window() -> timedelta:
    return timedelta(minutes=current_app.config["UNDO_MINUTES"])


def _context(**extra) -> dict:
    return {
        "spend": sources.spend_usd,
        "reads": sources.reads_this_month,
        "last_poll": sources.last_poll_words,
        **extra,
    }


@bp.get("/")
def index():
    """Every source with its health. :raise 403: not admin or manager."""
    rows = sources.list_sources(db.session, current_user)
    deleted = sources.recently_deleted(db.session, current_user, _undo_window())
    return render_template(
        "sources/index.html",
        **_context(sources=rows, deleted=deleted, undo_minutes=current_app.config["UNDO_MINUTES"]),
    )


@bp.get("/new")
def new():
    """The add form for a kind of source. :raise 403: not admin."""
    require(current_user, "source.manage")
    kind = request.args.get("kind") if request.args.get("kind") in SOURCE_KINDS else None
    return render_template(
        "sources/form.html", **_context(source=None, kind=kind, form={}, errors={})
    )


@bp.post("/")
def create():
    """Add a source; bad input comes back with messages by the fields."""
    data = request.form.to_dict()
    try:
        source, created = sources.create_source(
            db.session, current_user, data, data.get("uuid") or ""
        )
    except ValidationError as exc:
        db.session.rollback()
        data.pop("secret", None)
        kind = data.get("kind") if data.get("kind") in SOURCE_KINDS else None
        return (
            render_template(
                "sources/form.html",
                **_context(source=None, kind=kind, form=data, errors=exc.errors),
            ),
            422,
        )
    db.session.commit()
    if not created:
        return redirect(url_for("sources.show", source_id=source.id), 303)
    flash(f"Added {source.name}.", "success")
    if source.kind == "webhook":
        # The one time the secret is shown: senders need it, and it is never shown again.
        flash(f"Webhook secret, shown only now: {source.secret}", "info")
    return redirect(url_for("sources.show", source_id=source.id), 303)


@bp.get("/<int:source_id>")
def show(source_id: int):
    """A source's settings and health; htmx polls the health part while a poll runs."""
    source = sources.get_source(db.session, current_user, source_id)
    since = request.args.get("since")
    polling = request.args.get("polling") == "1" and polls.still_polling(source, since)
    webhook_url = (
        url_for("api.webhook", source_id=source.id, _external=True)
        if source.kind == "webhook"
        else None
    )
    return render(
        "sources/show.html",
        "sources/_health.html",
        **_context(source=source, polling=polling, webhook_url=webhook_url, since=since or ""),
    )


@bp.get("/<int:source_id>/edit")
def edit(source_id: int):
    """The edit form; secrets are never shown, only replaced. :raise 403: not admin."""
    source = sources.get_source(db.session, current_user, source_id)
    require(current_user, "source.manage")
    form = {**source.config, "name": source.name, "interval_seconds": source.interval_seconds}
    if source.monthly_cap_usd is not None:
        form["monthly_cap_usd"] = f"{source.monthly_cap_usd:g}"
    return render_template(
        "sources/form.html", **_context(source=source, kind=source.kind, form=form, errors={})
    )


@bp.post("/<int:source_id>/edit")
def update(source_id: int):
    """Save the edit form."""
    source = sources.get_source(db.session, current_user, source_id)
    data = request.form.to_dict()
    try:
        sources.update_source(db.session, current_user, source, data)
    except ValidationError as exc:
        db.session.rollback()
        data.pop("secret", None)
        return (
            render_template(
                "sources/form.html",
                **_context(source=source, kind=source.kind, form=data, errors=exc.errors),
            ),
            422,
        )
    db.session.commit()
    flash("Saved.", "success")
    return redirect(url_for("sources.show", source_id=source.id), 303)


@bp.post("/<int:source_id>/pause")
def pause(source_id: int):
    """Stop polling this source."""
    source = sources.get_source(db.session, current_user, source_id)
    sources.set_enabled(db.session, current_user, source, False)
    db.session.commit()
    flash(f"{source.name} is paused.", "success")
    return redirect(url_for("sources.show", source_id=source.id), 303)


@bp.post("/<int:source_id>/resume")
def resume(source_id: int):
    """Poll this source again at its interval."""
    source = sources.get_source(db.session, current_user, source_id)
    sources.set_enabled(db.session, current_user, source, True)
    db.session.commit()
    flash(f"{source.name} is polled again.", "success")
    return redirect(url_for("sources.show", source_id=source.id), 303)


def _confirm_delete(source):
    return render_template(
        "sources/delete.html",
        **_context(source=source, undo_minutes=current_app.config["UNDO_MINUTES"]),
    )


@bp.get("/<int:source_id>/delete")
def confirm_delete(source_id: int):
    """Ask before deleting. :raise 403: not admin."""
    source = sources.get_source(db.session, current_user, source_id)
    require(current_user, "source.manage")
    return _confirm_delete(source)


@bp.post("/<int:source_id>/delete")
def delete(source_id: int):
    """Delete the source once confirmed (polling stops at once); Undo on the list for a
    while. Its mentions stay in the inbox."""
    source = sources.get_source(db.session, current_user, source_id)
    require(current_user, "source.manage")
    if request.form.get("confirm") != "yes":
        return _confirm_delete(source)
    sources.delete_source(db.session, current_user, source)
    db.session.commit()
    undo_flash(
        f"Deleted {source.name}: it is no longer polled. Its mentions stay in the inbox.",
        url_for("sources.restore", source_id=source.id),
    )
    return redirect(url_for("sources.index"), 303)


@bp.post("/<int:source_id>/restore")
def restore(source_id: int):
    """Undo a delete within the undo window; past it, say so."""
    try:
        source = sources.restore_source(db.session, current_user, source_id, _undo_window())
    except NotFoundError:
        db.session.rollback()
        flash(
            "That source can no longer be brought back: Undo works for"
            f" {current_app.config['UNDO_MINUTES']} minutes after a delete.",
            "error",
        )
        return redirect(url_for("sources.index"), 303)
    db.session.commit()
    flash(f"Restored {source.name}.", "success")
    return redirect(url_for("sources.show", source_id=source.id), 303)


@bp.post("/<int:source_id>/poll")
def poll_now(source_id: int):
    """Queue a poll now; the page then polls its health part until the poll is done."""
    from workers.jobs import poll_now as queue_poll

    source = sources.get_source(db.session, current_user, source_id)
    require(current_user, "source.manage")
    since = source.last_polled_at.isoformat() if source.last_polled_at else ""
    if not queue_poll(source.id, current_app.config["REDIS_URL"]):
        flash("A poll of this source is already running.", "info")
    else:
        flash("Polling now…", "info")
    return redirect(url_for("sources.show", source_id=source.id, polling=1, since=since), 303)
