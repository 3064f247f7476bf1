"""Contacts benchmark: list, search, contact page and timeline at 100k contacts / 1M activities.

Seeds a database created by the real migrations (cached under ~/.cache/fieldcrm-bench/),
then measures, per backend (SQLite always, PostgreSQL when BENCH_DATABASE_URL or
--postgres is given):

- server time of real pages through the real app (Flask test client, CSRF on, a rep
  signed in through the /login form): p50/p95 over --requests requests after a warm-up;
- the raw SQL of each search variant and of the timeline/list pages, with its plan
  (a full scan is reported loudly);
- throughput through gunicorn (2 sync workers, 127.0.0.1) driven by wrk (or a bounded
  Python client), against a minimal Flask + Flask-SQLAlchemy baseline in the same run.

The report (markdown tables) goes to stdout; progress goes to stderr. Give PostgreSQL a
database of this benchmark's own: bench_ingest.py empties crm_bench on every run, and
never the tests' database (refused).

    .venv/bin/python bench/bench_contacts.py                          # 100k / 1M, SQLite
    .venv/bin/python bench/bench_contacts.py --postgres postgresql://postgres@127.0.0.1:5432/crm_bench_contacts
    .venv/bin/python bench/bench_contacts.py --contacts 5000 --activities 50000 --requests 50
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from contacts.common import SECRET, app_config, migrations_key, out
from contacts.seed import SEED_VERSION, USERS, Backend, seed_postgres, seed_sqlite
from contacts.throughput import report_throughput
from contacts.timing import (
    SQLRecorder,
    gather_facts,
    report_pages,
    sign_in,
)


def machine_facts(pg_version: str | None) -> str:
    mem = ""
    with contextlib.suppress(OSError):
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    wrk = "not installed (Python client)"
    if shutil.which("wrk"):
        res = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        m = re.search(r"wrk \S*?([\d.]+\d)", res.stdout + res.stderr)
        wrk = m[1] if m else "yes"
    from importlib.metadata import version

    parts = [
        f"{os.cpu_count()} cores{mem}",
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()}",
        f"SQLite {sqlite3.sqlite_version}",
        f"PostgreSQL {pg_version or '—'}",
        f"SQLAlchemy {version('sqlalchemy')}",
        f"Flask {version('flask')}",
        f"gunicorn {version('gunicorn')}",
        f"wrk {wrk}",
    ]
    return "; ".join(parts)


def run_backend(backend: Backend, args, warnings: list[str], noise: list[float]) -> list[str]:
    """Measure one backend; print its tables; return its plans section lines."""
    from webapp import create_app
    from webapp.extensions import db

    app = create_app(app_config(backend.url))
    with app.app_context():
        recorder = SQLRecorder(db.engine)
        facts = gather_facts(db.session)
        db.session.remove()
        seed = backend.seed
        how = "cached, " if seed.get("cached") else ""
        phases = ", ".join(f"{k} {v}s" for k, v in seed.get("phases", {}).items())
        out(f"## {backend.name} {backend.version}")
        out()
        out(
            f"Data: {facts.total_contacts:,} contacts ({facts.total_contacts - facts.live:,}"
            f" soft-deleted), {facts.total_activities:,} activities (most on one contact:"
            f" {facts.heavy_count:,}; median per contact: {facts.median_per_contact:g}),"
            f" {seed.get('handles', 0):,} handles, {len(USERS)} users;"
            f" {seed.get('bytes', 0) / 1e6:,.0f} MB."
        )
        out(
            f"Seed: {seed.get('seconds')} s ({how}seeded {seed.get('seeded_at')}; {phases});"
            f" {seed.get('how')}."
        )
        out()

    # Requests run with no app context pushed, so each gets its own (and its own
    # session and flask-login user), as under a real server.
    client = sign_in(app)
    # Over https the session cookie carries the __Host- prefix; gunicorn is reached over
    # plain http, where the same signed value goes under the plain name.
    cookie = client.get_cookie("__Host-crm_session", domain="localhost") or client.get_cookie(
        "crm_session", domain="localhost"
    )
    assert cookie is not None, "no session cookie after sign-in"
    plans = report_pages(app, client, recorder, facts, backend, args, warnings, noise)
    if not args.no_throughput:
        report_throughput(backend, cookie.value, args.duration, noise)
    return plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--fresh", action="store_true", help="reseed even when cached")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("BENCH_DATABASE_URL"),
        help="also measure PostgreSQL (default: $BENCH_DATABASE_URL); never the test db",
    )
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--duration", type=float, default=10, help="seconds per load target")
    parser.add_argument("--no-throughput", action="store_true")
    args = parser.parse_args()

    os.environ["SECRET_KEY"] = SECRET
    instance = tempfile.mkdtemp(prefix="bench-instance-")
    os.environ["INSTANCE_PATH"] = instance
    started = time.perf_counter()
    load_before = os.getloadavg()
    try:
        backends = [seed_sqlite(args)]
        if args.postgres:
            backends.append(seed_postgres(args, args.postgres))
        pg = next((b.version for b in backends if b.name == "PostgreSQL"), None)
        out(f"# Contacts benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        out()
        out(f"Machine: {machine_facts(pg)}.")
        out(
            f"Dataset: {args.contacts:,} contacts, {args.activities:,} activities"
            f" (seed v{SEED_VERSION}, migrations {migrations_key()})."
            f" Load average at start: {' '.join(f'{x:.2f}' for x in load_before)}."
        )
        out()
        warnings: list[str] = []
        noise: list[float] = []
        plans: list[str] = []
        for backend in backends:
            plans += run_backend(backend, args, warnings, noise)
        load_after = os.getloadavg()
        out("### Warnings")
        out()
        if warnings:
            for w in warnings:
                out(f"- **!! {w}**")
        else:
            out("- none: no search, list or timeline statement scans a table.")
        out()
        worst = max((x for x in noise if x == x), default=float("nan"))
        verdict = (
            "quiet: the figures stand"
            if worst < 0.05
            else "NOISY: other work shared the CPU; compare with a quiet rerun"
            if worst >= 0.15
            else "some noise: small differences are not significant"
        )
        out(
            f"Total run time {time.perf_counter() - started:.0f} s. Noise: other processes"
            f" used up to {worst:.0%} of the machine during a measurement ({verdict});"
            f" load average at end {' '.join(f'{x:.2f}' for x in load_after)}."
        )
        out()
        out("### Query plans")
        out()
        for line in plans:
            out(line)
    finally:
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    main()
