"""Batches of mentions stored by workers: `crm mentions import --queue` end to end, a
worker killed in the middle of an in-place ingest and its batch run again by the next
worker, a long batch that keeps its heartbeat, a batch run twice, a bad batch.

Real Redis, real database, real `crm worker` processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from rq import Queue, Worker
from rq.job import Job
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from social.mention import MentionError
from webapp.extensions import db
from webapp.models import Activity, Mention
from workers import jobs, queues
from workers.queues import connect

ROOT = Path(__file__).resolve().parents[2]
NO_WORKER = "No worker is taking jobs from the queue"


@pytest.fixture
def redis(redis_url):
    return connect(redis_url)


@pytest.fixture
def queue_name(redis):
    name = f"test-{uuid.uuid4().hex}"
    yield name
    Queue(name, connection=redis).empty()


def _mention(n: int, handle: str = "someone", **fields) -> dict:
    return {
        "external_id": f"q{n}",
        "author_handle": handle,
        "author_name": handle.title(),
        "text": f"Mention {n}: great service, thanks!",
        "created_at": f"2026-11-20T10:{n:02d}:00Z",
        **fields,
    }


def _env(app, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(tmp_path),
        "SECRET_KEY": "x",
    }


def _crm(env: dict[str, str], log: Path, *args: str, new_session: bool = False) -> subprocess.Popen:
    """Start `crm ARGS` (stdout to log, stderr to log.err), in a process group of its
    own if new_session."""
    with log.open("w") as out, log.with_suffix(".err").open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "webapp.cli", *args],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=err,
            start_new_session=new_session,
        )


def _output(log: Path) -> str:
    return log.read_text() + log.with_suffix(".err").read_text()


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM a worker we started and wait for it (and any child it left: its scheduler)."""
    if process.poll() is None:
        children = _children(process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    """The processes pid has started (forked from any of its threads)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        path = task / "children"
        if path.exists():
            found += [int(p) for p in path.read_text().split()]
    return found


def _wait_for(predicate: Callable[[], object], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(Mention))


def _external_ids() -> list[str]:
    return list(db.session.scalars(select(Mention.external_id).order_by(Mention.external_id)))


def _timeline(contact_id: int) -> list[Activity]:
    return list(db.session.scalars(select(Activity).where(Activity.contact_id == contact_id)))


def test_import_through_a_queue_reports_like_a_local_import(
    app, redis, redis_url, queue_name, tmp_path, make_user, make_contact
):
    """The CLI queues the good lines in batches, waits (saying so) until a worker is
    there, and reports what the workers stored; a second run stores nothing new."""
    contact = make_contact(make_user("rep"), name="Queued Fan", handle_x="queuedfan")
    lines = [
        json.dumps(_mention(1)),
        json.dumps(_mention(2, "queuedfan", source="x")),
        "{not json",
        json.dumps(_mention(3)),
        json.dumps(_mention(2, "queuedfan", source="x")),  # line 2 again, in another batch
        json.dumps(_mention(4)),
        json.dumps({k: v for k, v in _mention(99).items() if k != "text"}),
        json.dumps(_mention(5)),
        "",
        json.dumps(_mention(6)),
        json.dumps(_mention(7)),
    ]
    path = tmp_path / "mentions.jsonl"
    path.write_text("\n".join(lines) + "\n")
    env = _env(app, redis_url, tmp_path)
    args = ("mentions", "import", str(path), "--batch", "3", "--queue", queue_name)
    cli_log, worker_log = tmp_path / "import.log", tmp_path / "worker.log"
    cli = _crm(env, cli_log, *args)
    worker = None
    try:
        # No worker yet: the batches wait in the queue, and the CLI says why it waits.
        queue = Queue(queue_name, connection=redis)
        _wait_for(lambda: queue.count == 3, "three batches queued")
        _wait_for(lambda: NO_WORKER in _output(cli_log), "the no-worker notice")
        assert cli.poll() is None, _output(cli_log)
        worker = _crm(env, worker_log, "worker", queue_name)
        cli.wait(timeout=30)
        out = cli_log.read_text()
        err = cli_log.with_suffix(".err").read_text()
        assert cli.returncode == 1, out + err
        assert out.strip() == "7 stored, 1 duplicate, 2 rejected (1 attached to contacts).", err
        rejected = [line.strip() for line in err.splitlines() if line.startswith("  line ")]
        assert len(rejected) == 2, err
        assert rejected[0].startswith("line 3: not valid JSON")
        assert rejected[1] == "line 7: text is missing"
        assert "not stored" not in err
        assert queue.count == 0
        with app.app_context():
            assert _external_ids() == [f"q{n}" for n in range(1, 8)]
            [attached] = db.session.scalars(select(Mention).where(Mention.contact_id.is_not(None)))
            assert (attached.network, attached.external_id) == ("x", "q2")
            first = db.session.scalar(select(Mention).where(Mention.external_id == "q1"))
            assert first.network == "import"
            [entry] = _timeline(contact.id)
            assert (entry.kind, entry.mention_id) == ("mention", attached.id)

        # The same file again, from this process, while the worker still runs.
        app.config["REDIS_URL"] = redis_url
        again = app.test_cli_runner().invoke(args=list(args))
        assert again.exit_code == 1, again.output
        assert again.stdout.strip() == (
            "0 stored, 8 duplicate, 2 rejected (0 attached to contacts)."
        )
        assert NO_WORKER not in again.stderr
        assert "line 3: not valid JSON" in again.stderr
        assert "line 7: text is missing" in again.stderr
        with app.app_context():
            assert _count() == 7
            assert len(_timeline(contact.id)) == 1
        assert worker.poll() is None, _output(worker_log)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        if worker is not None:
            _stop(worker)


class _WriteLock:
    """Hold the database's write lock from another connection, as a long transaction
    of another process would."""

    def __init__(self, url: str):
        self.url = sa.engine.make_url(url)
        self.sqlite = self.url.get_backend_name() == "sqlite"

    def __enter__(self) -> _WriteLock:
        if self.sqlite:
            self.conn = sqlite3.connect(self.url.database, isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.engine = sa.create_engine(self.url)
            self.conn = self.engine.connect()
            self.conn.execute(sa.text("LOCK TABLE mentions IN ACCESS EXCLUSIVE MODE"))
        return self

    def someone_waits(self) -> bool:
        """PostgreSQL: whether another session waits for the mentions table. SQLite
        cannot say (a writer waiting on busy_timeout leaves no trace): True."""
        if self.sqlite:
            return True
        return bool(
            self.conn.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_locks"
                    " WHERE relation = 'mentions'::regclass AND NOT granted"
                )
            )
        )

    def release(self) -> None:
        if self.conn is None:
            return
        if self.sqlite:
            self.conn.execute("ROLLBACK")
            self.conn.close()
        else:
            self.conn.rollback()
            self.conn.close()
            self.engine.dispose()
        self.conn = None

    def __exit__(self, *exc) -> None:
        self.release()


# Short heartbeats and maintenance, so that a dead worker's batch is found within seconds.
FAST = {"CRM_WORKER_HEARTBEAT_SECONDS": "0.5", "CRM_WORKER_MAINTENANCE_SECONDS": "1"}


def _started_job(registry: StartedJobRegistry) -> Job | None:
    """The job a worker has started on the registry's queue (read without RQ's cleanup,
    which is the workers' to run)."""
    ids = registry.get_job_ids(cleanup=False)
    return Job.fetch(ids[0], connection=registry.connection) if ids else None


def test_a_worker_killed_mid_batch_has_it_run_again_by_the_next_worker(
    app, redis, redis_url, queue_name, tmp_path, make_user, make_contact
):
    """Kill a worker with its whole process group while its in-place batch waits for the
    database: nothing of it is stored, its heartbeat lapses within seconds, the next
    worker's maintenance finds the batch abandoned and runs it again, and every mention
    is stored once. Meanwhile the waiting import names the batch and the worker that has
    it, then says that no worker is left."""
    contact = make_contact(make_user("rep"), name="Killed Fan", handle_x="killedfan")
    mentions = [_mention(n) for n in range(1, 6)]
    mentions[2] = _mention(3, "killedfan", source="x")
    path = tmp_path / "mentions.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in mentions))
    env = {**_env(app, redis_url, tmp_path), **FAST}
    registry = StartedJobRegistry(queue_name, connection=redis)
    cli_log = tmp_path / "import.log"
    first = _crm(env, tmp_path / "first.log", "worker", queue_name, new_session=True)
    cli = second = None
    try:
        with _WriteLock(app.config["SQLALCHEMY_DATABASE_URI"]) as lock:
            _wait_for(lambda: queues.has_worker(redis, queue_name), "the first worker")
            args = ("--batch", "3", "--queue", queue_name, "--progress", "0.5")
            cli = _crm(env, cli_log, "mentions", "import", str(path), *args)
            _wait_for(lambda: _started_job(registry), "the first batch to start")
            started = time.monotonic()
            job = _started_job(registry)
            # On SQLite the worker cannot be seen waiting (see _WriteLock), but five
            # mentions reach the database within a second of starting.
            _wait_for(lock.someone_waits, "the worker to wait for the lock", timeout=4)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
            assert job.get_status() == "started", _output(tmp_path / "first.log")
            assert time.monotonic() - started < 4, "the kill would come after busy_timeout"
            job.refresh()  # it was read as it entered the registry, before it was marked
            killed = job.worker_name
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        with app.app_context():
            assert _count() == 0

        # No worker now: the import says which batch its dead worker had, and that no
        # worker is left; the batch is still marked started.
        _wait_for(lambda: "any more" in _output(cli_log), "the import to miss the worker")
        err = cli_log.with_suffix(".err").read_text()
        assert f"{NO_WORKER} {queue_name!r} any more" in err
        alive = f"lines 1-3: being stored by worker {killed} (pid {first.pid} on "
        assert alive in err[: err.index("which is gone")], err
        report = err[err.rindex("Waiting for the workers") :]
        assert report.startswith("Waiting for the workers: 0 of 2 batches done."), err
        assert f"lines 1-3: started by worker {killed}, which is gone" in report, err
        assert "queued: lines 4-5" in report, err
        assert cli.poll() is None, _output(cli_log)
        assert job.get_status() == "started"

        second = _crm(env, tmp_path / "second.log", "worker", queue_name)
        cli.wait(timeout=60)
        out = cli_log.read_text()
        assert (cli.returncode, out.strip()) == (
            0,
            "5 stored, 0 duplicate, 0 rejected (1 attached to contacts).",
        ), _output(cli_log) + _output(tmp_path / "second.log")
        job.refresh()
        assert job.get_status() == "finished"
        assert job.retries_left == jobs.INGEST_RETRY.max - 1, "run again once, after the kill"
        assert job.worker_name != killed
        assert f"job {job.id} was abandoned by worker {killed}" in _output(tmp_path / "second.log")
        assert job.return_value() == {"stored": 3, "duplicates": 0, "attached": 1}
        with app.app_context():
            assert _external_ids() == [f"q{n}" for n in range(1, 6)]
            [entry] = _timeline(contact.id)
            assert entry.mention.external_id == "q3"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        if cli is not None and cli.poll() is None:
            cli.kill()
            cli.wait()
        if second is not None:
            _stop(second)


def test_a_running_worker_runs_a_dead_workers_batch_again(
    app, redis, redis_url, queue_name, tmp_path
):
    """Of two workers on a queue, kill the one storing a batch (with its process group):
    the other, idle all the while, finds the batch abandoned at its next maintenance and
    stores it, each mention once."""
    env = {**_env(app, redis_url, tmp_path), **FAST}
    processes = {}
    try:
        with _WriteLock(app.config["SQLALCHEMY_DATABASE_URI"]) as lock:
            for name in ("first", "second"):
                process = _crm(
                    env, tmp_path / f"{name}.log", "worker", queue_name, new_session=True
                )
                processes[process.pid] = process
            _wait_for(
                lambda: len(Worker.all(queue=Queue(queue_name, connection=redis))) == 2,
                "both workers",
            )
            job = jobs.enqueue_ingest(
                [_mention(n) for n in range(1, 6)],
                connection=redis,
                queue_name=queue_name,
                default_network="import",
            )
            _wait_for(lambda: job.get_status() == "started", "the batch to start")
            started = time.monotonic()
            _wait_for(lock.someone_waits, "the worker to wait for the lock", timeout=4)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
            job.refresh()
            assert job.get_status() == "started"
            killed = job.worker_name
            [pid] = [w.pid for w in Worker.all(connection=redis) if w.name == killed]
            assert time.monotonic() - started < 4, "the kill would come after busy_timeout"
            os.killpg(pid, signal.SIGKILL)
            processes.pop(pid).wait(timeout=10)
        _wait_for(lambda: job.get_status() == "finished", "the other worker to store the batch", 60)
        job.refresh()
        assert job.retries_left == jobs.INGEST_RETRY.max - 1, "run again once, after the kill"
        assert job.worker_name != killed
        assert job.return_value() == {"stored": 5, "duplicates": 0, "attached": 0}
        with app.app_context():
            assert _external_ids() == [f"q{n}" for n in range(1, 6)]
    finally:
        for process in processes.values():
            _stop(process)


def test_a_long_batch_keeps_its_heartbeat_and_runs_once(
    app, backend, redis, redis_url, queue_name, tmp_path
):
    """A batch that runs for several heartbeat lifetimes (waiting for the database here)
    is not taken for abandoned by the other worker's maintenance: it runs once."""
    env = {**_env(app, redis_url, tmp_path), **FAST}
    registry = StartedJobRegistry(queue_name, connection=redis)
    workers = []
    try:
        with _WriteLock(app.config["SQLALCHEMY_DATABASE_URI"]) as lock:
            for name in ("first", "second"):
                workers.append(_crm(env, tmp_path / f"{name}.log", "worker", queue_name))
            _wait_for(
                lambda: len(Worker.all(queue=Queue(queue_name, connection=redis))) == 2,
                "both workers",
            )
            job = jobs.enqueue_ingest(
                [_mention(n) for n in range(1, 6)],
                connection=redis,
                queue_name=queue_name,
                default_network="import",
            )
            _wait_for(lambda: job.get_status() == "started", "the batch to start")
            started = time.monotonic()
            _wait_for(lock.someone_waits, "the worker to wait for the lock", timeout=4)
            # SQLite gives up on the lock after busy_timeout (5 s); PostgreSQL waits.
            time.sleep(max(0.0, (3.5 if backend == "sqlite" else 8) - (time.monotonic() - started)))
            job.refresh()
            assert (job.get_status(), job.retries_left) == ("started", jobs.INGEST_RETRY.max), (
                "the other worker took the running batch for abandoned"
            )
            assert registry.get_job_ids(cleanup=False) == [job.id]
        _wait_for(lambda: job.get_status() == "finished", "the batch to be stored")
        job.refresh()
        assert job.retries_left == jobs.INGEST_RETRY.max, "the batch was run again"
        assert job.return_value() == {"stored": 5, "duplicates": 0, "attached": 0}
        with app.app_context():
            assert _count() == 5
    finally:
        for worker in workers:
            _stop(worker)


def test_a_batch_run_twice_stores_each_mention_once(
    app, redis, redis_url, queue_name, tmp_path, make_user, make_contact
):
    """A batch's job run again (its key queued twice here) stores nothing twice and
    says so; a batch no longer in Redis fails naming its key."""
    contact = make_contact(make_user("rep"), name="Twice Fan", handle_x="twicefan")
    batch = [_mention(1), _mention(2, "twicefan", source="x"), _mention(3)]
    first = jobs.enqueue_ingest(
        batch, connection=redis, queue_name=queue_name, default_network="import"
    )
    key = jobs.BATCH_KEY.format(first.id)
    assert redis.ttl(key) > jobs.STORED_BATCH_TTL
    second = queues.enqueue(
        jobs.ingest_batch, key, None, "import", queue_name=queue_name, connection=redis
    )
    log = tmp_path / "worker.log"
    worker = _crm(_env(app, redis_url, tmp_path), log, "worker", "--burst", queue_name)
    try:
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert first.get_status() == second.get_status() == "finished", _output(log)
    assert first.return_value() == {"stored": 3, "duplicates": 0, "attached": 1}
    assert second.return_value() == {"stored": 0, "duplicates": 3, "attached": 0}
    # Stored: kept only an hour more, for a run again such as the second one.
    assert 0 < redis.ttl(key) <= jobs.STORED_BATCH_TTL
    with app.app_context():
        assert _external_ids() == ["q1", "q2", "q3"]
        assert len(_timeline(contact.id)) == 1

    missing = f"crm:ingest:gone-{uuid.uuid4().hex}"
    app.config["REDIS_URL"] = redis_url  # outside a job ingest_batch connects itself
    with app.app_context():
        with pytest.raises(jobs.BatchGone) as gone:
            jobs.ingest_batch(missing)
        assert missing in str(gone.value)
        assert _count() == 3


def test_a_batch_with_a_malformed_mention_stores_nothing_and_says_which(
    app, redis, redis_url, queue_name, monkeypatch
):
    bad = {k: v for k, v in _mention(2).items() if k != "external_id"}
    job = jobs.enqueue_ingest(
        [_mention(1), bad, _mention(3)],
        connection=redis,
        queue_name=queue_name,
        default_network="import",
    )
    app.config["REDIS_URL"] = redis_url
    with app.app_context():
        with pytest.raises(MentionError) as error:
            jobs.ingest_batch(jobs.BATCH_KEY.format(job.id), None, "import")
        assert str(error.value) == "mention 2 of the batch: external_id is missing"
        assert _count() == 0
    # The batch stays for a run again once what is wrong is put right.
    assert redis.ttl(jobs.BATCH_KEY.format(job.id)) > jobs.STORED_BATCH_TTL


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
