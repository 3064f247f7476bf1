"""Recurring work on RQ's cron scheduler, with a lock so only one scheduler enqueues.

RQ's CronScheduler has no lock of its own: two schedulers would enqueue every job
twice. Each instance here enqueues only while it holds a Redis lock; a second one
waits as a stand-by and takes over if the first dies.

It also stops in its own way. RQ's raises an exception from its signal handler,
wherever the scheduler happens to be: inside a log call, which swallows it (the stop is
lost, and a traceback printed), or, when a second signal follows (a group kill and a
supervisor's own SIGTERM, say), inside register_death: a traceback, and at worst a lock
kept, so that the next scheduler stands by until it expires. Here a signal only asks
the loop to stop, and wakes it from its sleep.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import time
from types import FrameType

from redis import Redis
from rq.cron import CronScheduler

from workers import jobs
from workers.queues import hold_lock, release_lock

LOCK_KEY = "crm:cron:leader"
# The scheduler wakes at least every 60 s; the lock outlives two missed wakes.
LOCK_TTL = 150
# A signal this soon after the first is the same request twice (as RQ's worker takes
# it); a later one means "stop now" for a scheduler stuck on its way out.
REPEAT_SECONDS = 1.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class LockedCronScheduler(CronScheduler):
    """A CronScheduler that enqueues only while it holds the leader lock."""

    _stop_requested_at: float | None = None

    def enqueue_jobs(self) -> list:
        """RQ's, while this scheduler holds the lock (taking it if it is free)."""
        if not hold_lock(self.connection, LOCK_KEY, self.name, LOCK_TTL):
            return []
        return super().enqueue_jobs()

    def register_death(self, pipeline=None) -> None:
        """RQ's, giving up the lock first."""
        release_lock(self.connection, LOCK_KEY, self.name)
        super().register_death(pipeline)

    def start(self) -> None:
        """Enqueue due jobs until SIGINT or SIGTERM, then give up the lock and return."""
        self.log.info("CronScheduler %s: starting...", self.name)
        self._stop_requested_at = None
        wake_up, wake_up_write = os.pipe()
        for fd in (wake_up, wake_up_write):
            os.set_blocking(fd, False)
        # Python's C-level handler writes to this pipe the moment a signal arrives, so a
        # signal between the check of the flag and the sleep still cuts the sleep short.
        previous_fd = signal.set_wakeup_fd(wake_up_write, warn_on_full_buffer=False)
        # The handler stays when the loop is done: a signal that comes as the process
        # exits (the rest of a group kill, say) finds the stop under way.
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._request_stop)
        try:
            self.register_birth()
            try:
                while self._stop_requested_at is None:
                    if self.enqueue_jobs():
                        self.save()  # RQ keeps when each job is due next in Redis
                    self.heartbeat()
                    self._sleep(self.calculate_sleep_interval(), wake_up)
            finally:
                self.register_death()
            self.log.info("CronScheduler %s: stopped", self.name)
        finally:
            signal.set_wakeup_fd(previous_fd)
            os.close(wake_up)
            os.close(wake_up_write)

    def _sleep(self, seconds: float, wake_up: int) -> None:
        """Wait that long, or until a signal arrives."""
        if seconds > 0 and self._stop_requested_at is None:
            select.select([wake_up], [], [], seconds)
        with contextlib.suppress(BlockingIOError):
            os.read(wake_up, 4096)

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        """The first signal asks the loop to stop; a later one ends the process now."""
        name = signal.Signals(signum).name
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
            self.log.info("CronScheduler %s: %s received, stopping", self.name, name)
        elif time.monotonic() - self._stop_requested_at >= REPEAT_SECONDS:
            self.log.warning("CronScheduler %s: %s received again, exiting now", self.name, name)
            raise SystemExit(1)


def build(connection: Redis, logging_level: int | str = logging.INFO) -> LockedCronScheduler:
    """The scheduler with every recurring job registered (intervals, not cron strings:
    RQ reads cron strings in local time)."""
    scheduler = LockedCronScheduler(connection=connection, logging_level=logging_level)
    # Sources have intervals of their own: this only finds the due ones and queues them.
    scheduler.register(jobs.dispatch_polls, "default", interval=15)
    # Reminders go out within this many seconds of their due time (see send_reminders).
    scheduler.register(jobs.send_reminders, "high", interval=10)
    scheduler.register(jobs.triage_sweep, "default", interval=60)
    scheduler.register(jobs.purge_login_failures, "low", interval=3600)
    scheduler.register(jobs.purge_deleted_contacts, "low", interval=24 * 3600)
    scheduler.register(jobs.purge_deleted_sources, "low", interval=24 * 3600)
    return scheduler
