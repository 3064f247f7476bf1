"""What the workers' tests share: `crm` processes started, waited for and stopped,
mentions to ingest and what got stored, and the database's write lock held from outside."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from rq.job import Job
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import Activity, Mention

ROOT = Path(__file__).resolve().parents[2]
# What a waiting import says while no worker takes its batches.
NO_WORKER = "No worker is taking jobs from the queue"


def mention(n: int, handle: str = "someone", **fields) -> dict:
    """Mention n as a line of `crm mentions import` has it, with fields changed."""
    return {
        "external_id": f"q{n}",
        "author_handle": handle,
        "author_name": handle.title(),
        "text": f"Mention {n}: great service, thanks!",
        "created_at": f"2026-11-20T10:{n:02d}:00Z",
        **fields,
    }


def crm_env(app, redis_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a `crm` process on the app's database and this Redis."""
    return {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(tmp_path),
        "SECRET_KEY": "x",
    }


def start_crm(
    env: dict[str, str],
    log: Path,
    *args: str,
    new_session: bool = False,
    module: str = "webapp.cli",
) -> subprocess.Popen:
    """Start `crm ARGS` (stdout to log, stderr to log.err), in a process group of its
    own if new_session; module runs it in a setting of a test's (tests.workers.local_x)."""
    with log.open("w") as out, log.with_suffix(".err").open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=err,
            start_new_session=new_session,
        )


def output(log: Path) -> str:
    """What a process started by start_crm has written, stdout then stderr."""
    return log.read_text() + log.with_suffix(".err").read_text()


def stop(process: subprocess.Popen) -> None:
    """SIGTERM a worker we started and wait for it (and any child it left: its scheduler)."""
    if process.poll() is None:
        left = children(process.pid)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def children(pid: int) -> list[int]:
    """The processes pid has started (forked from any of its threads)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        path = task / "children"
        if path.exists():
            found += [int(p) for p in path.read_text().split()]
    return found


def wait_for(
    predicate: Callable[[], object], what: str, timeout: float = 20, log: Path | None = None
) -> None:
    """Wait for predicate to hold; past timeout, fail naming what (and showing log)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}" + (f":\n{log.read_text()}" if log else ""))
        time.sleep(0.02)


def stored_count() -> int:
    """How many mentions are stored."""
    return db.session.scalar(select(func.count()).select_from(Mention))


def external_ids() -> list[str]:
    """The stored mentions' external ids, in order."""
    return list(db.session.scalars(select(Mention.external_id).order_by(Mention.external_id)))


def timeline(contact_id: int) -> list[Activity]:
    """The contact's timeline entries."""
    return list(db.session.scalars(select(Activity).where(Activity.contact_id == contact_id)))


class WriteLock:
    """Hold the database's write lock from another connection, as a long transaction
    of another process would."""

    def __init__(self, url: str):
        self.url = sa.engine.make_url(url)
        self.sqlite = self.url.get_backend_name() == "sqlite"

    def __enter__(self) -> WriteLock:
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


def started_job(registry: StartedJobRegistry) -> Job | None:
    """The job a worker has started on the registry's queue (read without RQ's cleanup,
    which is the workers' to run)."""
    ids = registry.get_job_ids(cleanup=False)
    return Job.fetch(ids[0], connection=registry.connection) if ids else None


def worker_env(redis_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a `crm worker` or `crm scheduler` run alone."""
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'crm.sqlite3'}",
        "SECRET_KEY": "x",
    }


def start_alone(redis_url: str, tmp_path: Path, log: Path, *args: str) -> subprocess.Popen:
    """Start `crm ARGS` run alone (worker_env), stdout and stderr to log, in a process
    group of its own."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "webapp.cli", *args],
            env=worker_env(redis_url, tmp_path),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
