"""The worker `crm worker` runs (workers/worker.py): what it relies on in RQ keeps its
shape, its settings are checked, jobs run in a real process, an in-place job's heartbeat
stops before RQ records the job's end, and exactly once: a worker killed in the middle of
an in-place batch has it run again by the next worker, a long batch keeps its heartbeat,
stopping an in-place job signals no one else, and a second SIGTERM stops a job that runs
again later."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from rq import Queue, Retry
from rq import Worker as RQWorker
from rq.executions import Execution
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.worker.base import BaseWorker

from tests.workers import rq_shape
from tests.workers.processes import (
    FAST,
    NO_WORKER,
    ROOT,
    WriteLock,
    crm_env,
    external_ids,
    mention,
    output,
    start_alone,
    start_crm,
    started_job,
    stop,
    stored_count,
    timeline,
    wait_for,
    worker_env,
)
from webapp.extensions import db
from webapp.models import Contact
from webapp.models.base import utcnow
from workers import jobs, queues
from workers import worker as worker_module
from workers.queues import connect
from workers.worker import Worker, in_place

# What workers.worker overrides or calls in RQ, with the parameters RQ gives them.
PINNED = {
    (BaseWorker, "execute_job"): "self, job, queue",
    (BaseWorker, "prepare_execution"): "self, job",
    (BaseWorker, "perform_job"): "self, job, queue, execution",
    (BaseWorker, "handle_execution_ended"): "self, job, queue, heartbeat_ttl",
    (BaseWorker, "handle_exception"): "self, job, *exc_info",
    (BaseWorker, "get_heartbeat_ttl"): "self, job, working_time=0.0",
    (BaseWorker, "heartbeat"): "self, timeout=None, pipeline=None",
    (BaseWorker, "set_state"): "self, state, pipeline=None",
    (BaseWorker, "push_exc_handler"): "self, handler_func",
    (RQWorker, "kill_horse"): "self, sig=<Signals.SIGKILL: 9>",
    (RQWorker, "wait_for_horse"): "self",
    (Execution, "heartbeat"): "self, started_job_registry, ttl, pipeline",
    (Job, "heartbeat"): "self, timestamp, ttl, pipeline=None, xx=False",
}
USER = "workers.worker"


@pytest.mark.parametrize(("owner", "name"), list(PINNED), ids=lambda v: getattr(v, "__name__", v))
def test_what_the_worker_relies_on_in_rq_keeps_its_shape(owner, name):
    rq_shape.check_method(owner, name, PINNED[owner, name], USER)


def test_the_worker_reads_rqs_attributes_and_adds_names_of_its_own():
    # Worker(queues, maintenance_interval=...) passes the rest on to RQ as it came.
    parameters = inspect.signature(BaseWorker.__init__).parameters
    assert {"queues", "maintenance_interval"} <= set(parameters), (
        f"RQ's BaseWorker() no longer takes queues and maintenance_interval: {USER} passes them"
    )
    reads = ["_shutdown_requested_date", "horse_pid", "maintenance_interval", "log", "name"]
    rq_shape.check_reads(RQWorker, reads, USER)
    own = ["_heartbeat", "_say_abandoned", "_stop_heartbeat", "in_place_ttl", "heartbeat_interval"]
    rq_shape.check_own(RQWorker, own, USER)


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


# A batch killed while it waits for the database: still started, no retry used. Had it
# outwaited the lock (SQLite's busy_timeout) it would have failed and used a retry.
WAITING = ("started", jobs.INGEST_RETRY.max)


def test_a_worker_killed_mid_batch_has_it_run_again_by_the_next_worker(
    app, redis, redis_url, queue_name, tmp_path, make_user, make_contact
):
    """Kill a worker with its whole process group while its in-place batch waits for the
    database: nothing of it is stored, its heartbeat lapses within seconds, the next
    worker's maintenance finds the batch abandoned and runs it again, and every mention
    is stored once. Meanwhile the waiting import names the batch and the worker that has
    it, then says that no worker is left."""
    contact = make_contact(make_user("rep"), name="Killed Fan", handle_x="killedfan")
    mentions = [mention(n) for n in range(1, 6)]
    mentions[2] = mention(3, "killedfan", source="x")
    path = tmp_path / "mentions.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in mentions))
    env = {**crm_env(app, redis_url, tmp_path), **FAST}
    registry = StartedJobRegistry(queue_name, connection=redis)
    cli_log = tmp_path / "import.log"
    first = start_crm(env, tmp_path / "first.log", "worker", queue_name, new_session=True)
    cli = second = None
    try:
        with WriteLock(app.config["SQLALCHEMY_DATABASE_URI"]) as lock:
            wait_for(lambda: queues.has_worker(redis, queue_name), "the first worker")
            args = ("--batch", "3", "--queue", queue_name, "--progress", "0.5")
            cli = start_crm(env, cli_log, "mentions", "import", str(path), *args)
            wait_for(lambda: started_job(registry), "the first batch to start")
            started = time.monotonic()
            job = started_job(registry)
            # On SQLite the worker cannot be seen waiting (see WriteLock), but five
            # mentions reach the database within a second of starting.
            wait_for(lock.someone_waits, "the worker to wait for the lock", timeout=4)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
            assert job.get_status() == "started", output(tmp_path / "first.log")
            job.refresh()  # it was read as it entered the registry, before it was marked
            killed = job.worker_name
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
            job.refresh()
            assert (job.get_status(), job.retries_left) == WAITING, output(tmp_path / "first.log")
        with app.app_context():
            assert stored_count() == 0

        # No worker now: the import says which batch its dead worker had, and that no
        # worker is left; the batch is still marked started.
        wait_for(lambda: "any more" in output(cli_log), "the import to miss the worker")
        err = cli_log.with_suffix(".err").read_text()
        assert f"{NO_WORKER} {queue_name!r} any more" in err
        alive = f"lines 1-3: being stored by worker {killed} (pid {first.pid} on "
        assert alive in err[: err.index("which is gone")], err
        report = err[err.rindex("Waiting for the workers") :]
        assert report.startswith("Waiting for the workers: 0 of 2 batches done."), err
        assert f"lines 1-3: started by worker {killed}, which is gone" in report, err
        assert "queued: lines 4-5" in report, err
        assert cli.poll() is None, output(cli_log)
        assert job.get_status() == "started"

        second = start_crm(env, tmp_path / "second.log", "worker", queue_name)
        cli.wait(timeout=60)
        out = cli_log.read_text()
        assert (cli.returncode, out.strip()) == (
            0,
            "5 stored, 0 duplicate, 0 rejected (1 attached to contacts).",
        ), output(cli_log) + output(tmp_path / "second.log")
        job.refresh()
        assert job.get_status() == "finished"
        assert job.retries_left == jobs.INGEST_RETRY.max - 1, "run again once, after the kill"
        assert job.worker_name != killed
        assert f"job {job.id} was abandoned by worker {killed}" in output(tmp_path / "second.log")
        assert job.return_value() == {"stored": 3, "duplicates": 0, "attached": 1}
        with app.app_context():
            assert external_ids() == [f"q{n}" for n in range(1, 6)]
            [entry] = timeline(contact.id)
            assert entry.mention.external_id == "q3"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        if cli is not None and cli.poll() is None:
            cli.kill()
            cli.wait()
        if second is not None:
            stop(second)


def test_a_running_worker_runs_a_dead_workers_batch_again(
    app, redis, redis_url, queue_name, tmp_path
):
    """Of two workers on a queue, kill the one storing a batch (with its process group):
    the other, idle all the while, finds the batch abandoned at its next maintenance and
    stores it, each mention once."""
    env = {**crm_env(app, redis_url, tmp_path), **FAST}
    processes = {}
    try:
        with WriteLock(app.config["SQLALCHEMY_DATABASE_URI"]) as lock:
            for name in ("first", "second"):
                process = start_crm(
                    env, tmp_path / f"{name}.log", "worker", queue_name, new_session=True
                )
                processes[process.pid] = process
            wait_for(
                lambda: len(Worker.all(queue=Queue(queue_name, connection=redis))) == 2,
                "both workers",
            )
            job = jobs.enqueue_ingest(
                [mention(n) for n in range(1, 6)],
                connection=redis,
                queue_name=queue_name,
                default_network="import",
            )
            wait_for(lambda: job.get_status() == "started", "the batch to start")
            started = time.monotonic()
            wait_for(lock.someone_waits, "the worker to wait for the lock", timeout=4)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
            job.refresh()
            assert job.get_status() == "started"
            killed = job.worker_name
            [pid] = [w.pid for w in Worker.all(connection=redis) if w.name == killed]
            os.killpg(pid, signal.SIGKILL)
            processes.pop(pid).wait(timeout=10)
            job.refresh()
            assert (job.get_status(), job.retries_left) == WAITING
        wait_for(lambda: job.get_status() == "finished", "the other worker to store the batch", 60)
        job.refresh()
        assert job.retries_left == jobs.INGEST_RETRY.max - 1, "run again once, after the kill"
        assert job.worker_name != killed
        assert job.return_value() == {"stored": 5, "duplicates": 0, "attached": 0}
        with app.app_context():
            assert external_ids() == [f"q{n}" for n in range(1, 6)]
    finally:
        for process in processes.values():
            stop(process)


def test_a_long_batch_keeps_its_heartbeat_and_runs_once(
    app, backend, redis, redis_url, queue_name, tmp_path
):
    """A batch that runs for several heartbeat lifetimes (waiting for the database here)
    is not taken for abandoned by the other worker's maintenance: it runs once."""
    env = {**crm_env(app, redis_url, tmp_path), **FAST}
    registry = StartedJobRegistry(queue_name, connection=redis)
    workers = []
    try:
        with WriteLock(app.config["SQLALCHEMY_DATABASE_URI"]) as lock:
            for name in ("first", "second"):
                workers.append(start_crm(env, tmp_path / f"{name}.log", "worker", queue_name))
            wait_for(
                lambda: len(Worker.all(queue=Queue(queue_name, connection=redis))) == 2,
                "both workers",
            )
            job = jobs.enqueue_ingest(
                [mention(n) for n in range(1, 6)],
                connection=redis,
                queue_name=queue_name,
                default_network="import",
            )
            wait_for(lambda: job.get_status() == "started", "the batch to start")
            started = time.monotonic()
            wait_for(lock.someone_waits, "the worker to wait for the lock", timeout=4)
            # SQLite gives up on the lock after busy_timeout (5 s); PostgreSQL waits.
            time.sleep(max(0.0, (3.5 if backend == "sqlite" else 8) - (time.monotonic() - started)))
            job.refresh()
            assert (job.get_status(), job.retries_left) == ("started", jobs.INGEST_RETRY.max), (
                "the other worker took the running batch for abandoned"
            )
            assert registry.get_job_ids(cleanup=False) == [job.id]
        wait_for(lambda: job.get_status() == "finished", "the batch to be stored")
        job.refresh()
        assert job.retries_left == jobs.INGEST_RETRY.max, "the batch was run again"
        assert job.return_value() == {"stored": 5, "duplicates": 0, "attached": 0}
        with app.app_context():
            assert stored_count() == 5
    finally:
        for worker in workers:
            stop(worker)


