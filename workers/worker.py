"""The worker `crm worker` runs: RQ's forking worker, with batch ingests run in place.

RQ forks a work-horse for every job, which keeps a crashing or leaking job from taking
the worker down. For a poll (network I/O, third-party parsers) that is worth its price.
For a batch of mentions to score and store it is not: the fork, a fresh database
connection with an empty page cache and cold caches cost more than scoring a thousand
mentions. Jobs marked with `in_place` therefore run in the worker process itself, as
RQ's SimpleWorker runs every job, with the same job timeout (RQ's SIGALRM death
penalty).

RQ tells a running job from an abandoned one by its heartbeat: the job's entry in the
queue's StartedJobRegistry expires when its heartbeat does, and a worker's maintenance
(`clean_registries`) hands an expired one to the job's Retry. A forking worker renews the
heartbeat while it waits for its work-horse; a job running in place gets a thread of its
own that renews the worker's and the job's heartbeat every few seconds with a short
lifetime, and dies with the process. If the worker is killed in the middle of such a
job, nothing of it is committed (the job commits once, at its end), its heartbeat lapses
within seconds, and the next maintenance of any worker on the queue runs it again: every
mention is then stored once, as after a killed work-horse. Workers run that maintenance
every CRM_WORKER_MAINTENANCE_SECONDS rather than RQ's ten minutes.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from redis import RedisError
from rq import Worker as ForkingWorker
from rq.exceptions import AbandonedJobError
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.worker.base import SHUTDOWN_SIGNAL, WorkerStatus

from webapp.extensions import db

F = TypeVar("F", bound=Callable[..., Any])

HEARTBEAT_SECONDS = 5.0
# A heartbeat outlives this many missed renewals before the job counts as abandoned.
HEARTBEAT_LIFETIMES = 4
MAINTENANCE_SECONDS = 15


class WorkerSettingError(ValueError):
    """A worker setting is not a number of seconds."""


def setting_seconds(name: str, raw: str | None, default: float) -> float:
    """The positive number of seconds a setting (named name) gives, or default."""
    raw = (raw or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise WorkerSettingError(f"{name} must be a number of seconds above 0, not {raw!r}.")
    return value


def in_place(func: F) -> F:
    """Mark a job function to run in the worker process instead of a forked work-horse.

    For our own CPU-bound batch jobs that commit once at their end and are safe to run
    twice; never for jobs running third-party parsers on what the network sends.
    """
    func.run_in_place = True  # type: ignore[attr-defined]
    return func


def runs_in_place(job: Job) -> bool:
    """Whether the job's function is marked in_place (False if it cannot be imported:
    a work-horse then fails it the usual way)."""
    try:
        return bool(getattr(job.func, "run_in_place", False))
    except Exception:  # an unimportable function is the work-horse's to report
        return False


class _QuietMaintenance(logging.Filter):
    """Keeps RQ's notes that it is cleaning registries out of INFO logs: at RQ's own
    interval they were rare, every few seconds they would bury the jobs' lines."""

    NOTES = ("Worker %s: cleaning registries for queue: %s", "Worker %s: cleaning group registries")

    def filter(self, record: logging.LogRecord) -> bool:
        """Let a note through only when debugging."""
        return record.msg not in self.NOTES or logging.getLogger(record.name).isEnabledFor(
            logging.DEBUG
        )


_quiet_maintenance = _QuietMaintenance()


class _Heartbeat(threading.Thread):
    """Renews the heartbeat of a job running in place until stopped, or until the job
    has outrun its timeout (then its death penalty has failed to end it, and letting
    the heartbeat lapse lets another worker run it again)."""

    def __init__(self, worker: Worker, job: Job, execution: Execution):
        super().__init__(name=f"heartbeat {job.id}", daemon=True)
        self.worker, self.job, self.execution = worker, job, execution
        self.stopped = threading.Event()
        timeout = job.timeout or Queue.DEFAULT_TIMEOUT
        self.deadline = None if timeout < 0 else time.monotonic() + timeout

    def run(self) -> None:
        """Beat every interval until stopped."""
        while not self.stopped.wait(self.worker.heartbeat_interval):
            if self.deadline is not None and time.monotonic() > self.deadline:
                self.worker.log.warning(
                    "Worker %s: job %s has outrun its timeout; its heartbeat is left to lapse",
                    self.worker.name,
                    self.job.id,
                )
                return
            try:
                self.beat()
            except RedisError as exc:  # a passing fault; the next beat may get through
                self.worker.log.warning("Worker %s: heartbeat failed: %s", self.worker.name, exc)

    def beat(self) -> None:
        """Renew the worker's, the execution's (its StartedJobRegistry entry) and the
        job's heartbeat, as RQ's forking worker does while it waits for its work-horse,
        but with the short lifetime of an in-place heartbeat for the worker too."""
        ttl = self.worker.in_place_ttl
        with self.worker.connection.pipeline() as pipeline:
            self.worker.heartbeat(ttl, pipeline=pipeline)
            self.execution.heartbeat(self.job.started_job_registry, ttl, pipeline=pipeline)
            self.job.heartbeat(datetime.now(UTC), ttl, pipeline=pipeline, xx=True)
            pipeline.execute()

    def stop(self) -> None:
        """Stop beating; no beat is sent once this returns (unless Redis hangs)."""
        self.stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=self.worker.in_place_ttl)


