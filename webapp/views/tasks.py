"""Tasks: the assignee's list, a task's page and edit form, done and undone, cancel,
new tasks (on a contact or a deal), the follow-up chips after logging an entry, and the
tasks of a contact (a section its page loads)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from webapp.extensions import db
from webapp.htmx import render, wants_fragment
from webapp.inputs import id_field
from webapp.models.base import utcnow
from webapp.services import contacts, tasks
from webapp.services.errors import ValidationError
from webapp.services.permissions import require
from webapp.templating import user_zone
from webapp.views import form_data, safe_next

bp = Blueprint("tasks", __name__)


@bp.before_request
@login_required
def signed_in():
    """Every task page needs a signed-in user."""


def _back(default: str) -> str:
    return safe_next(request.form.get("next") or request.args.get("next"), default)


def _form_page(form: dict, errors: dict, task=None, status: int = 200, **target):
    return render_template(
        "tasks/form.html",
        form=form,
        errors=errors,
        task=task,
        assignees=tasks.assignees(db.session, current_user),
        next=_back(""),
        **target,
    ), status


@bp.get("/tasks")
def index():
    """The user's tasks: overdue, today, upcoming and the latest done; ?contact_id= the
    open tasks of one contact (the section of its page)."""
    require(current_user, "task.view")
    contact_id = id_field(request.args, "contact_id")
    if contact_id is not None:
        contact = contacts.get_contact(db.session, current_user, contact_id)
        rows = tasks.for_contact(db.session, current_user, contact)
        return render(
            "tasks/contact.html", "tasks/_contact.html", contact=contact, contact_tasks=rows
        )
    group = request.args.get("group")
    if group is not None:
        return _group_page(group)
    listing = tasks.list_tasks(db.session, current_user, utcnow(), user_zone())
    return render_template("tasks/index.html", listing=listing)


def _group_page(group: str):
    """More of one group after ?after= (the rows, for htmx scrolling on), or the group's
    own page (a plain link). :raise 404: an unknown group or after."""
    after = id_field(request.args, "after")
    rows, more = tasks.task_group(db.session, current_user, group, utcnow(), user_zone(), after)
    return render(
        "tasks/group.html",
        "tasks/_more.html",
        group=group,
        heading=tasks.GROUPS.get(group, ""),
        rows=rows,
        more=more,
        zone=user_zone(),
    )


@bp.get("/tasks/new")
def new():
    """The new-task form, on a contact or a deal when ?contact_id= or ?deal_id= says so."""
    require(current_user, "task.create")
    contact_id = id_field(request.args, "contact_id")
    deal_id = id_field(request.args, "deal_id")
    target = tasks.target(db.session, current_user, contact_id, deal_id)
    form = tasks.form_values(None, user_zone(), utcnow())
    return _form_page(form, {}, **target)


@bp.post("/tasks")
def create():
    """Make a task once per form however often it is sent."""
    data = form_data(*tasks.FIELDS, "uuid")
    contact_id = id_field(request.form, "contact_id")
    deal_id = id_field(request.form, "deal_id")
    try:
        task, created = tasks.create_task(
            db.session, current_user, data, data["uuid"], contact_id, deal_id
        )
    except ValidationError as exc:
        db.session.rollback()
        target = tasks.target(db.session, current_user, contact_id, deal_id)
        return _form_page(data, exc.errors, status=422, **target)
    db.session.commit()
    if created:
        flash(f"Task “{task.title}” added.", "success")
    return redirect(_back(url_for("tasks.show", task_id=task.id)), 303)


@bp.get("/tasks/<int:task_id>")
def show(task_id: int):
    """A task's page with its edit form (where a reminder opens). :raise 404: :raise 403:"""
    task = tasks.get_task(db.session, current_user, task_id)
    return _form_page(tasks.form_values(task, user_zone(), utcnow()), {}, task=task)


@bp.post("/tasks/<int:task_id>")
def update(task_id: int):
    """Save the edit form; a new due time is reminded at that time."""
    task = tasks.get_task(db.session, current_user, task_id)
    data = form_data(*tasks.FIELDS)
    try:
        tasks.update_task(db.session, current_user, task, data)
    except ValidationError as exc:
        db.session.rollback()
        return _form_page(data, exc.errors, task=task, status=422)
    db.session.commit()
    flash("Saved.", "success")
    return redirect(_back(url_for("tasks.show", task_id=task.id)), 303)


def _status(task_id: int, change, message: str):
    task = tasks.get_task(db.session, current_user, task_id)
    change(task)
    db.session.commit()
    if wants_fragment():
        return render_template("tasks/_one_row.html", task=task, zone=user_zone())
    flash(message.format(title=task.title), "success")
    return redirect(_back(url_for("tasks.index")), 303)


@bp.post("/tasks/<int:task_id>/done")
def done(task_id: int):
    """Tick the task done (again: nothing changes)."""
    return _status(
        task_id,
        lambda t: tasks.set_done(db.session, current_user, t, True),
        "Done: {title}.",
    )


@bp.post("/tasks/<int:task_id>/undone")
def undone(task_id: int):
    """Back to do."""
    return _status(
        task_id,
        lambda t: tasks.set_done(db.session, current_user, t, False),
        "Back to do: {title}.",
    )


@bp.post("/tasks/<int:task_id>/cancel")
def cancel(task_id: int):
    """Cancel the task: no reminder, off the lists."""
    return _status(
        task_id, lambda t: tasks.cancel_task(db.session, current_user, t), "Cancelled: {title}."
    )


@bp.post("/tasks/follow-up")
def follow_up():
    """A follow-up chip: one tap makes the task (once per chip form)."""
    contact_id = id_field(request.form, "contact_id")
    form = form_data("preset", "uuid", "time_zone", "kind")
    if contact_id is None:
        return render_template("tasks/_follow_up_done.html", error="Say which contact."), 400
    try:
        task, created = tasks.follow_up(
            db.session,
            current_user,
            contact_id,
            form["preset"],
            form["uuid"],
            form["time_zone"] or request.cookies.get("tz"),
            form["kind"],
        )
    except ValidationError as exc:
        db.session.rollback()
        error = " ".join(exc.errors.values())
        return render_template("tasks/_follow_up_done.html", error=error), 422
    db.session.commit()
    if wants_fragment():
        return render_template("tasks/_follow_up_done.html", task=task, error=None)
    if created:
        flash(f"Follow-up task added: {task.title}.", "success")
    return redirect(url_for("contacts.show", contact_id=contact_id) + "#timeline", 303)
