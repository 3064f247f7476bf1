"""Reminders: each due task reminded once, in the app and on its assignee's phones (a
local push service checks and decrypts each push): not twice when the sweep runs again
or two run at once, not for done or cancelled tasks, again after the due time moves,
and not lost when a sweep died between its claim and its push. A real `crm worker`
process sends one push for a job queued four times and run by two workers at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from rq import Queue
from sqlalchemy import func, select

from tests.pushservice import PushService
from webapp.extensions import db
from webapp.models import Notification, Task, User
from webapp.models.base import utcnow
from webapp.services import push
from workers import jobs
from workers.queues import connect

ROOT = Path(__file__).resolve().parents[2]
SUBJECT = "mailto:ops@fieldcrm.app"


@pytest.fixture
def service():
    running = PushService().start()
    yield running
    running.stop()


@pytest.fixture
def reminding(app, redis_url):
    app.config.update(VAPID_SUBJECT=SUBJECT, OUTBOUND_ALLOW_PRIVATE=True, REDIS_URL=redis_url)
    connect(redis_url).delete(jobs.REMINDER_LOCK)
    return app


def _task(app, user, due, title="Call Ada", **fields) -> int:
    with app.app_context():
        task = Task(
            uuid=str(uuid.uuid4()),
            title=title,
            due_at=due,
            time_zone="Europe/London",
            assignee_id=user.id,
            created_by_id=user.id,
            created_at=due - timedelta(days=1),
            **fields,
        )
        db.session.add(task)
        db.session.commit()
        return task.id


def _phone(app, user, service, name="phone") -> None:
    with app.app_context():
        push.subscribe(
            db.session, db.session.get(User, user.id), service.subscribe(name), app.config
        )
        db.session.commit()


def _sweep(app) -> dict:
    with app.app_context():
        return jobs.send_reminders()


def _rows(app) -> list[tuple[int, str, bool]]:
    with app.app_context():
        return [
            (n.task_id, n.key, n.pushed_at is not None)
            for n in db.session.scalars(select(Notification).order_by(Notification.id))
        ]


def test_a_due_task_is_reminded_once_in_the_app_and_on_the_phone(reminding, service, make_user):
    rep = make_user("rep")
    _phone(reminding, rep, service)
    due = _task(reminding, rep, utcnow() - timedelta(seconds=5))
    later = _task(reminding, rep, utcnow() + timedelta(hours=1), title="Not yet")
    for _ in range(3):
        _sweep(reminding)
    [(task_id, key, pushed)] = _rows(reminding)
    assert (task_id, pushed) == (due, True) and key.startswith(f"task-due:{due}:")
    (delivery,) = service.accepted()
    assert delivery.payload["url"] == f"/tasks/{due}" and delivery.payload["tag"] == key
    assert delivery.payload["title"] == "Call Ada"
    assert later not in [r[0] for r in _rows(reminding)]


def test_done_and_cancelled_tasks_are_not_reminded_and_a_moved_one_is_reminded_again(
    reminding, service, make_user
):
    rep = make_user("rep")
    _phone(reminding, rep, service)
    now = utcnow()
    _task(reminding, rep, now - timedelta(seconds=5), status="done", done_at=now)
    _task(reminding, rep, now - timedelta(seconds=5), status="cancelled")
    moved = _task(reminding, rep, now - timedelta(seconds=30), title="Moved")
    _sweep(reminding)
    assert [r[0] for r in _rows(reminding)] == [moved]
    with reminding.app_context():
        # Put off to a moment from now (the edit form moves it the same way, by minutes).
        db.session.get(Task, moved).due_at = utcnow() + timedelta(seconds=1.5)
        db.session.commit()
    _sweep(reminding)
    assert [r[0] for r in _rows(reminding)] == [moved]
    time.sleep(2)
    _sweep(reminding)
    assert [r[0] for r in _rows(reminding)] == [moved, moved]
    assert len(service.accepted()) == 2


def test_a_reminder_claimed_but_never_pushed_is_pushed_by_the_next_sweep(
    reminding, service, make_user
):
    """A sweep that died after committing its claim, before its push."""
    rep = make_user("rep")
    _phone(reminding, rep, service)
    task_id = _task(reminding, rep, utcnow() - timedelta(minutes=1))
    with reminding.app_context():
        from webapp.services import notifications

        due = notifications.due_unreminded(db.session, utcnow())
        notifications.claim_reminders(db.session, due, lambda t: f"/tasks/{t.id}")
        db.session.commit()
    assert _rows(reminding) == [(task_id, _rows(reminding)[0][1], False)]
    _sweep(reminding)
    assert _rows(reminding)[0][2] is True
    assert len(service.accepted()) == 1


def test_a_sweep_without_a_real_contact_keeps_the_reminder_in_the_app(
    reminding, service, make_user
):
    reminding.config["VAPID_SUBJECT"] = "mailto:me@localhost"
    rep = make_user("rep")
    _phone(reminding, rep, service)
    _task(reminding, rep, utcnow() - timedelta(seconds=5))
    _sweep(reminding)
    assert [r[2] for r in _rows(reminding)] == [False]
    assert service.deliveries == []


def test_a_real_worker_sends_one_push_for_a_job_run_twice_by_two_workers(
    reminding, service, make_user, redis_url, tmp_path
):
    rep = make_user("rep")
    _phone(reminding, rep, service)
    task_id = _task(reminding, rep, utcnow() - timedelta(seconds=2))
    queue_name = f"test-{uuid.uuid4().hex[:8]}"
    queue = Queue(queue_name, connection=connect(redis_url))
    # As two schedulers would (each queues the sweep), and a retry of each.
    queued = [queue.enqueue(jobs.send_reminders, job_timeout=60) for _ in range(4)]
    env = {
        **os.environ,
        "DATABASE_URL": reminding.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(tmp_path),
        "SECRET_KEY": "x",
        "VAPID_SUBJECT": SUBJECT,
        "OUTBOUND_ALLOW_PRIVATE": "true",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "webapp.cli", "worker", "--burst", queue_name],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=120)[0])
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for job in queued:
        job.refresh()
        assert job.get_status() == "finished", outputs
    with reminding.app_context():
        count = db.session.scalar(
            select(func.count()).select_from(Notification).where(Notification.task_id == task_id)
        )
    assert count == 1
    assert len(service.accepted()) == 1, service.deliveries
