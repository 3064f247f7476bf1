"""Deals benchmark: the board, the pipeline summary and the forecast at 100k deals and
100k contacts.

Seeds a database built by the real migrations (SQLite cached under
~/.cache/fieldcrm-bench/; PostgreSQL when --postgres names a database of this
benchmark's own, remembered there by a comment), then measures the server time of the
real pages through the real app (Flask test client, a manager and a rep signed in
through /login): p50/p95 over --requests requests after a warm-up, with the number of
SQL statements each page sends. The board shows at most PER_COLUMN cards a column
("more" pages on), so its cost does not grow with the pipeline; the goals are board
p95 <= 20 ms, forecast p95 <= 50 ms.

    .venv/bin/python bench/bench_deals.py
    .venv/bin/python bench/bench_deals.py --postgres postgresql://postgres@127.0.0.1:5432/crm_bench_deals
    .venv/bin/python bench/bench_deals.py --deals 5000 --contacts 5000 --requests 30
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import sqlite3
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from report import table
from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE_DIR = Path(os.environ.get("BENCH_CACHE_DIR") or Path.home() / ".cache" / "fieldcrm-bench")
SEED_VERSION = 1  # bump when the generated data changes
PASSWORD = "bench-password-123"  # noqa: S105 - the seeded users' password
DOMAIN = "bench.fieldcrm.test"
REPS = 8
GOALS = {"board": 20.0, "pipeline": 20.0, "forecast": 50.0, "baseline: account page": None}
CURRENCIES = ("EUR",) * 8 + ("USD", "GBP")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * p
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def migrations_key() -> str:
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "migrations" / "versions").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def config(url: str) -> dict:
    return {
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "fieldcrm-bench-secret",
        "PREFERRED_URL_SCHEME": "https",
        "WTF_CSRF_ENABLED": False,
        "REDIS_URL": None,
        "ARGON2_PROFILE": "CHEAPEST",
    }


def generate(n_deals: int, n_contacts: int, now: datetime, stages: list, seed: int = 11):
    """Users, contacts and deals as rows: open deals in every stage (a quarter of them
    past their rotting days), won and lost ones over two years, close dates over the
    past and the coming months."""
    from webapp.services.passwords import hash_password

    rng = random.Random(seed)
    password = hash_password(PASSWORD)
    users = [{"id": 1, "email": f"manager@{DOMAIN}", "name": "Bench Manager", "role": "manager"}]
    users += [
        {"id": i + 2, "email": f"rep{i + 1}@{DOMAIN}", "name": f"Bench Rep {i + 1}", "role": "rep"}
        for i in range(REPS)
    ]
    for u in users:
        u.update(password_hash=password, created_at=now)
    contacts = [
        {
            "id": i,
            "name": f"Contact {i}",
            "sort_name": f"contact {i}",
            "company": f"Company {i % 5000}",
            "search_text": f"contact {i}",
            "owner_id": 2 + i % REPS,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(1, n_contacts + 1)
    ]
    open_stages = [s for s in stages if s.kind == "open"]
    won = next(s for s in stages if s.kind == "won")
    lost = next(s for s in stages if s.kind == "lost")
    deals = []
    positions: dict[int, float] = {}
    today = now.date()
    for i in range(1, n_deals + 1):
        fate = rng.random()
        stage = rng.choice(open_stages) if fate < 0.5 else won if fate < 0.8 else lost
        created = now - timedelta(days=rng.randrange(1, 730))
        if stage.kind == "open":
            entered = now - timedelta(days=rng.randrange(0, 40), hours=rng.randrange(24))
            closed = None
            close = today + timedelta(days=rng.randrange(-60, 365))
        else:
            entered = created + (now - created) * rng.random()
            closed = entered
            close = entered.date()
        positions[stage.id] = positions.get(stage.id, 0.0) + 1.0
        deals.append(
            {
                "id": i,
                "title": f"Deal {i}",
                "owner_id": 1 if rng.random() < 0.1 else 2 + rng.randrange(REPS),
                "contact_id": rng.randrange(1, n_contacts + 1),
                "company": f"Company {i % 5000}",
                "amount_minor": rng.randrange(100, 100_000) * 100,
                "currency": rng.choice(CURRENCIES),
                "stage_id": stage.id,
                "expected_close": close,
                "position": positions[stage.id],
                "next_step": "Call back" if rng.random() < 0.7 else None,
                "lost_reason": "Price" if stage is lost else None,
                "stage_entered_at": entered,
                "close_date_pushes": rng.choice((0, 0, 0, 0, 1, 2, 3)),
                "closed_at": closed,
                "created_at": created,
                "updated_at": entered,
            }
        )
    return users, contacts, deals


def seed(url: str, args, label: str) -> None:
    """Migrate and fill an empty database."""
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Contact, Deal, Stage, User

    app = create_app(config(url))
    with app.app_context():
        upgrade()
        now = datetime.now(UTC)
        stages = list(db.session.scalars(sa.select(Stage).order_by(Stage.position)))
        log(f"{label}: generating {args.deals:,} deals, {args.contacts:,} contacts")
        users, contacts, deals = generate(args.deals, args.contacts, now, stages)
        t = time.perf_counter()
        with db.engine.begin() as conn:
            conn.execute(User.__table__.insert(), users)
            for table_, rows in ((Contact.__table__, contacts), (Deal.__table__, deals)):
                for start in range(0, len(rows), 10_000):
                    conn.execute(table_.insert(), rows[start : start + 10_000])
            if conn.dialect.name == "postgresql":
                for name in ("users", "contacts", "deals"):
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"
                        f" (SELECT max(id) FROM {name}))"
                    )
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            # A seed writes deal_totals once per deal (its triggers): vacuumed, as
            # autovacuum keeps a live database, so the bench reads what a server would.
            postgres = conn.dialect.name == "postgresql"
            conn.exec_driver_sql("VACUUM ANALYZE" if postgres else "ANALYZE")
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        log(f"{label}: seeded in {time.perf_counter() - t:.1f}s")
        db.engine.dispose()


def sqlite_url(args) -> str:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    key = f"v{SEED_VERSION}-{args.deals}-{args.contacts}-{migrations_key()}"
    path = CACHE_DIR / f"deals-{key}.sqlite3"
    if args.fresh or not path.exists():
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        seed(f"sqlite:///{tmp}", args, "SQLite")
        os.replace(tmp, path)
    else:
        log(f"SQLite: reusing {path}")
    return f"sqlite:///{path}"


def postgres_url(args, raw: str) -> str:
    import psycopg

    from webapp.config import database_url

    url = database_url(raw, "")
    parsed = sa.engine.make_url(url)
    name = parsed.database
    if not name or "bench" not in name:
        sys.exit(
            f"refusing PostgreSQL database {name!r}: give one of this bench's own (crm_bench_deals)"
        )
    libpq = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    key = f"deals-v{SEED_VERSION}-{args.deals}-{args.contacts}-{migrations_key()}"
    with psycopg.connect(libpq, autocommit=True) as conn:
        comment = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE datname = current_database()"
        ).fetchone()[0]
        intact = False
        with contextlib.suppress(psycopg.Error):
            intact = conn.execute("SELECT count(*) FROM deals").fetchone()[0] == args.deals
        if comment == key and intact and not args.fresh:
            log(f"PostgreSQL: reusing {name}")
            return url
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    seed(url, args, "PostgreSQL")
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{key}'")
    return url


def sign_in(app, email: str):
    client = app.test_client()
    r = client.post(
        "/login", data={"email": email, "password": PASSWORD}, base_url="https://localhost"
    )
    assert r.status_code == 303, f"sign-in of {email} failed: {r.status_code}"
    return client


def measure(url: str, label: str, requests: int) -> list[list]:
    from webapp import create_app
    from webapp.extensions import db

    app = create_app(config(url))
    rows = []
    with app.app_context():
        counted = {"n": 0}
        event.listen(
            db.engine,
            "before_cursor_execute",
            lambda *a: counted.__setitem__("n", counted["n"] + 1),
        )
        clients = {
            "manager (all)": sign_in(app, f"manager@{DOMAIN}"),
            "rep (own)": sign_in(app, f"rep1@{DOMAIN}"),
        }
        for page, path, expect in (
            ("baseline: account page", "/account", "Account"),
            ("board", "/deals", "deal-card"),
            ("pipeline", "/deals/pipeline", "Weighted"),
            ("forecast", "/deals/forecast", "Weighted"),
        ):
            for who, client in clients.items():
                for _ in range(max(5, requests // 10)):
                    r = client.get(path, base_url="https://localhost")
                body = r.get_data(as_text=True)
                assert r.status_code == 200 and expect in body, f"{path}: {r.status_code}"
                cards = len(re.findall(r'class="deal-card"', body))
                counted["n"] = 0
                client.get(path, base_url="https://localhost").get_data()
                statements = counted["n"]
                times, cpu = [], []
                for _ in range(requests):
                    t, c = time.perf_counter(), time.process_time()
                    client.get(path, base_url="https://localhost").get_data()
                    times.append((time.perf_counter() - t) * 1000)
                    cpu.append((time.process_time() - c) * 1000)
                p50, p95 = pct(times, 0.5), pct(times, 0.95)
                goal = GOALS[page]
                verdict = "" if goal is None else "ok" if p95 <= goal else "OVER"
                rows.append(
                    [
                        label,
                        page,
                        who,
                        f"{p50:.1f}",
                        f"{p95:.1f}",
                        f"{pct(cpu, 0.5):.1f}",
                        "" if goal is None else f"{goal:.0f}",
                        verdict,
                        statements,
                        cards if page == "board" else "",
                        f"{len(body) / 1024:.0f}",
                    ]
                )
                log(f"{label} {page} {who}: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
        db.engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--fresh", action="store_true", help="seed again even when cached")
    args = parser.parse_args()
    backends = [("SQLite " + sqlite3.sqlite_version, sqlite_url(args))]
    if args.postgres:
        backends.append(("PostgreSQL", postgres_url(args, args.postgres)))
    rows = []
    for label, url in backends:
        rows += measure(url, label, args.requests)
    print(f"## Deals pages at {args.deals:,} deals, {args.contacts:,} contacts ({date.today()})\n")
    print(
        f"Server time through the real app, {args.requests} requests each after a warm-up;"
        " CPU is this process's own time per request (the machine's other load aside)."
        f" Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.\n"
    )
    print(
        table(
            [
                "backend",
                "page",
                "signed in as",
                "p50 ms",
                "p95 ms",
                "p50 CPU ms",
                "goal p95",
                "",
                "SQL",
                "cards",
                "KB",
            ],
            rows,
            right={3, 4, 5, 6, 8, 9, 10},
        )
    )
    print()
    print(json.dumps({"deals": args.deals, "contacts": args.contacts, "requests": args.requests}))


if __name__ == "__main__":
    main()