class Worker(ForkingWorker):
    """RQ's Worker, except that jobs marked in_place run in this process, with a
    heartbeat thread, and maintenance runs every few seconds."""

    def __init__(
        self,
        queues: Any,
        *args: Any,
        heartbeat_interval: float | None = None,
        maintenance_interval: float | None = None,
        **kwargs: Any,
    ):
        """heartbeat_interval and maintenance_interval are in seconds (by default 5 and
        15; `crm worker` passes the settings CRM_WORKER_HEARTBEAT_SECONDS and
        CRM_WORKER_MAINTENANCE_SECONDS)."""
        if heartbeat_interval is None:
            heartbeat_interval = HEARTBEAT_SECONDS
        if maintenance_interval is None:
            maintenance_interval = MAINTENANCE_SECONDS
        self.heartbeat_interval = heartbeat_interval
        # Redis keeps whole seconds, and a lifetime of one would end at the first late beat.
        self.in_place_ttl = max(2, math.ceil(heartbeat_interval * HEARTBEAT_LIFETIMES))
        self._heartbeat: _Heartbeat | None = None
        super().__init__(
            queues, *args, maintenance_interval=max(1, math.ceil(maintenance_interval)), **kwargs
        )
        self.log.addFilter(_quiet_maintenance)
        self.push_exc_handler(self._say_abandoned)

    def _say_abandoned(self, job: Job, exc_type: type, *exc_info: Any) -> None:
        """RQ's maintenance passes each abandoned job to the exception handlers before it
        runs it again (or fails it): say so, since RQ does not."""
        if exc_type is AbandonedJobError:
            self.log.warning(
                "Worker %s: job %s was abandoned by worker %s (its heartbeat lapsed); %s",
                self.name,
                job.id,
                job.worker_name,
                "it runs again" if job.retries_left else "it has failed",
            )

    @property
    def dequeue_timeout(self) -> int:
        """RQ checks whether its maintenance is due only between two waits for a job, and
        waits for minutes (its worker TTL): an idle worker waits no longer than the
        maintenance interval, so that it finds abandoned jobs on time."""
        return max(1, min(super().dequeue_timeout, self.maintenance_interval))

    def execute_job(self, job: Job, queue: Queue) -> None:
        if not runs_in_place(job):
            super().execute_job(job, queue)
            return
        execution = self.prepare_execution(job)
        self._heartbeat = _Heartbeat(self, job, execution)
        self._heartbeat.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            self._stop_heartbeat()
            # What the job loaded stays out of the next one's way (and out of memory).
            db.session.remove()
            self.set_state(WorkerStatus.IDLE)

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        """RQ calls this as a job's run ends, before it records the result and removes
        the execution: the heartbeat stops first, so no beat brings a removed execution
        back to life."""
        self._stop_heartbeat()
        super().handle_execution_ended(job, queue, heartbeat_ttl)

    def _stop_heartbeat(self) -> None:
        """Stop the in-place job's heartbeat thread, if one runs."""
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.stop()

    def kill_horse(self, sig: signal.Signals = SHUTDOWN_SIGNAL) -> None:
        """There is no work-horse while a job runs in place: RQ would signal process
        group 0, which is this worker's own (and that of `crm up` with its web server).
        Such a job cannot be stopped from outside; it ends by its timeout at the latest."""
        if self.horse_pid:
            super().kill_horse(sig)
        else:
            self.log.warning("Worker %s: the job runs in place and cannot be killed", self.name)

    def wait_for_horse(self) -> tuple[int | None, int | None, Any]:
        """Nothing to wait for without a work-horse (RQ would wait for any child)."""
        if self.horse_pid:
            return super().wait_for_horse()
        return None, None, None

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """A job running in place that a cold shutdown ends (RQ raises SystemExit in it)
        is retried like any failed job; it gets a line in the log, not a traceback."""
        if isinstance(exc_info[1], SystemExit) and self._shutdown_requested_date:
            self.log.warning("Worker %s: job %s stopped by the shutdown", self.name, job.id)
            return
        super().handle_exception(job, *exc_info)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """A job running in place has the short heartbeat its thread renews (RQ sets it
        as the job starts, on the worker, the job and its execution)."""
        if runs_in_place(job):
            return self.in_place_ttl
        return super().get_heartbeat_ttl(job, working_time)
