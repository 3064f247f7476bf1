"""Recurring work on RQ's cron scheduler, with a lock so only one scheduler enqueues.

RQ's CronScheduler has no lock of its own: two schedulers would enqueue every job
twice. Each instance here enqueues only while it holds a Redis lock; a second one
waits as a stand-by and takes over if the first dies.
"""

from __future__ import annotations

import logging

from redis import Redis
from rq.cron import CronScheduler

from workers import jobs
from workers.queues import hold_lock, release_lock

LOCK_KEY = "crm:cron:leader"
# The scheduler wakes at least every 60 s; the lock outlives two missed wakes.
LOCK_TTL = 150


class LockedCronScheduler(CronScheduler):
    """A CronScheduler that enqueues only while it holds the leader lock."""

    def enqueue_jobs(self):
        if not hold_lock(self.connection, LOCK_KEY, self.name, LOCK_TTL):
            return []
        return super().enqueue_jobs()

    def register_death(self, pipeline=None) -> None:
        release_lock(self.connection, LOCK_KEY, self.name)
        super().register_death(pipeline)


def build(connection: Redis, logging_level: int | str = logging.INFO) -> LockedCronScheduler:
    """The scheduler with every recurring job registered (intervals, not cron strings:
    RQ reads cron strings in local time)."""
    scheduler = LockedCronScheduler(connection=connection, logging_level=logging_level)
    # Sources have intervals of their own: this only finds the due ones and queues them.
    scheduler.register(jobs.dispatch_polls, "default", interval=15)
    scheduler.register(jobs.purge_login_failures, "low", interval=3600)
    scheduler.register(jobs.purge_deleted_contacts, "low", interval=24 * 3600)
    scheduler.register(jobs.purge_deleted_sources, "low", interval=24 * 3600)
    return scheduler
