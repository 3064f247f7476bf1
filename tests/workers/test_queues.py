"""Workers on a real Redis: jobs run in a real worker process, the cron lock holds."""

import os
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from rq import Queue, SimpleWorker

from webapp.extensions import db
from webapp.models import Contact, LoginFailure
from webapp.models.base import utcnow
from workers import cron, jobs
from workers.queues import connect, hold_lock, release_lock


@pytest.fixture
def redis(redis_url):
    connection = connect(redis_url)
    connection.ping()
    return connection


@pytest.fixture
def isolated_queue(redis):
    """A queue name of this test's own, so a shared Redis (CI's) mixes nothing."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    yield Queue(name, connection=redis)
    Queue(name, connection=redis).empty()


def test_purge_job_removes_only_contacts_deleted_long_ago(
    app, make_user, make_contact, redis, isolated_queue
):
    rep = make_user("rep")
    old, recent, _live = (make_contact(rep, name=n) for n in ("Old Gone", "Recent Gone", "Live"))
    with app.app_context():
        db.session.get(Contact, old.id).deleted_at = utcnow() - timedelta(days=31)
        db.session.get(Contact, recent.id).deleted_at = utcnow() - timedelta(days=1)
        db.session.commit()
        job = isolated_queue.enqueue(jobs.purge_deleted_contacts)
        SimpleWorker([isolated_queue], connection=redis).work(burst=True)
        assert job.get_status() == "finished"
        assert job.return_value() == 1
        assert {c.name for c in db.session.query(Contact)} == {"Recent Gone", "Live"}


def test_purge_login_failures_keeps_recent_ones(app, redis, isolated_queue):
    with app.app_context():
        db.session.add_all(
            [
                LoginFailure(key="account:a", at=utcnow() - timedelta(days=2)),
                LoginFailure(key="account:b"),
            ]
        )
        db.session.commit()
        isolated_queue.enqueue(jobs.purge_login_failures)
        SimpleWorker([isolated_queue], connection=redis).work(burst=True)
        assert [f.key for f in db.session.query(LoginFailure)] == ["account:b"]


def test_crm_worker_burst_runs_jobs_in_a_real_process(
    app, make_user, make_contact, redis_url, redis, tmp_path
):
    """`crm worker --burst` forks a work-horse per job against the same database and exits."""
    rep = make_user("rep")
    gone = make_contact(rep, name="Forked Purge")
    with app.app_context():
        db.session.get(Contact, gone.id).deleted_at = utcnow() - timedelta(days=40)
        db.session.commit()
        database_url = app.config["SQLALCHEMY_DATABASE_URI"]
    queue_name = f"test-{uuid.uuid4().hex[:8]}"
    job = Queue(queue_name, connection=redis).enqueue(jobs.purge_deleted_contacts)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(tmp_path),
        "SECRET_KEY": "x",
    }
    done = subprocess.run(
        [sys.executable, "-m", "webapp.cli", "worker", "--burst", queue_name],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    job.refresh()
    assert job.get_status() == "finished", done.stderr
    with app.app_context():
        assert db.session.get(Contact, gone.id) is None


def test_only_one_scheduler_enqueues(redis):
    key = f"test:lock:{uuid.uuid4().hex}"
    assert hold_lock(redis, key, "a", 30)
    assert not hold_lock(redis, key, "b", 30)
    assert hold_lock(redis, key, "a", 30)  # the holder extends it
    release_lock(redis, key, "b")  # not the holder: nothing happens
    assert not hold_lock(redis, key, "b", 30)
    release_lock(redis, key, "a")
    assert hold_lock(redis, key, "b", 30)
    redis.delete(key)


def test_a_second_cron_scheduler_stands_by(redis, monkeypatch):
    monkeypatch.setattr(cron, "LOCK_KEY", f"test:cron:{uuid.uuid4().hex}")
    first, second = cron.build(redis), cron.build(redis)
    first.register_birth()
    second.register_birth()
    queued = [Queue(name, connection=redis) for name in ("high", "default", "low")]
    before = sum(q.count for q in queued)
    registered = len(first.get_jobs())
    assert len(first.enqueue_jobs()) == registered
    assert second.enqueue_jobs() == []
    assert sum(q.count for q in queued) == before + registered
    first.register_death()  # releases the lock
    # The stand-by takes over; its jobs are due at once since it never ran them.
    assert len(second.enqueue_jobs()) == registered
    second.register_death()
    for q in queued:
        q.empty()
