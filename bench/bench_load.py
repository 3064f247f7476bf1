"""Load benchmark: many signed-in users at once on the product as the Procfile serves it,
then a check that every activity the server acknowledged is stored exactly once.

Per backend (SQLite always, a fresh file in a temporary instance folder; PostgreSQL when
--postgres or BENCH_DATABASE_URL names a database: emptied before and after, or created
and dropped again when it did not exist):

- the schema by `crm db upgrade`; data bulk-inserted with bench_contacts.py's generator
  (--contacts contacts with handles, --activities activities spread as in real use: a
  few contacts with thousands, most with a handful), --mentions mentions made from the
  demo samples and stored by the product's ingest, and --users users (mostly reps, a
  few support staff and managers) sharing one known password;
- gunicorn started from the Procfile's web: line (sync workers, --workers or
  $WEB_CONCURRENCY, default 2; access log on), bound to 127.0.0.1 on a free port, with a
  fixed SECRET_KEY and SESSION_COOKIE_SECURE=false (plain http on loopback: a client
  sends no Secure cookie over it);
- --users threads, each one person: signs in through the real form (the CSRF token from
  the page), then until --seconds are up (or --max-requests are spent, by everyone
  together), with short think times: the contact list and its scroll, search as you
  type (a request per prefix, as htmx's debounce sends them), contact pages and their
  timeline scroll (?before=), logging through the contact page's form (with the form's
  uuid; plain posts answered 303, htmx posts answered with the timeline), the same form
  posted twice at once (a double tap), the offline outbox (GET /api/csrf, then POST
  /api/activities with a client uuid; some sent again later, some twice at once), the
  inbox with a filter and its scroll, and the account page;
- then the database: each activity the server acknowledged (a 303 to its contact page,
  a timeline naming its uuid, a JSON receipt naming it) must be stored exactly once as
  sent. "lost": acknowledged and missing; "doubled": rows beyond one per uuid (so one per
  double tap), plus rows whose uuid no client sent; "wrong": stored unlike what was sent.

Printed per backend: requests, errors (any 5xx, connection error or unexpected status,
by route and status), p50/p95/p99 latency overall and per kind of request, requests per
second, lost/doubled, the load average before and after, CPU used by the client and by
gunicorn, and the exceptions in gunicorn's log. Exit status 1 when any request failed or
any entry was lost, doubled or wrong, so the run serves as a check.

gunicorn is stopped by its PID (and its workers by theirs) at the end, on Ctrl-C and on
an error; the temporary folder goes, the PostgreSQL database is emptied or dropped. The
report (markdown tables) goes to stdout, progress to stderr.

    .venv/bin/python bench/bench_load.py                        # SQLite, 50 users, 60 s
    .venv/bin/python bench/bench_load.py --postgres postgresql://postgres@127.0.0.1:5432/crm_load
    .venv/bin/python bench/bench_load.py --users 5 --seconds 5
"""

from __future__ import annotations

import argparse
import contextlib
import html
import os
import platform
import random
import re
import resource
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid as uuidlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import requests
import sqlalchemy as sa
from contacts.common import free_port, ms, pct
from contacts.seed import generate
from report import table

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SECRET = "fieldcrm-load-bench-secret"  # noqa: S105 - a throwaway key for the run's sessions
PASSWORD = "load-password-123"  # noqa: S105 - the seeded users' password
USER_DOMAIN = "load.fieldcrm.test"
UA = "fieldcrm-bench-load/1"
HTMX = {"HX-Request": "true", "HX-Request-Type": "partial"}
TIMEOUT = 30  # gunicorn's own worker timeout: a request longer than that is killed anyway
REFUSED_DATABASES = {"", "postgres", "template0", "template1", "test"}

# Think times in seconds (uniform ranges): between tasks; looking at a page before the
# next tap; between keystrokes that outlast htmx's debounce; writing a note.
THINK = (0.3, 1.5)
READ = (0.2, 1.0)
TYPE = (0.25, 0.5)
WRITE = (0.5, 2.0)
# What each role spends its time on: relative weights of the tasks, in TASK_NAMES' order.
# Each person's first task goes round this list instead (writes first), so that even a
# short run with a few users logs each way.
TASK_NAMES = "double_tap outbox log_activity search contact browse inbox account".split()
TASK_WEIGHTS = {
    "rep": [5, 12, 15, 20, 20, 15, 5, 3],
    "support": [3, 5, 10, 15, 20, 7, 35, 5],
    "manager": [2, 3, 10, 15, 25, 20, 15, 5],
}
KIND_WEIGHTS = {"call": 5, "visit": 3, "meeting": 2, "email": 2, "note": 3}
# Kinds of request, in the order the tables list them.
KINDS = [
    "sign-in page",
    "sign in",
    "contact list",
    "list scroll",
    "search as you type",
    "contact page",
    "timeline scroll",
    "log: form post",
    "log: htmx post",
    "double tap (each post)",
    "outbox: csrf",
    "outbox: send",
    "outbox: replay",
    "outbox: twin send (each)",
    "inbox",
    "inbox filter",
    "inbox scroll",
    "account",
]
WAYS = ["form post", "htmx post", "double tap, form", "double tap, htmx", "outbox", "outbox twin"]


