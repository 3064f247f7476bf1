"""Importing a file of normalized mentions (`crm mentions import`): each line checked,
the good ones stored in batches, from this process or by the workers on a queue, with
the rejected lines reported by number and the rest stored regardless."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from social.mention import Mention, MentionError, from_line
from webapp.extensions import db
from webapp.services import mentions
from workers import jobs, queues


@dataclass
class ImportReport:
    """What an import did: totals stored, duplicate and attached; the rejected lines
    (number, reason); batches the workers could not store, in words."""

    totals: dict[str, int]
    rejected: list[tuple[int, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def import_lines(
    lines: Iterable[str],
    batch: int,
    queue_name: str | None = None,
    redis_url: str | None = None,
    progress: float = 10.0,
    say: Callable[[str], None] = print,
) -> ImportReport:
    """Check each line and store the good ones in batches of batch: here, or (with
    queue_name) by the workers on that queue, waiting for them and saying every progress
    seconds what the batches wait for."""
    report = ImportReport({"stored": 0, "duplicates": 0, "attached": 0})
    if queue_name:
        store: _Store = _QueuedStore(queue_name, report.totals, redis_url, progress, say)
    else:
        store = _LocalStore(report.totals)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            store.add(number, line, from_line(line, default_network="import"))
        except MentionError as exc:
            report.rejected.append((number, str(exc)))
        if store.pending >= batch:
            store.flush()
    store.flush()
    report.failures = store.finish()
    return report


class _Store:
    """Where `crm mentions import` sends its batches of good lines."""

    def __init__(self, totals: dict[str, int]):
        self.totals = totals
        self.pending = 0

    def add(self, number: int, line: str, mention: Mention) -> None:
        """Take one checked line (and the mention it holds)."""
        raise NotImplementedError

    def flush(self) -> None:
        """Send what was taken so far on its way as one batch."""
        raise NotImplementedError

    def finish(self) -> list[str]:
        """Wait for what is still being stored; the failures, in words."""
        return []

    def count(self, outcome: dict[str, int]) -> None:
        """Add one batch's outcome to the totals."""
        for name in self.totals:
            self.totals[name] += outcome[name]


class _LocalStore(_Store):
    """Stores each batch from this process, in a transaction of its own."""

    def __init__(self, totals: dict[str, int]):
        super().__init__(totals)
        self.mentions: list[Mention] = []

    def add(self, number: int, line: str, mention: Mention) -> None:
        """Keep the mention for the next batch."""
        self.mentions.append(mention)
        self.pending += 1

    def flush(self) -> None:
        """Store the batch now, in a transaction of its own."""
        if not self.mentions:
            return
        outcome = mentions.ingest(db.session, self.mentions, None)
        db.session.commit()
        self.count(outcome.counts())
        self.mentions.clear()
        self.pending = 0


class _QueuedStore(_Store):
    """Queues each batch of mentions checked here for the workers on a queue, which
    store them without parsing or checking them again, then waits until every batch is
    stored or has failed for good, saying every so often what it waits for."""

    def __init__(
        self,
        queue_name: str,
        totals: dict[str, int],
        redis_url: str | None,
        progress: float,
        say: Callable[[str], None],
    ):
        super().__init__(totals)
        self.queue_name = queue_name
        self.progress = progress
        self.say = say
        self.connection = queues.connect(redis_url)
        self.lines: list[str] = []
        self.mentions: list[Mention] = []
        self.first_line = self.last_line = 0
        self.jobs: list[tuple[str, str]] = []  # job id, its lines

    def add(self, number: int, line: str, mention: Mention) -> None:
        """Keep the checked mention, and its line, for the next batch."""
        if not self.lines:
            self.first_line = number
        self.lines.append(line)
        self.mentions.append(mention)
        self.last_line = number
        self.pending += 1

    def flush(self) -> None:
        """Queue the batch for the workers: the checked mentions, or the lines as they
        are when an extra field holds what the checked form cannot carry (an integer
        beyond 64 bits), for the worker to check again."""
        if not self.lines:
            return
        try:
            job = jobs.enqueue_checked(
                self.mentions, connection=self.connection, queue_name=self.queue_name
            )
        except (OverflowError, msgspec.EncodeError):
            job = jobs.enqueue_ingest(
                "[" + ",".join(self.lines) + "]",
                connection=self.connection,
                queue_name=self.queue_name,
                default_network="import",
            )
        self.jobs.append((job.id, f"lines {self.first_line}-{self.last_line}"))
        self.lines.clear()
        self.mentions.clear()
        self.pending = 0

    def finish(self) -> list[str]:
        """Wait until every batch is stored or has failed for good; the failures."""
        waiting = dict(self.jobs)
        failures = []
        if waiting and not queues.has_worker(self.connection, self.queue_name):
            self.say(self._no_worker("yet"))
        next_report = time.monotonic() + self.progress
        while waiting:
            for job_id, end in queues.ended_jobs(self.connection, list(waiting)).items():
                lines = waiting.pop(job_id)
                if end.error is None:
                    self.count(end.result)
                else:
                    failures.append(f"{lines} not stored: {end.error}")
            if waiting and time.monotonic() >= next_report:
                self.report(waiting)
                next_report = time.monotonic() + self.progress
            if waiting:
                time.sleep(0.2)
        return failures

    def report(self, waiting: dict[str, str]) -> None:
        """Say how many batches are done and what each other one waits for."""
        states = queues.job_states(self.connection, self.queue_name, list(waiting))
        done = len(self.jobs) - len(waiting)
        lines = [f"Waiting for the workers: {done} of {len(self.jobs)} batches done."]
        queued = []
        for job_id, batch in waiting.items():
            state = states.get(job_id)
            if state is None:
                continue  # gone from Redis: reported as not stored when the wait ends
            if state.status == "queued":
                queued.append(batch)
            elif state.status == "started":
                lines.append(f"  {batch}: {self._started(state)}")
            elif state.status == "scheduled" and state.queued_at:
                at = state.queued_at.astimezone().strftime("%H:%M:%S")
                lines.append(f"  {batch}: to be run again at {at}")
            else:
                lines.append(f"  {batch}: {state.status}")
        if queued:
            shown = ", ".join(queued[:3])
            more = f" and {len(queued) - 3} more" if len(queued) > 3 else ""
            lines.append(f"  queued: {shown}{more}")
        if not queues.has_worker(self.connection, self.queue_name):
            lines.append(self._no_worker("any more"))
        self.say("\n".join(lines))

    @staticmethod
    def _started(state: queues.JobState) -> str:
        """Who has a started batch, and whether it still beats."""
        if not state.worker_name:
            return "starting"
        since = ""
        if state.last_heartbeat:
            seconds = max(0, round((datetime.now(UTC) - state.last_heartbeat).total_seconds()))
            since = f"last heartbeat {seconds} s ago"
        if state.worker is None:
            return (
                f"started by worker {state.worker_name}, which is gone ({since or 'no heartbeat'});"
                " it runs again once a worker finds it abandoned"
            )
        where = f"pid {state.worker.pid} on {state.worker.hostname}"
        return (
            f"being stored by worker {state.worker_name} ({where}), {since or 'no heartbeat yet'}"
        )

    def _no_worker(self, when: str) -> str:
        """That no worker takes jobs from the queue (yet, or any more)."""
        return (
            f"No worker is taking jobs from the queue {self.queue_name!r} {when};"
            f" the batches wait for one (`crm worker {self.queue_name}`)."
        )
