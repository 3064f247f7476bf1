"""The cron scheduler `crm scheduler` runs (workers/cron.py): one leader enqueues, a
second stands by and takes over, and signals in quick succession stop it once, quietly,
giving up the lock."""

import os
import signal
import uuid

import pytest
from rq import Queue
from rq.cron import CronScheduler

from tests.workers import rq_shape
from tests.workers.processes import start_alone, wait_for
from workers import cron
from workers.queues import connect

# What workers.cron overrides or calls in RQ's CronScheduler, with the parameters RQ
# gives them. start is replaced whole; RQ's own installs the _request_stop handlers.
PINNED = {
    "__init__": "self, connection, logging_level=20, name=''",
    "start": "self",
    "enqueue_jobs": "self",
    "register_birth": "self",
    "register_death": "self, pipeline=None",
    "heartbeat": "self",
    "save": "self, pipeline=None",
    "calculate_sleep_interval": "self",
    "register": (
        "self, func, queue_name, args=None, kwargs=None, interval=None, cron=None,"
        " job_timeout=None, result_ttl=500, ttl=None, failure_ttl=None, meta=None,"
        " webhooks=None, name=''"
    ),
    "_request_stop": "self, signum, frame",
}
USER = "workers.cron"


@pytest.mark.parametrize("name", list(PINNED))
def test_what_the_scheduler_relies_on_in_rq_keeps_its_shape(name):
    rq_shape.check_method(CronScheduler, name, PINNED[name], USER)


def test_the_scheduler_reads_rqs_attributes_and_adds_names_of_its_own():
    rq_shape.check_reads(CronScheduler, ["connection", "name", "log"], USER)
    rq_shape.check_own(CronScheduler, ["_sleep", "_stop_requested_at"], USER)


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


def test_crm_scheduler_stops_once_and_quietly_however_many_signals_come(redis_url, tmp_path):
    """Under a supervisor, a Ctrl-C or a group kill reaches the scheduler, and the
    supervisor's own SIGTERM follows: signals in quick succession. It stops once, with
    no traceback, and gives up the leader lock, so that the next scheduler enqueues at
    once instead of standing by until the lock expires."""
    redis = connect(redis_url)
    redis.delete(cron.LOCK_KEY)
    queues = [Queue(name, connection=redis) for name in ("default", "low")]
    queued_before = {q.name: set(q.job_ids) for q in queues}
    log = tmp_path / "scheduler.log"
    proc = start_alone(redis_url, tmp_path, log, "scheduler")
    try:
        wait_for(
            lambda: redis.get(cron.LOCK_KEY), "the scheduler to take the lock", timeout=60, log=log
        )
        os.kill(proc.pid, signal.SIGINT)
        os.kill(proc.pid, signal.SIGTERM)
        returncode = proc.wait(30)
        output = log.read_text()
        # A signal that arrives as the interpreter exits (its handlers gone) ends it
        # with that signal's status instead of 0: either way it has stopped in order.
        assert returncode in (0, -signal.SIGINT, -signal.SIGTERM), output
        assert "Traceback" not in output, output
        assert "registering death" in output, output
        assert redis.get(cron.LOCK_KEY) is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for q in queues:
            for job_id in set(q.job_ids) - queued_before[q.name]:
                q.remove(job_id)
                redis.delete(f"rq:job:{job_id}")