def log(message: str) -> None:
    """Progress, on stderr."""
    print(f"[load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def out(line: str = "") -> None:
    """The report, on stdout."""
    print(line, flush=True)


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --------------------------------------------------------------------------- data


# Where a sign-in leads each role: reps and managers to Today, support to the inbox, the
# others to the contact list.
HOME = {"support": "/inbox/", "rep": "/today", "manager": "/today"} | dict.fromkeys(
    ("admin", "marketer"), "/contacts"
)


def role_counts(n: int) -> dict[str, int]:
    """Mostly reps, a few support staff and managers (at least one each when there is room)."""
    managers = max(1, round(n * 0.06)) if n >= 3 else 0
    support = max(1, round(n * 0.1)) if n >= 2 else 0
    return {"rep": n - managers - support, "support": support, "manager": managers}


def make_users(n: int, password_hash: str, now: datetime) -> list[dict]:
    """The users' rows: ids from 1, emails like rep7@load.fieldcrm.test."""
    from webapp.services.demo import FIRST

    rows = []
    for role, count in role_counts(n).items():
        for i in range(1, count + 1):
            rows.append(
                {
                    "id": len(rows) + 1,
                    "email": f"{role}{i}@{USER_DOMAIN}",
                    "name": f"{FIRST[len(rows) % len(FIRST)]} {role.title()} {i}",
                    "role": role,
                    "password_hash": password_hash,
                    "created_at": now - timedelta(days=400),
                }
            )
    return rows


def dataset(args):
    """bench_contacts' contacts and activities, owned and written by this run's users."""
    from webapp.services import passwords

    # The profile gunicorn will verify with, so no sign-in rehashes (and writes).
    passwords.configure(os.environ.get("ARGON2_PROFILE", "RFC_9106_LOW_MEMORY"))
    data = generate(args.contacts, args.activities, seed=args.seed)
    data.users = make_users(args.users, passwords.hash_password(PASSWORD), data.now)
    rng = random.Random(args.seed)
    owners = [u["id"] for u in data.users if u["role"] in {"rep", "manager"}]
    weights = [8 if data.users[o - 1]["role"] == "rep" else 1 for o in owners]
    for row in data.contacts:
        row["owner_id"] = rng.choices(owners, weights)[0]
    return data


def mentions_for(n: int, seed: int) -> list:
    """n mentions made from the demo samples, spread over the last 30 days."""
    from social.demo import samples
    from social.mention import Mention

    rng = random.Random(seed)
    pool = samples()
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        cycle, index = divmod(i, len(pool))
        s = pool[index]
        rows.append(
            Mention(
                network=s["network"],
                external_id=f"load-{index}-{cycle}",
                author_handle=s["author_handle"],
                author_name=s["author_name"],
                author_followers=s.get("author_followers"),
                text=s["text"],
                created_at=now - timedelta(seconds=rng.randrange(60, 30 * 86400)),
                language=s.get("language"),
                extra={"demo": True},
            )
        )
    rows.sort(key=lambda m: m.created_at)
    return rows


@dataclass
class Backend:
    """A database the run uses, and what the seeding left in it."""

    name: str  # SQLite | PostgreSQL
    env_url: str  # DATABASE_URL as gunicorn reads it
    url: str  # the SQLAlchemy URL
    version: str = ""
    created: bool = False  # PostgreSQL: the run created the database, so it drops it
    seed_seconds: float = 0.0
    max_activity_id: int = 0


def crm_upgrade(backend: Backend, instance: Path) -> None:
    """`crm db upgrade`, as the Procfile's release: line runs it."""
    env = server_env(backend, instance)
    res = subprocess.run(
        [str(VENV_BIN / "crm"), "db", "upgrade"],
        env=env,
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if res.returncode:
        raise RuntimeError(f"crm db upgrade failed:\n{res.stdout}{res.stderr}")


def app_for(url: str):
    """The app on url, for seeding in this process."""
    from webapp import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET, "REDIS_URL": None})


def ingest_mentions(url: str, n: int, seed: int) -> None:
    """Store the mentions through the product's ingest, in batches as a worker would."""
    from webapp.extensions import db
    from webapp.services.mentions import ingest

    rows = mentions_for(n, seed)
    app = app_for(url)
    with app.app_context():
        for i in range(0, len(rows), 500):
            ingest(db.session, rows[i : i + 500])
            db.session.commit()
        db.session.remove()
        db.engine.dispose()