def test_stopping_an_in_place_job_does_not_signal_the_workers_own_process_group(redis_url):
    """RQ's stop-job command kills the work-horse's process group; with a job running in
    place there is no work-horse, and group 0 would be the worker's own (under `crm up`,
    the web server's too). A process in a group of its own plays the worker here, with
    a bystander in its group: both must live on."""
    script = (
        "import subprocess, sys\n"
        "from redis import Redis\n"
        "from workers.worker import Worker\n"
        "bystander = subprocess.Popen(['sleep', '30'])\n"
        f"worker = Worker(['test-stop'], connection=Redis.from_url({redis_url!r}))\n"
        "worker.kill_horse()\n"
        "assert worker.wait_for_horse() == (None, None, None)\n"
        "alive = bystander.poll() is None\n"
        "bystander.kill()\n"
        "print('bystander alive' if alive else 'bystander killed')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "bystander alive"


@in_place
def wait_in_place(flag: str) -> str:
    """A job that runs in the worker's own process until the file flag exists."""
    while not Path(flag).exists():
        time.sleep(0.05)
    return "done"


def test_a_second_sigterm_stops_the_worker_in_the_middle_of_a_job_and_the_job_runs_again(
    redis_url, tmp_path
):
    """The first SIGTERM lets the job under way finish (RQ's warm shutdown); a second
    one, a while later, stops the worker at once (cold shutdown), without a traceback,
    and the job is retried: the next worker runs it to the end."""
    redis = connect(redis_url)
    queue = Queue(f"test-{uuid.uuid4().hex[:8]}", connection=redis)
    flag = tmp_path / "go-on"
    job = queue.enqueue(
        "tests.workers.test_worker.wait_in_place", str(flag), retry=Retry(max=1), job_timeout=120
    )
    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "webapp.cli", "worker"]
    try:
        worker = start_alone(redis_url, tmp_path, log, "worker", queue.name)
        try:
            wait_for(lambda: job.get_status() == "started", "the job to start", timeout=60, log=log)
            worker.send_signal(signal.SIGTERM)
            wait_for(
                lambda: "warm shut down" in log.read_text(),
                "the warm shutdown",
                timeout=60,
                log=log,
            )
            # RQ takes a second signal within a second of the first for the same one.
            time.sleep(1.5)
            assert worker.poll() is None, log.read_text()  # the job is not done
            worker.send_signal(signal.SIGTERM)
            returncode = worker.wait(30)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        output = log.read_text()
        assert returncode == 0, output
        assert "cold shut down" in output, output
        assert "Traceback" not in output, output
        assert job.get_status() == "queued"  # its retry

        flag.touch()
        done = subprocess.run(
            [*command, "--burst", queue.name],
            env=worker_env(redis_url, tmp_path),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert job.get_status() == "finished", done.stderr
        assert job.return_value() == "done"
    finally:
        queue.empty()
        job.delete()
