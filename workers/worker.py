"""The worker `crm worker` runs: RQ's forking worker, with batch ingests run in place.

RQ forks a work-horse for every job, which keeps a crashing or leaking job from taking
the worker down. For a poll (network I/O, third-party parsers) that is worth its price.
For a batch of mentions to score and store it is not: the fork, a fresh database
connection with an empty page cache and cold caches cost more than scoring a thousand
mentions. Jobs marked with `in_place` therefore run in the worker process itself, as
RQ's SimpleWorker runs every job, with the same job timeout (RQ's SIGALRM death
penalty) and a heartbeat that lasts the whole timeout.

If the worker is killed in the middle of such a job, nothing of it is committed (the job
commits once, at its end), and RQ's maintenance finds the abandoned job once its
heartbeat has lapsed and runs it again through its Retry: every mention is then stored
once, as after a killed work-horse.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any, TypeVar

from rq import Worker as ForkingWorker
from rq.job import Job
from rq.queue import Queue
from rq.worker.base import SHUTDOWN_SIGNAL, WorkerStatus

from webapp.extensions import db

F = TypeVar("F", bound=Callable[..., Any])


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


class Worker(ForkingWorker):
    """RQ's Worker, except that jobs marked in_place run in this process."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        if not runs_in_place(job):
            super().execute_job(job, queue)
            return
        execution = self.prepare_execution(job)
        try:
            self.perform_job(job, queue, execution)
        finally:
            # What the job loaded stays out of the next one's way (and out of memory).
            db.session.remove()
            self.set_state(WorkerStatus.IDLE)

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
        """A job running in place cannot send heartbeats while it works: its heartbeat
        lasts its whole timeout, with a minute to spare (as in RQ's SimpleWorker)."""
        if runs_in_place(job) and job.timeout and job.timeout > 0:
            return int(job.timeout - working_time) + 60
        return super().get_heartbeat_ttl(job, working_time)