def seed_sqlite(backend: Backend, data, args) -> None:
    """Core executemany through the FTS triggers, as bench_contacts.py seeds, then ANALYZE."""
    from webapp.extensions import db
    from webapp.models import Activity, Contact, ContactHandle, User

    app = app_for(backend.url)
    with app.app_context(), db.engine.connect() as conn:
        for model, rows in ((User, data.users), (Contact, data.contacts)):
            for i in range(0, len(rows), 20000):
                conn.execute(model.__table__.insert(), rows[i : i + 20000])
        conn.execute(ContactHandle.__table__.insert(), data.handles)
        conn.commit()
        for rows in data.activity_batches(50000):
            conn.execute(Activity.__table__.insert(), rows)
            conn.commit()
    with app.app_context():
        db.engine.dispose()
    ingest_mentions(backend.url, args.mentions, args.seed)
    with sqlite3.connect(backend.url.removeprefix("sqlite:///")) as conn:
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def libpq_url(url: str, database: str | None = None) -> str:
    """url for psycopg (no driver name), on another database when given."""
    parsed = sa.engine.make_url(url).set(drivername="postgresql")
    if database:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def prepare_postgres(raw_url: str) -> Backend:
    """The named database, created when missing, with an empty public schema."""
    import psycopg

    from webapp.config import database_url

    url = database_url(raw_url, "")
    name = sa.engine.make_url(url).database or ""
    if name in REFUSED_DATABASES:
        sys.exit(f"refusing to use PostgreSQL database {name!r}: give one of the benchmark's own")
    created = False
    with psycopg.connect(libpq_url(url, "postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            log(f"PostgreSQL: creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')
            created = True
    backend = Backend("PostgreSQL", raw_url, url, created=created)
    empty_postgres(backend)
    with psycopg.connect(libpq_url(url)) as conn:
        backend.version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    return backend


def empty_postgres(backend: Backend) -> None:
    """Drop everything in the public schema."""
    import psycopg

    with psycopg.connect(libpq_url(backend.url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def seed_postgres(backend: Backend, data, args) -> None:
    """COPY into the migrated schema (indexes in place), as bench_contacts.py seeds."""
    import psycopg

    tables = {
        "users": (data.users, list(data.users[0])),
        "contacts": (data.contacts, list(data.contacts[0])),
        "contact_handles": (data.handles, ["id", "contact_id", "network", "handle"]),
    }
    activity_cols = ["id", "uuid", "contact_id", "author_id", "kind", "body"]
    activity_cols += ["occurred_at", "created_at"]
    with psycopg.connect(libpq_url(backend.url)) as conn:
        for name, (rows, cols) in tables.items():
            with conn.cursor().copy(f"COPY {name} ({', '.join(cols)}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row([row.get(c) for c in cols])
        with conn.cursor().copy(f"COPY activities ({', '.join(activity_cols)}) FROM STDIN") as cp:
            for rows in data.activity_batches(50000):
                for row in rows:
                    cp.write_row([row[c] for c in activity_cols])
        for name in ("users", "contacts", "contact_handles", "activities"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"
                f" (SELECT max(id) FROM {name}))"
            )
        conn.commit()
    ingest_mentions(backend.url, args.mentions, args.seed)
    with psycopg.connect(libpq_url(backend.url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def max_activity_id(url: str) -> int:
    """The last activity id before the load: rows after it are the run's."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.text("SELECT coalesce(max(id), 0) FROM activities"))
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- the server


def server_env(backend: Backend, instance: Path, workers: int | None = None) -> dict[str, str]:
    """The environment gunicorn and `crm` run in: this run's database, key and folder."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(
        DATABASE_URL=backend.env_url,
        SECRET_KEY=SECRET,
        INSTANCE_PATH=str(instance),
        SESSION_COOKIE_SECURE="false",
        PYTHONUNBUFFERED="1",
    )
    if workers is not None:
        env["WEB_CONCURRENCY"] = str(workers)
    return env


def procfile_web(port: int, env: dict[str, str]) -> list[str]:
    """The Procfile's web: command, its ${VAR:-default}s expanded, bound to loopback."""
    line = next(
        (x for x in (ROOT / "Procfile").read_text().splitlines() if x.startswith("web:")), None
    )
    if line is None:
        raise RuntimeError("the Procfile has no web: line")
    env = {**env, "PORT": str(port)}
    command = re.sub(
        r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m[1]) or m[2], line.removeprefix("web:")
    )
    argv = shlex.split(command)
    bind = next((i for i, a in enumerate(argv) if a in {"--bind", "-b"}), None)
    if bind is None or argv[0] != "gunicorn":
        raise RuntimeError(f"the Procfile's web: line is not gunicorn with --bind: {line}")
    argv[bind + 1] = f"127.0.0.1:{port}"
    argv[0] = str(VENV_BIN / "gunicorn")
    return argv


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is pid (gunicorn's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """gunicorn as the Procfile runs it; stopped by its PID, and its workers' PIDs."""

    def __init__(self, backend: Backend, instance: Path, workers: int, logfile: Path):
        """The command and environment; nothing starts yet."""
        self.port = free_port()
        self.env = server_env(backend, instance, workers)
        self.argv = procfile_web(self.port, self.env)
        self.logfile = logfile
        self.proc: subprocess.Popen | None = None
        self.workers: set[int] = set()
        self.cpu: dict[int, float] = {}

    def start(self) -> None:
        """Start it and wait until a worker answers /healthz."""
        with open(self.logfile, "ab") as sink:
            # A session of its own: Ctrl-C reaches this process only, which then stops
            # gunicorn in order instead of both racing to exit.
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=str(ROOT),
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within 60 s:\n{self.log_tail()}")
            time.sleep(0.2)
        self.note_workers()

    @property
    def base(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def note_workers(self) -> None:
        """Remember the current workers (a worker killed on timeout is replaced)."""
        if self.proc is not None and self.proc.poll() is None:
            for pid in children_of(self.proc.pid):
                self.workers.add(pid)
                self.cpu[pid] = cpu_seconds(pid)

    def cpu_total(self) -> float:
        """CPU seconds of the master and every worker seen."""
        self.note_workers()
        master = cpu_seconds(self.proc.pid) if self.proc else 0.0
        return master + sum(self.cpu.values())

    def log_tail(self, n: int = 3000) -> str:
        """The end of gunicorn's log."""
        return self.logfile.read_text(errors="replace")[-n:] if self.logfile.exists() else ""

    def stop(self) -> None:
        """SIGTERM to the master, SIGKILL after a grace period; then any worker left."""
        if self.proc is None:
            return
        self.note_workers()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.workers:
            with contextlib.suppress(OSError):
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"gunicorn" in cmd:  # still ours, not a reused PID
                    os.kill(pid, signal.SIGKILL)
        self.proc = None


# --------------------------------------------------------------------------- the clients


class Done(Exception):
    """The run is over for this user: time is up, the request cap is spent, or Ctrl-C."""


class Failed(Exception):
    """A request of the task failed; the task stops there."""

    def __init__(self, sample: Sample):
        """Carry the failed request's sample."""
        super().__init__(sample.problem)
        self.sample = sample


@dataclass
class Sample:
    """One request: its kind, route, status, time, and what was wrong with it, if anything."""

    kind: str
    route: str
    status: int | None
    ms: float
    problem: str | None = None
    response: requests.Response | None = field(default=None, repr=False)
    at: float = 0.0  # time.monotonic() when it was sent


@dataclass
class Entry:
    """An activity a client sent: what it must be stored as, and the answers naming it."""

    uuid: str
    contact_id: int
    author_id: int
    kind: str
    body: str
    way: str
    occurred_at: str | None = None  # outbox entries: the time the phone made them
    acks: int = 0
    receipt_ids: set[int] = field(default_factory=set)


class Run:
    """What the users share: the server, the clock, the request cap and the records."""

    def __init__(self, base: str, args, data):
        """The shared state for a run against base, with the seeded data's ids and terms."""
        self.base = base
        self.cap = args.max_requests
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.count = 0
        self.capped = False
        self.samples: list[Sample] = []
        self.entries: dict[str, Entry] = {}
        self.pairs: dict[str, Counter] = defaultdict(Counter)  # kind -> "303 + 500" -> n
        self.deadline = float("inf")
        live = [c for c in data.contacts if c["deleted_at"] is None]
        self.live_ids = [c["id"] for c in live]
        deleted = {c["id"] for c in data.contacts if c["deleted_at"] is not None}
        ranked = sorted(data.activity_counts.items(), key=lambda kv: -kv[1])
        self.heavy_ids = [cid for cid, _ in ranked if cid not in deleted][:20]
        self.terms = search_terms(live, random.Random(args.seed))

    def admit(self, n: int = 1) -> None:
        """Count n more requests, or end this user's run. :raise Done:"""
        with self.lock:
            if self.stop.is_set() or time.monotonic() >= self.deadline:
                raise Done
            if self.count + n > self.cap:
                self.capped = True
                self.stop.set()
                raise Done
            self.count += n

    def wait(self, span: tuple[float, float], rng: random.Random) -> None:
        """Think for a while (a random time in span). :raise Done: the run ended meanwhile."""
        if self.stop.wait(rng.uniform(*span)) or time.monotonic() >= self.deadline:
            raise Done

    def record(self, sample: Sample) -> None:
        """Keep a request's outcome."""
        with self.lock:
            self.samples.append(sample)

    def sent(self, entry: Entry) -> Entry:
        """Note an activity about to be sent."""
        with self.lock:
            return self.entries.setdefault(entry.uuid, entry)

    def acked(self, entry: Entry, receipt_id: int | None = None) -> None:
        """Note an answer that acknowledged the entry."""
        with self.lock:
            entry.acks += 1
            if receipt_id is not None:
                entry.receipt_ids.add(receipt_id)


def search_terms(contacts: list[dict], rng: random.Random, n: int = 300) -> list[str]:
    """What people type: first or last names, company names, phone digits."""
    terms = []
    for c in rng.sample(contacts, min(n, len(contacts))):
        first, *_, last = c["name"].split()
        options = [first, last]
        if c["company"]:
            options.append(c["company"].split()[0])
        if c["phone"]:
            options.append(re.sub(r"\D", "", c["phone"])[-6:])
        terms.append(rng.choice(options).lower() if rng.random() < 0.7 else rng.choice(options))
    return terms


def route_of(method: str, path: str) -> str:
    """The route a request took, ids elided: "POST /contacts/<id>/activities"."""
    parts = urlsplit(path)
    route = re.sub(r"/\d+", "/<id>", parts.path)
    if parts.query:
        keys = sorted({kv.split("=", 1)[0] for kv in parts.query.split("&") if kv})
        route += "?" + "&".join(f"{k}=" for k in keys)
    return f"{method} {route}"


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM_UUID = re.compile(r'name="uuid" value="([^"]+)"')
CONTACT_LINK = re.compile(r'href="/contacts/(\d+)"')
MORE_LINK = re.compile(r'hx-get="([^"]+)" hx-trigger="revealed"')


class Person:
    """One user's browser: a cookie jar (and a twin for double taps) and what they do."""

    def __init__(self, run: Run, user: dict, seed: int, index: int):
        """A browser with no cookies yet, for user (the index-th person of the run)."""
        self.run = run
        self.user = user
        self.index = index
        self.rng = random.Random(seed)
        self.http = self._session()
        self.twin = self._session()
        self.token: str | None = None
        self.outbox_sent: list[Entry] = []
        self.signed_in_at: float | None = None  # the end of the first sign-in

    @staticmethod
    def _session() -> requests.Session:
        """A fresh cookie jar and connection pool."""
        s = requests.Session()
        s.headers["User-Agent"] = UA
        return s

    # --- requests

    def send(
        self,
        kind: str,
        method: str,
        path: str,
        expect: set[int],
        *,
        htmx: bool = False,
        session: requests.Session | None = None,
        admitted: bool = False,
        **kwargs,
    ) -> Sample:
        """One request, timed and recorded; a 5xx, a connection error or a status not in
        expect is a problem."""
        if not admitted:
            self.run.admit()
        headers = dict(kwargs.pop("headers", {}))
        if htmx:
            headers.update(HTMX)
            if self.token:  # app.js puts the page's token on every htmx request
                headers["X-CSRFToken"] = self.token
        route = route_of(method, path)
        sent_at = time.monotonic()
        t0 = time.perf_counter()
        try:
            r = (session or self.http).request(
                method,
                self.run.base + path,
                headers=headers,
                allow_redirects=False,
                timeout=TIMEOUT,
                **kwargs,
            )
            elapsed = (time.perf_counter() - t0) * 1000
            sample = Sample(kind, route, r.status_code, elapsed, response=r)
            if r.status_code >= 500:
                sample.problem = f"{r.status_code}"
            elif r.status_code not in expect:
                where = r.headers.get("Location", "")
                sample.problem = f"unexpected {r.status_code}" + (f" to {where}" if where else "")
        except requests.RequestException as exc:
            elapsed = (time.perf_counter() - t0) * 1000
            sample = Sample(kind, route, None, elapsed, f"connection error ({type(exc).__name__})")
        sample.at = sent_at
        self.run.record(sample)
        return sample

    def get(self, kind: str, path: str, *, htmx: bool = False) -> Sample:
        """GET a page or fragment that must answer 200. :raise Failed:"""
        sample = self.send(kind, "GET", path, {200}, htmx=htmx)
        if sample.problem:
            raise Failed(sample)
        if m := CSRF_META.search(sample.response.text):
            self.token = m[1]
        return sample

    def pair(self, kind: str, method: str, path: str, expect: set[int], **kwargs) -> list[Sample]:
        """The same request twice at once with this user's cookies: a double tap."""
        self.run.admit(2)
        self.twin.cookies.clear()
        self.twin.cookies.update(self.http.cookies)
        barrier = threading.Barrier(2)
        results: list[Sample | None] = [None, None]

        def go(i: int) -> None:
            """One of the two taps."""
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(5)
            session = self.twin if i else self.http
            results[i] = self.send(
                kind, method, path, expect, session=session, admitted=True, **kwargs
            )

        other = threading.Thread(target=go, args=(1,), daemon=True)
        other.start()
        go(0)
        other.join(TIMEOUT + 5)
        done = [s for s in results if s is not None]
        statuses = sorted(str(s.status or "no answer") for s in done)
        with self.run.lock:
            self.run.pairs[kind][" + ".join(statuses)] += 1
        return done

    # --- tasks

    def sign_in(self) -> None:
        """Through the form: the sign-in page's token, the password, the list it leads to."""
        self.http.cookies.clear()
        self.token = None
        token = CSRF_FIELD.search(self.get("sign-in page", "/login").response.text)
        self.run.wait(READ, self.rng)
        form = {"csrf_token": token[1] if token else "", "email": self.user["email"]}
        form["password"] = PASSWORD
        sample = self.send("sign in", "POST", "/login", {303}, data=form)
        landed = urlsplit(sample.response.headers.get("Location", "")).path
        if not sample.problem and landed != HOME[self.user["role"]]:
            sample.problem = f"303 to {landed or 'nowhere'}, not the role's start page"
        if sample.problem:
            raise Failed(sample)
        page = self.get("contact list", "/contacts")
        if f'<meta name="user-id" content="{self.user["id"]}">' not in page.response.text:
            page.problem = "200 for someone else"
            raise Failed(page)
        if self.signed_in_at is None:
            self.signed_in_at = time.monotonic()

    def browse(self) -> None:
        """The contact list (sometimes only mine), a scroll or two, maybe a contact."""
        path = "/contacts?mine=1" if self.rng.random() < 0.2 else "/contacts"
        text = self.get("contact list", path).response.text
        ids = CONTACT_LINK.findall(text)
        for _ in range(self.rng.randint(0, 2)):
            more = MORE_LINK.search(text)
            if not more:
                break
            self.run.wait(READ, self.rng)
            text = self.get("list scroll", html.unescape(more[1]), htmx=True).response.text
            ids += CONTACT_LINK.findall(text)
        if ids and self.rng.random() < 0.6:
            self.run.wait(READ, self.rng)
            self.contact(int(self.rng.choice(ids)))

    def search(self) -> None:
        """Type a term a letter at a time (a request per prefix), then open a match."""
        term = self.rng.choice(self.run.terms)
        text = ""
        start = 1 if len(term) < 3 else 2
        for n in range(start, min(len(term), start + 5) + 1):
            self.run.wait(TYPE, self.rng)
            path = "/contacts?" + urlencode({"q": term[:n]})
            text = self.get("search as you type", path, htmx=True).response.text
        ids = CONTACT_LINK.findall(text)
        if ids and self.rng.random() < 0.7:
            self.run.wait(READ, self.rng)
            self.contact(int(self.rng.choice(ids)))

    def pick_contact(self) -> int:
        """A live contact; now and then one with a long timeline."""
        if self.rng.random() < 0.2 and self.run.heavy_ids:
            return self.rng.choice(self.run.heavy_ids)
        return self.rng.choice(self.run.live_ids)

    def contact(self, contact_id: int | None = None) -> None:
        """A contact page, and its timeline scrolled back a few pages."""
        cid = contact_id or self.pick_contact()
        text = self.get("contact page", f"/contacts/{cid}").response.text
        for _ in range(self.rng.randint(0, 4)):
            more = MORE_LINK.search(text)
            if not more:
                break
            self.run.wait(READ, self.rng)
            text = self.get("timeline scroll", html.unescape(more[1]), htmx=True).response.text

    def entry(self, way: str, contact_id: int, client_uuid: str) -> Entry:
        """A new activity to log: a kind, and a body (a note always has one)."""
        from webapp.services.demo import BODIES

        kind = self.rng.choices(list(KIND_WEIGHTS), list(KIND_WEIGHTS.values()))[0]
        body = self.rng.choice([b for b in BODIES[kind] if b or kind != "note"])
        if self.rng.random() < 0.3:
            body = f"{body} Load run {self.rng.randrange(10000, 99999)}.".strip()
        return Entry(client_uuid, contact_id, self.user["id"], kind, body, way)

    def log_activity(self, twice: bool = False) -> None:
        """Open a contact, log through its form (plain or htmx), once or as a double tap."""
        cid = self.pick_contact()
        page = self.get("contact page", f"/contacts/{cid}")
        form_uuid, token = (
            FORM_UUID.search(page.response.text),
            CSRF_FIELD.search(page.response.text),
        )
        if not form_uuid or not token:
            page.problem = "200 without the form"
            raise Failed(page)
        self.run.wait(WRITE, self.rng)
        htmx = self.rng.random() < (0.5 if twice else 0.4)
        way = {
            (False, False): "form post",
            (False, True): "htmx post",
            (True, False): "double tap, form",
            (True, True): "double tap, htmx",
        }[(twice, htmx)]
        e = self.run.sent(self.entry(way, cid, form_uuid[1]))
        form = {"csrf_token": token[1], "uuid": e.uuid, "kind": e.kind, "body": e.body}
        path = f"/contacts/{cid}/activities"
        expect = {200} if htmx else {303}
        if twice:
            samples = self.pair(
                "double tap (each post)", "POST", path, expect, data=form, htmx=htmx
            )
        else:
            kind = "log: htmx post" if htmx else "log: form post"
            samples = [self.send(kind, "POST", path, expect, data=form, htmx=htmx)]
        follow = None
        for s in samples:
            if s.problem:
                continue
            if htmx and f'data-uuid="{e.uuid}"' not in s.response.text:
                s.problem = "200 without the entry"
            elif not htmx and urlsplit(s.response.headers["Location"]).path != f"/contacts/{cid}":
                s.problem = "303 not to the contact"
            else:
                self.run.acked(e)
                follow = s.response.headers.get("Location")
        if follow:  # the browser follows the redirect, and shows the flash
            self.run.wait((0.0, 0.05), self.rng)
            self.get("contact page", urlsplit(follow).path)
        failed = next((s for s in samples if s.problem), None)
        if failed:
            raise Failed(failed)

    def outbox(self) -> None:
        """What offline.js does when the phone is back online: a fresh token, then each
        waiting entry; sometimes one sent before again, sometimes one sent twice at once."""
        sample = self.send("outbox: csrf", "GET", "/api/csrf", {200}, headers=ACCEPT_JSON)
        if sample.problem:
            raise Failed(sample)
        try:
            data = sample.response.json()
        except ValueError:
            data = {}
        if data.get("user_id") != self.user["id"] or not data.get("csrf_token"):
            sample.problem = "200 for someone else"
            raise Failed(sample)
        headers = {**ACCEPT_JSON, "X-CSRFToken": data["csrf_token"]}
        waiting = [self.new_outbox_entry("outbox") for _ in range(self.rng.randint(1, 3))]
        if self.outbox_sent and self.rng.random() < 0.3:
            waiting.append(self.rng.choice(self.outbox_sent))  # its receipt was lost
        for e in waiting:
            replay = e in self.outbox_sent
            kind = "outbox: replay" if replay else "outbox: send"
            # Stored already (acknowledged): a second 201 would mean a second row.
            expect = {200} if replay and e.acks else {200, 201}
            sample = self.send(
                kind, "POST", "/api/activities", expect, headers=headers, json=self.payload(e)
            )
            self.receipt(e, sample, replay)
            if not replay:
                self.outbox_sent.append(e)
            if sample.problem:
                raise Failed(sample)
        if self.rng.random() < 0.15:  # the page and the service worker send it at once
            e = self.new_outbox_entry("outbox twin")
            samples = self.pair(
                "outbox: twin send (each)",
                "POST",
                "/api/activities",
                {200, 201},
                headers=headers,
                json=self.payload(e),
            )
            for s in samples:
                self.receipt(e, s, False)
            self.outbox_sent.append(e)
            failed = next((s for s in samples if s.problem), None)
            if failed:
                raise Failed(failed)

    def new_outbox_entry(self, way: str) -> Entry:
        """An entry made offline, on some contact, with a client uuid and its own time."""
        e = self.entry(way, self.pick_contact(), str(uuidlib.uuid4()))
        made = datetime.now(UTC) - timedelta(minutes=self.rng.randint(1, 48 * 60))
        e.occurred_at = made.isoformat(timespec="seconds")
        return self.run.sent(e)

    @staticmethod
    def payload(e: Entry) -> dict:
        """The JSON offline.js sends for an entry."""
        return {
            "uuid": e.uuid,
            "contact_id": e.contact_id,
            "kind": e.kind,
            "body": e.body,
            "occurred_at": e.occurred_at,
        }

    def receipt(self, e: Entry, sample: Sample, replay: bool) -> None:
        """Check an answer names the entry as stored (a replay: with the id stored first)."""
        if sample.problem:
            return
        try:
            data = sample.response.json()
        except ValueError:
            sample.problem = f"{sample.status} not JSON"
            return
        if data.get("uuid") != e.uuid or data.get("status") != "stored":
            sample.problem = f"{sample.status} without a receipt for the entry"
            return
        if replay and e.receipt_ids and data.get("id") not in e.receipt_ids:
            sample.problem = f"{sample.status} naming another stored id"
        self.run.acked(e, data.get("id"))

    def inbox(self) -> None:
        """The inbox, maybe a sentiment filter, maybe a scroll."""
        text = self.get("inbox", "/inbox/").response.text
        if self.rng.random() < 0.5:
            self.run.wait(READ, self.rng)
            label = self.rng.choice(["negative", "negative", "positive", "neutral"])
            query = urlencode({"source": "", "label": label, "matched": ""})
            text = self.get("inbox filter", f"/inbox/?{query}", htmx=True).response.text
        if self.rng.random() < 0.5 and (more := MORE_LINK.search(text)):
            self.run.wait(READ, self.rng)
            self.get("inbox scroll", html.unescape(more[1]), htmx=True)

    def account(self) -> None:
        """The account page, which must be this user's."""
        page = self.get("account", "/account")
        if self.user["email"] not in page.response.text:
            page.problem = "200 for someone else"
            raise Failed(page)

    def live(self, start_delay: float) -> None:
        """Sign in, then do a task, think, and again, until the run ends."""
        weights = TASK_WEIGHTS[self.user["role"]]
        first = TASK_NAMES[self.index % len(TASK_NAMES)]
        signed_in = False
        try:
            self.run.wait((start_delay, start_delay), self.rng)
            while True:
                try:
                    if not signed_in:
                        self.sign_in()
                        signed_in = True
                    task, first = first or self.rng.choices(TASK_NAMES, weights)[0], None
                    if task == "double_tap":
                        self.log_activity(twice=True)
                    else:
                        getattr(self, task)()
                except Failed as exc:
                    # Signed out (redirected to sign in, 401, a refused token): sign in again.
                    r = exc.sample.response
                    location = r.headers.get("Location", "") if r is not None else ""
                    if exc.sample.status in {400, 401} or "/login" in location:
                        signed_in = False
                except (Done, KeyboardInterrupt):
                    raise
                except Exception as exc:
                    # A fault of this client, not the server's: counted, so it cannot
                    # pass unseen, and the person carries on from a fresh sign-in.
                    problem = f"client error ({type(exc).__name__}: {exc})"[:200]
                    fault = Sample("client", "(in the client)", None, 0.0, problem)
                    fault.at = time.monotonic()
                    self.run.record(fault)
                    signed_in = False
                self.run.wait(THINK, self.rng)
        except Done:
            pass


ACCEPT_JSON = {"Accept": "application/json"}


# --------------------------------------------------------------------------- checks


@dataclass
class WayCheck:
    """The database check of the entries logged one way."""

    sent: int = 0
    acked: int = 0
    stored: int = 0
    lost: int = 0
    doubled: int = 0
    wrong: int = 0


def check_database(backend: Backend, run: Run) -> tuple[dict[str, WayCheck], int]:
    """Per way of logging: entries sent, acknowledged, stored, lost, doubled, wrong; and
    the run's rows whose uuid no client sent."""
    engine = sa.create_engine(backend.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT uuid, contact_id, author_id, kind, body FROM activities"
                    " WHERE id > :before"
                ),
                {"before": backend.max_activity_id},
            ).all()
    finally:
        engine.dispose()
    by_uuid: dict[str, list] = defaultdict(list)
    for row in rows:
        by_uuid[row.uuid].append(row)
    checks = {way: WayCheck() for way in WAYS}
    for e in run.entries.values():
        c = checks[e.way]
        stored = by_uuid.get(e.uuid, [])
        c.sent += 1
        c.acked += 1 if e.acks else 0
        c.stored += 1 if stored else 0
        c.lost += 1 if e.acks and not stored else 0
        c.doubled += max(0, len(stored) - 1)
        expected = (e.contact_id, e.author_id, e.kind, e.body.strip())
        c.wrong += sum(1 for r in stored if (r.contact_id, r.author_id, r.kind, r.body) != expected)
    strangers = sum(len(v) for k, v in by_uuid.items() if k not in run.entries)
    return checks, strangers


EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Timeout)): ?(.*)$")
NEW_RECORD = re.compile(r"^(\[\d{4}-\d\d-\d\d|\d+\.\d+\.\d+\.\d+ - )")


def server_exceptions(text: str) -> Counter:
    """(route, last exception of the traceback) for each "Exception on ..." in the log."""
    found: Counter = Counter()
    route = exc = None
    for line in text.splitlines():
        m = re.search(r"Exception on (\S+) \[(\w+)\]", line)
        if m or NEW_RECORD.match(line):
            if route:
                found[(route, exc or "(no exception line)")] += 1
            route = route_of(m[2], m[1]) if m else None
            exc = None
        elif route and (e := EXCEPTION_LINE.match(line)):
            exc = f"{e[1]}: {e[2][:110]}" if e[2] else e[1]
        if "[CRITICAL] WORKER TIMEOUT" in line:
            found[("(a worker)", "gunicorn killed a worker past its timeout")] += 1
    if route:
        found[(route, exc or "(no exception line)")] += 1
    return found


def access_log_5xx(text: str) -> int:
    """5xx answers in gunicorn's access log."""
    return len(re.findall(r'^\d+\.\d+\.\d+\.\d+ .*?" (5\d\d) ', text, re.M))


# --------------------------------------------------------------------------- the run


@dataclass
class Outcome:
    """What one backend's run measured and found."""

    backend: Backend
    elapsed: float
    samples: list[Sample]
    checks: dict[str, WayCheck]
    strangers: int
    load_before: str
    load_after: str
    client_cpu: float
    server_cpu: float
    exceptions: Counter
    access_5xx: int
    pairs: dict[str, Counter]
    capped: bool
    rush: float  # seconds until every user had signed in (the whole run if some never did)
    users: dict[str, int]

    @property
    def errors(self) -> list[Sample]:
        """The failed requests."""
        return [s for s in self.samples if s.problem]

    @property
    def lost(self) -> int:
        """Acknowledged entries missing from the database."""
        return sum(c.lost for c in self.checks.values())

    @property
    def doubled(self) -> int:
        """Rows beyond one per entry, and rows nobody sent."""
        return sum(c.doubled for c in self.checks.values()) + self.strangers

    @property
    def wrong(self) -> int:
        """Rows stored unlike what was sent."""
        return sum(c.wrong for c in self.checks.values())

    @property
    def ok(self) -> bool:
        """No failed request and every entry stored exactly once as sent."""
        return not self.errors and not (self.lost or self.doubled or self.wrong)


def run_load(backend: Backend, args, data, workdir: Path) -> Outcome:
    """Seed, start gunicorn, drive the users, stop, check."""
    instance = workdir / f"instance-{backend.name.lower()}"
    instance.mkdir()
    if backend.name == "SQLite":
        path = instance / "crm.sqlite3"
        backend.env_url = backend.url = f"sqlite:///{path}"
        backend.version = sqlite3.sqlite_version
    t0 = time.perf_counter()
    log(f"{backend.name}: crm db upgrade")
    crm_upgrade(backend, instance)
    log(f"{backend.name}: seeding")
    (seed_sqlite if backend.name == "SQLite" else seed_postgres)(backend, data, args)
    backend.max_activity_id = max_activity_id(backend.url)
    backend.seed_seconds = time.perf_counter() - t0
    log(f"{backend.name}: seeded in {backend.seed_seconds:.1f}s")

    server = Server(backend, instance, args.workers, workdir / f"gunicorn-{backend.name}.log")
    log(f"{backend.name}: {' '.join(server.argv[1:])}")
    try:
        server.start()
        run = Run(server.base, args, data)
        people = [Person(run, u, args.seed * 1000 + i, i) for i, u in enumerate(data.users)]
        ramp = min(3.0, args.seconds * 0.05)
        load_before = loadavg()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu0 = server.cpu_total()
        log(f"{backend.name}: {len(people)} users for {args.seconds:g}s (load {load_before})")
        start = time.monotonic()
        run.deadline = start + args.seconds
        threads = [
            threading.Thread(
                target=p.live, args=(ramp * i / max(1, len(people)),), daemon=True, name=f"u{i}"
            )
            for i, p in enumerate(people)
        ]
        for t in threads:
            t.start()
        try:
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(0.5)
                server.note_workers()
        except BaseException:
            run.stop.set()
            raise
        elapsed = time.monotonic() - start
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = server.cpu_total() - server_cpu0
        load_after = loadavg()
    finally:
        server.stop()
    signed = [p.signed_in_at for p in people]
    rush = elapsed if None in signed else max(signed) - start
    for sample in run.samples:
        sample.at -= start
    client_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    log(f"{backend.name}: {len(run.samples)} requests in {elapsed:.1f}s; checking the database")
    checks, strangers = check_database(backend, run)
    text = server.logfile.read_text(errors="replace")
    return Outcome(
        backend,
        elapsed,
        run.samples,
        checks,
        strangers,
        load_before,
        load_after,
        client_cpu,
        server_cpu,
        server_exceptions(text),
        access_log_5xx(text),
        run.pairs,
        run.capped,
        rush,
        role_counts(args.users),
    )


# --------------------------------------------------------------------------- the report


def latency_row(label: str, samples: list[Sample], seconds: float | None = None) -> list:
    """requests, errors, p50/p95/p99 (and max) of a set of samples."""
    times = [s.ms for s in samples]
    row = [label, len(samples), sum(1 for s in samples if s.problem)]
    if seconds is not None:
        row.append(f"{len(samples) / seconds:.1f}")
    quantiles = [ms(pct(times, q)) for q in (0.5, 0.95, 0.99)]
    return [*row, *quantiles, ms(max(times)) if times else "n/a"]


SUMMARY_HEADERS = "requests|errors|req/s|p50 ms|p95 ms|p99 ms|lost|doubled|wrong".split("|")
SUMMARY_HEADERS += ["load before", "load after", "client CPU s", "gunicorn CPU s"]


def report(o: Outcome, args) -> None:
    """The tables of one backend."""
    b = o.backend
    version = f"{b.name} {b.version}"
    users = ", ".join(f"{n} {role}" for role, n in o.users.items() if n)
    out(f"## {version}")
    out()
    out(
        f"{args.users} users ({users}), each signed in through the form, for {args.seconds:g} s"
        f" (request cap {args.max_requests:,}); gunicorn from the Procfile, {args.workers} sync"
        f" workers on 127.0.0.1. Seeded in {b.seed_seconds:.1f} s."
        + (f" The request cap ended the run after {o.elapsed:.1f} s." if o.capped else "")
    )
    out()
    out(
        table(
            SUMMARY_HEADERS,
            [
                [
                    len(o.samples),
                    len(o.errors),
                    f"{len(o.samples) / o.elapsed:.1f}",
                    *latency_row("", o.samples)[3:6],
                    o.lost,
                    o.doubled,
                    o.wrong,
                    o.load_before,
                    o.load_after,
                    f"{o.client_cpu:.1f}",
                    f"{o.server_cpu:.1f}",
                ]
            ],
            right=set(range(9)) | {11, 12},
        )
    )
    out()
    out("### Latency by phase of the run (ms)")
    out()
    early = [s for s in o.samples if s.at < o.rush]
    late = [s for s in o.samples if s.at >= o.rush]
    rows = [
        latency_row(f"until every user had signed in (0 to {o.rush:.1f} s)", early, o.rush),
        latency_row(f"after ({o.rush:.1f} s to the end)", late, max(o.elapsed - o.rush, 1e-9)),
        latency_row("whole run", o.samples, o.elapsed),
    ]
    out(table(["phase", "requests", "errors", "req/s", "p50", "p95", "p99", "max"], rows))
    out()
    out("### Latency per kind of request (client side, ms; includes queueing for a worker)")
    out()
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for s in o.samples:
        by_kind[s.kind].append(s)
    rows = [latency_row(k, by_kind[k], o.elapsed) for k in KINDS if by_kind.get(k)]
    rows += [latency_row(k, v, o.elapsed) for k, v in by_kind.items() if k not in KINDS]
    rows.append(latency_row("all", o.samples, o.elapsed))
    out(table(["kind", "requests", "errors", "req/s", "p50", "p95", "p99", "max"], rows))
    out()
    out("### Errors by route and status")
    out()
    if o.errors:
        counted = Counter((s.route, s.problem) for s in o.errors)
        kinds = defaultdict(set)
        for s in o.errors:
            kinds[(s.route, s.problem)].add(s.kind)
        rows = [
            [route, problem, ", ".join(sorted(kinds[(route, problem)])), n]
            for (route, problem), n in counted.most_common()
        ]
        out(table(["route", "status", "kind", "count"], rows, right={3}))
    else:
        out("None: every request answered as expected.")
    out()
    out(f"5xx in gunicorn's access log: {o.access_5xx}.")
    if o.exceptions:
        out()
        rows = [[route, exc, n] for (route, exc), n in o.exceptions.most_common()]
        out(table(["route", "exception in gunicorn's log", "count"], rows, right={2}))
    out()
    out("### Activities: what the server acknowledged against what the database holds")
    out()
    rows = [
        [way, c.sent, c.acked, c.stored, c.lost, c.doubled, c.wrong]
        for way, c in o.checks.items()
        if c.sent
    ]
    total = WayCheck()
    for c in o.checks.values():
        for name in vars(total):
            setattr(total, name, getattr(total, name) + getattr(c, name))
    rows.append(["rows whose uuid no client sent", "", "", o.strangers, "", o.strangers, ""])
    rows.append(
        [
            "all",
            total.sent,
            total.acked,
            total.stored + o.strangers,
            total.lost,
            total.doubled + o.strangers,
            total.wrong,
        ]
    )
    out(table(["way", "entries sent", "acknowledged", "stored", "lost", "doubled", "wrong"], rows))
    out()
    replays = sum(1 for s in o.samples if s.kind == "outbox: replay")
    for kind, label in (
        ("double tap (each post)", "Double taps (two form posts at once, same uuid)"),
        ("outbox: twin send (each)", "Outbox twin sends (two at once, same uuid)"),
    ):
        pairs = o.pairs.get(kind, Counter())
        answers = ", ".join(f"{k}: {n}" for k, n in sorted(pairs.items()))
        out(f"- {label}: {sum(pairs.values())}" + (f"; answers {answers}." if answers else "."))
    out(f"- Outbox replays (an entry sent again later): {replays}.")
    out()
    out(
        "An entry counts as acknowledged on a 303 to its contact page, a timeline naming its"
        " uuid or a JSON receipt naming it; an entry sent but never acknowledged may or may"
        " not be stored, and is lost only if it was acknowledged."
    )
    out()


def machine_facts(backends: list[Backend]) -> str:
    """Cores, memory, OS and versions."""
    from importlib.metadata import version

    mem = ""
    with contextlib.suppress(OSError, TypeError):
        text = Path("/proc/meminfo").read_text()
        kib = int(re.search(r"MemTotal:\s+(\d+)", text)[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    parts = [
        f"{os.cpu_count()} cores{mem}",
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()}",
        f"gunicorn {version('gunicorn')}",
        f"requests {version('requests')}",
    ]
    parts += [f"{b.name} {b.version}" for b in backends if b.version]
    return ", ".join(parts)


def span(values: tuple[float, float]) -> str:
    """A range of seconds, as printed: "0.3 to 1.5"."""
    return f"{values[0]:g} to {values[1]:g}"


def on_sigterm(_signum, _frame) -> None:
    """Stop as on Ctrl-C, so the cleanup runs."""
    raise KeyboardInterrupt


def main() -> int:
    """Run the load on each backend, print the report, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--max-requests",
        type=int,
        default=100_000,
        help="stop once this many requests were sent, by all users together",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY") or 2),
        help="gunicorn workers (the Procfile's $WEB_CONCURRENCY, default 2)",
    )
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--activities", type=int, default=100_000)
    parser.add_argument("--mentions", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("BENCH_DATABASE_URL"),
        help="also run on this PostgreSQL database (emptied, or created and dropped)",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    if args.users < 1 or args.seconds <= 0 or args.max_requests < 1:
        parser.error("--users, --seconds and --max-requests must be positive")
    if args.no_sqlite and not args.postgres:
        parser.error("--no-sqlite needs --postgres")

    # SIGINT explicitly: a shell starts background jobs with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    os.environ["INSTANCE_PATH"] = str(workdir / "instance-seed")
    os.environ["SECRET_KEY"] = SECRET
    backends: list[Backend] = []
    outcomes: list[Outcome] = []
    try:
        if not args.no_sqlite:
            backends.append(Backend("SQLite", "", ""))
        if args.postgres:
            backends.append(prepare_postgres(args.postgres))
        log(f"generating {args.contacts:,} contacts, {args.activities:,} activities")
        data = dataset(args)
        out(f"# Load benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        out()
        out(f"Machine: {machine_facts(backends)}.")
        out(
            f"Data: {args.contacts:,} contacts ({data.deleted} deleted), {args.activities:,}"
            f" activities, {args.mentions:,} mentions, {args.users} users. Think times:"
            f" {span(THINK)} s between tasks, {span(READ)} s on a page,"
            f" {span(TYPE)} s between keystrokes. Load average at start: {loadavg()}."
        )
        out()
        for backend in backends:
            outcomes.append(run_load(backend, args, data, workdir))
            report(outcomes[-1], args)
        out("## Summary")
        out()
        rows = [
            [
                o.backend.name,
                len(o.samples),
                len(o.errors),
                f"{len(o.samples) / o.elapsed:.1f}",
                *latency_row("", o.samples)[3:6],
                o.lost,
                o.doubled,
                o.wrong,
                "ok" if o.ok else "FAILED",
            ]
            for o in outcomes
        ]
        headers = "backend|requests|errors|req/s|p50 ms|p95 ms|p99 ms|lost|doubled|wrong|verdict"
        out(table(headers.split("|"), rows, right=set(range(1, 10))))
        return 0 if all(o.ok for o in outcomes) else 1
    except KeyboardInterrupt:
        log("interrupted: stopping")
        return 130
    finally:
        for backend in backends:
            if backend.name == "PostgreSQL":
                cleanup_postgres(backend)
        shutil.rmtree(workdir, ignore_errors=True)


def cleanup_postgres(backend: Backend) -> None:
    """Drop the database the run created, or empty the one it was given."""
    import psycopg

    try:
        if backend.created:
            name = sa.engine.make_url(backend.url).database
            with psycopg.connect(libpq_url(backend.url, "postgres"), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            log(f"PostgreSQL: dropped {name}")
        else:
            empty_postgres(backend)
            log("PostgreSQL: emptied")
    except psycopg.Error as exc:
        log(f"PostgreSQL: could not clean up: {exc}")


if __name__ == "__main__":
    sys.exit(main())
