"""The worker `crm worker` runs: what it relies on in RQ keeps its shape, its settings
are checked, and an in-place job's heartbeat stops before RQ records the job's end."""

from __future__ import annotations

import inspect
import uuid

import pytest
from rq import Queue
from rq import Worker as RQWorker
from rq.executions import Execution
from rq.job import Job
from rq.worker.base import BaseWorker

from workers import worker as worker_module
from workers.queues import connect
from workers.worker import Worker, in_place

# What workers.worker overrides or calls in RQ, with the parameters it passes. RQ is
# pinned to the versions tested; a new one that changes any of these fails here, by name.
PINNED = {
    (BaseWorker, "__init__"): ["queues", "maintenance_interval"],
    (BaseWorker, "execute_job"): ["self", "job", "queue"],
    (BaseWorker, "prepare_execution"): ["self", "job"],
    (BaseWorker, "perform_job"): ["self", "job", "queue", "execution"],
    (BaseWorker, "handle_execution_ended"): ["self", "job", "queue", "heartbeat_ttl"],
    (BaseWorker, "get_heartbeat_ttl"): ["self", "job", "working_time"],
    (BaseWorker, "heartbeat"): ["self", "timeout", "pipeline"],
    (RQWorker, "kill_horse"): ["self", "sig"],
    (RQWorker, "wait_for_horse"): ["self"],
    (Execution, "heartbeat"): ["self", "started_job_registry", "ttl", "pipeline"],
    (Job, "heartbeat"): ["self", "timestamp", "ttl", "pipeline", "xx"],
}


@pytest.mark.parametrize(("owner", "name"), list(PINNED), ids=lambda v: getattr(v, "__name__", v))
def test_what_the_worker_relies_on_in_rq_keeps_its_shape(owner, name):
    method = getattr(owner, name, None)
    assert callable(method), f"RQ's {owner.__name__}.{name} is gone: workers.worker relies on it"
    parameters = list(inspect.signature(method).parameters)
    missing = [p for p in PINNED[owner, name] if p not in parameters]
    assert not missing, (
        f"RQ's {owner.__name__}.{name}{inspect.signature(method)} no longer takes {missing}:"
        " workers.worker overrides or calls it with them"
    )
    if name != "__init__":
        assert parameters[: len(PINNED[owner, name])] == PINNED[owner, name], (
            f"RQ's {owner.__name__}.{name} now takes {parameters}, not {PINNED[owner, name]}"
        )


def test_rq_still_waits_for_jobs_for_its_dequeue_timeout():
    """The worker shortens the wait between two maintenance checks by overriding RQ's
    dequeue_timeout property."""
    assert isinstance(inspect.getattr_static(BaseWorker, "dequeue_timeout"), property), (
        "RQ's BaseWorker.dequeue_timeout is no longer a property: workers.worker overrides it"
    )
    source = inspect.getsource(BaseWorker.work)
    assert "self.dequeue_timeout" in source, (
        "RQ's work loop no longer waits for self.dequeue_timeout: workers.worker shortens it"
        " so that an idle worker runs its maintenance on time"
    )


@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan", "inf"])
def test_a_bad_worker_setting_is_refused_with_its_name(app, redis_url, monkeypatch, value):
    app.config["WORKER_MAINTENANCE_SECONDS"] = value
    app.config["REDIS_URL"] = redis_url
    result = app.test_cli_runner().invoke(args=["worker", "--burst", f"test-{uuid.uuid4().hex}"])
    assert result.exit_code == 1, result.output
    assert (
        f"CRM_WORKER_MAINTENANCE_SECONDS must be a number of seconds above 0, not {value!r}."
        in result.output
    )


@in_place
def answer() -> int:
    """An in-place job (run by the test below in this process)."""
    return 42


def test_an_in_place_jobs_heartbeat_stops_before_its_end_is_recorded(app, redis_url, monkeypatch):
    """A beat after RQ has removed the job's execution would bring it back: the heartbeat
    thread is stopped while the job is still marked started, and is gone afterwards."""
    connection = connect(redis_url)
    queue = Queue(f"test-{uuid.uuid4().hex}", connection=connection)
    job = queue.enqueue(answer)
    seen = []
    stop = worker_module._Heartbeat.stop

    def recording_stop(self):
        seen.append((Job.fetch(job.id, connection=connection).get_status(), self.is_alive()))
        stop(self)
        seen.append(("after", self.is_alive()))

    monkeypatch.setattr(worker_module._Heartbeat, "stop", recording_stop)
    try:
        with app.app_context():
            Worker([queue], connection=connection, heartbeat_interval=0.05).work(burst=True)
    finally:
        queue.empty()
    assert job.get_status() == "finished"
    assert job.return_value() == 42
    assert seen, "the heartbeat thread was never stopped"
    assert seen[0] == ("started", True), (
        "the heartbeat was stopped only after RQ recorded the job's end: RQ no longer calls"
        f" handle_execution_ended first? {seen}"
    )
    assert seen[1] == ("after", False)
    assert not connection.keys(f"rq:execution:{job.id}:*")
