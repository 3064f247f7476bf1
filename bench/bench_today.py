"""Today and reminders benchmark: at 1M tasks, 100k deals and 100k contacts.

Per backend (SQLite always, PostgreSQL with --postgres URL, a database of this bench's
own, emptied on every run):

- server time of Today for a rep through the real app (Flask test client, signed in
  through the /login form): p50/p95 over --requests requests after a warm-up, beside
  the contact list of the same rep in the same run as the baseline;
- reminders: --reminders tasks due in the same minute, each assignee with a phone
  subscribed to a local push service (tests/pushservice.py: it checks every VAPID JWT
  and decrypts every payload), sent by one real `crm worker` process; how long from the
  sweep being queued to the last push accepted.

Goal: Today p95 <= 20 ms; every reminder of the minute sent within that minute.

    .venv/bin/python bench/bench_today.py
    .venv/bin/python bench/bench_today.py --postgres postgresql://postgres@127.0.0.1:5432/crm_bench_today
    .venv/bin/python bench/bench_today.py --tasks 100000 --deals 10000 --contacts 10000
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from report import table  # noqa: E402

from tests.pushservice import PushService  # noqa: E402

PASSWORD = "bench-password"  # noqa: S105 - the bench users' own
SUBJECT = "mailto:ops@fieldcrm.app"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def make_app(url: str, instance: Path, redis_url: str | None):
    from webapp import create_app

    os.environ["INSTANCE_PATH"] = str(instance)
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            "SECRET_KEY_FROM_DISK": False,
            "WTF_CSRF_ENABLED": False,
            "ARGON2_PROFILE": "CHEAPEST",
            "SERVER_NAME": "localhost",
            "REDIS_URL": redis_url,
            "VAPID_SUBJECT": SUBJECT,
            "OUTBOUND_ALLOW_PRIVATE": True,
        }
    )


def reset_postgres(url: str) -> None:
    name = sa.engine.make_url(url).database
    if not name or name in {"postgres", "test", "template0", "template1"} or "test" in name:
        sys.exit(f"refusing to empty PostgreSQL database {name!r}: give one of this bench's own")
    import psycopg

    parsed = sa.engine.make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def _rows_copy(conn, table_name: str, columns: list[str], rows) -> None:
    """Bulk-load rows: COPY on PostgreSQL, executemany on SQLite."""
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor().copy(f"COPY {table_name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    cursor = conn.connection.driver_connection.cursor()
    batch = []
    for row in rows:
        batch.append(tuple(v.isoformat(sep=" ") if isinstance(v, datetime) else v for v in row))
        if len(batch) == 20_000:
            cursor.executemany(
                f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({marks})", batch
            )
            batch = []
    if batch:
        cursor.executemany(
            f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({marks})", batch
        )


def seed(app, args) -> dict:
    """Users, contacts, deals and tasks; returns the bench rep and the reminder users."""
    from flask_migrate import upgrade

    from webapp.extensions import db
    from webapp.models import Stage, User
    from webapp.services import users

    rng = random.Random(11)
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = time.perf_counter()
    with app.app_context():
        upgrade()
        reps = [
            users.create_user(db.session, f"rep{i}@bench.test", f"Rep {i}", "rep", PASSWORD)
            for i in range(args.reps)
        ]
        db.session.commit()
        rep_ids = [u.id for u in reps]
        stage_ids = [s.id for s in db.session.scalars(sa.select(Stage))]
        with db.engine.begin() as conn:
            log(f"  {args.contacts:,} contacts")
            _rows_copy(
                conn,
                "contacts",
                ["name", "sort_name", "search_text", "owner_id", "created_at", "updated_at"],
                (
                    (
                        f"Person {i}",
                        f"person {i}",
                        f"person {i}",
                        rep_ids[i % len(rep_ids)],
                        now,
                        now,
                    )
                    for i in range(args.contacts)
                ),
            )
            log(f"  {args.deals:,} deals")
            _rows_copy(
                conn,
                "deals",
                [
                    "title",
                    "owner_id",
                    "contact_id",
                    "amount_minor",
                    "currency",
                    "stage_id",
                    "position",
                    "stage_entered_at",
                    "close_date_pushes",
                    "created_at",
                    "updated_at",
                ],
                (
                    (
                        f"Deal {i}",
                        rep_ids[i % len(rep_ids)],
                        1 + i % args.contacts,
                        rng.randrange(1000, 10_000_00),
                        "EUR",
                        rng.choice(stage_ids),
                        float(i),
                        now,
                        0,
                        now,
                        now,
                    )
                    for i in range(args.deals)
                ),
            )
            log(f"  {args.tasks:,} tasks")
            statuses = ["todo", "done", "done", "cancelled"]

            def tasks():
                for i in range(args.tasks):
                    due = now + timedelta(minutes=rng.randrange(-180 * 1440, 180 * 1440))
                    status = statuses[i % 4]
                    yield (
                        str(uuid.UUID(int=rng.getrandbits(128))),
                        f"Task {i}",
                        "",
                        rng.choice(["todo", "call", "visit", "meeting"]),
                        due,
                        "UTC",
                        rep_ids[i % len(rep_ids)],
                        rep_ids[i % len(rep_ids)],
                        1 + i % args.contacts,
                        status,
                        due if status == "done" else None,
                        due - timedelta(days=2),
                        now,
                    )

            _rows_copy(
                conn,
                "tasks",
                [
                    "uuid",
                    "title",
                    "notes",
                    "kind",
                    "due_at",
                    "time_zone",
                    "assignee_id",
                    "created_by_id",
                    "contact_id",
                    "status",
                    "done_at",
                    "created_at",
                    "updated_at",
                ],
                tasks(),
            )
        # Vacuumed as well on PostgreSQL: autovacuum would otherwise take on the million
        # new rows (and the deal totals' dead versions) while the pages are measured.
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            postgres = conn.dialect.name == "postgresql"
            conn.execute(sa.text("VACUUM ANALYZE" if postgres else "ANALYZE"))
        bench_rep = db.session.get(User, rep_ids[0])
        email = bench_rep.email
    return {"email": email, "rep_ids": rep_ids, "seconds": time.perf_counter() - t0}


def measure(client, path: str, n: int) -> tuple[float, float]:
    for _ in range(10):
        client.get(path).close()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        response = client.get(path)
        response.get_data()
        times.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def reminders(app, args, seeded: dict, redis_url: str, instance: Path, url: str) -> dict:
    """args.reminders tasks due within the last minute, phones on a local push service,
    one real worker: seconds from queueing the sweep to the last push accepted."""
    from rq import Queue

    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import push
    from workers import jobs
    from workers.queues import connect

    service = PushService().start()
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        rep_ids = seeded["rep_ids"]
        with app.app_context():
            for rep_id in rep_ids:
                user = db.session.get(User, rep_id)
                push.subscribe(db.session, user, service.subscribe(f"u{rep_id}"), app.config)
            push.keys(db.session, app.config)
            db.session.commit()
            with db.engine.begin() as conn:
                _rows_copy(
                    conn,
                    "tasks",
                    [
                        "uuid",
                        "title",
                        "notes",
                        "kind",
                        "due_at",
                        "time_zone",
                        "assignee_id",
                        "created_by_id",
                        "status",
                        "created_at",
                        "updated_at",
                    ],
                    (
                        (
                            str(uuid.uuid4()),
                            f"Reminder {i}",
                            "",
                            "call",
                            now - timedelta(seconds=i % 60),
                            "UTC",
                            rep_ids[i % len(rep_ids)],
                            rep_ids[i % len(rep_ids)],
                            "todo",
                            now - timedelta(days=1),
                            now,
                        )
                        for i in range(args.reminders)
                    ),
                )
        redis = connect(redis_url)
        redis.delete(jobs.REMINDER_LOCK)
        queue_name = f"bench-{uuid.uuid4().hex[:8]}"
        queue = Queue(queue_name, connection=redis)
        env = {
            **os.environ,
            "DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://"),
            "REDIS_URL": redis_url,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": "bench",
            "VAPID_SUBJECT": SUBJECT,
            "OUTBOUND_ALLOW_PRIVATE": "true",
        }
        start = time.perf_counter()
        sweeps = 0
        while len(service.accepted()) < args.reminders and sweeps < 5:
            sweeps += 1
            queue.enqueue(jobs.send_reminders, job_timeout=300)
            subprocess.run(
                [sys.executable, "-m", "webapp.cli", "worker", "--burst", queue_name],
                env=env,
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        seconds = time.perf_counter() - start
        bad = [d for d in service.deliveries if d.problem]
        return {
            "accepted": len(service.accepted()),
            "refused": len(bad),
            "seconds": seconds,
            "sweeps": sweeps,
            "unique": len({d.payload["tag"] for d in service.accepted() if d.payload}),
        }
    finally:
        service.stop()


def run_backend(name: str, url: str, args, redis_url: str) -> list[list]:
    from tests.conftest import sign_in  # the real /login form

    instance = Path(tempfile.mkdtemp(prefix="bench-today-"))
    app = make_app(url, instance, redis_url)
    log(f"{name}: seeding")
    seeded = seed(app, args)
    log(f"{name}: seeded in {seeded['seconds']:.0f} s; measuring Today")
    client = app.test_client()
    user = type("U", (), {"email": seeded["email"]})
    assert sign_in(client, user, PASSWORD).status_code == 303
    client.set_cookie("tz", "Europe/Berlin", domain="localhost")
    today = measure(client, "/today", args.requests)
    contacts = measure(client, "/contacts?mine=1", args.requests)
    log(f"{name}: reminders")
    sent = reminders(app, args, seeded, redis_url, instance, url)
    with app.app_context():
        from webapp.extensions import db

        db.engine.dispose()
    return [
        [name, "Today (rep)", f"{today[0]:.1f}", f"{today[1]:.1f}", "p95 <= 20 ms"],
        [name, "contact list, mine (baseline)", f"{contacts[0]:.1f}", f"{contacts[1]:.1f}", ""],
        [
            name,
            f"{args.reminders:,} reminders due in one minute, 1 worker",
            f"{sent['seconds']:.1f} s",
            f"{sent['accepted']:,} pushed, {sent['unique']:,} distinct, {sent['refused']} refused,"
            f" {sent['sweeps']} sweep(s)",
            "all within 60 s",
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--postgres", help="a PostgreSQL database of this bench's own")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()

    embedded = None
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        from workers.queues import EmbeddedRedis

        embedded = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="bench-redis-")) / "redis.db")
        redis_url = embedded.start()
    rows = []
    try:
        if not args.no_sqlite:
            path = Path(tempfile.mkdtemp(prefix="bench-today-db-")) / "bench.sqlite3"
            rows += run_backend("SQLite", f"sqlite:///{path}", args, redis_url)
        if args.postgres:
            url = args.postgres
            for prefix in ("postgres://", "postgresql://"):
                if url.startswith(prefix):
                    url = "postgresql+psycopg://" + url[len(prefix) :]
            reset_postgres(url)
            rows += run_backend("PostgreSQL", url, args, redis_url)
    finally:
        if embedded:
            embedded.stop()
    print(
        f"\nToday and reminders: {args.tasks:,} tasks, {args.deals:,} deals, "
        f"{args.contacts:,} contacts, {args.reps} reps; {args.requests} requests each "
        "(in-process test client, server time)\n"
    )
    print(table(["backend", "what", "p50 ms / time", "p95 ms / outcome", "goal"], rows))


if __name__ == "__main__":
    main()
