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
import hashlib
import http.client
import json
import math
import os
import platform
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import sqlalchemy as sa
from flask import Flask, render_template_string
from flask_sqlalchemy import SQLAlchemy
from report import table
from sqlalchemy import event, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
CACHE_DIR = Path(os.environ.get("BENCH_CACHE_DIR") or Path.home() / ".cache" / "fieldcrm-bench")
SEED_VERSION = 2  # bump when the generated data changes, so cached databases are rebuilt
SECRET = "fieldcrm-bench-secret"  # noqa: S105 - a throwaway key for the benchmark's sessions
PASSWORD = "bench-password-123"  # noqa: S105 - the seeded users' password
USER_DOMAIN = "bench.fieldcrm.test"
UA = "fieldcrm-bench/1"
BASE_URL = "https://localhost"
HTMX = {"HX-Request": "true", "HX-Request-Type": "partial"}

FIRST_EXTRA = (
    "Abigail Adrian Alba Aleksander Amara Ana Ananya Astrid Aurora Beatriz Benjamin Bilal "
    "Camille Carlos Caoimhe Chiara Ciaran Daniel Dara Eero Eilidh Emil Esther Farah Finn "
    "Gabriel Giulia Hamza Harriet Hiroshi Ines Isaac Jakub Javier Jasmine Kai Karin Katarzyna "
    "Laila Leon Lina Magnus Marco Margaret Maria Marta Mohammed Nadia Niamh Nikolai Oscar "
    "Paolo Patrick Rafael Rebecca Ruth Saoirse Sebastian Siobhan Sofia Stefan Thea Theo "
    "Valentina Victor Wiktoria Xavier Yara Yusra Zoe"
).split()
LAST_EXTRA = (
    "Abbott Achterberg Adeyemi Baptiste Barker Bergström Byrne Campbell Carvalho Chowdhury "
    "Clarke Dalton Doyle Eriksen Evans Farrell Fitzgerald Gallagher Gomez Hansen Hoffmann "
    "Ibrahim Jovanović Kavanagh Keller Kennedy Khan Lambert Lopez Lynch MacDonald Marsh "
    "Martin Molina Nakamura Nielsen O'Connor Okonkwo Olsen Papadopoulos Park Quinn Richter "
    "Rodriguez Ryan Sandoval Schneider Singh Sokolov Stewart Sullivan Thompson Torres Virtanen "
    "Wagner Ward Weber Williams Wilson Wong Young Zimmermann"
).split()
RARE_LAST = "Thornbury"  # given to a handful of contacts: the "rare term" search
COMPANY_STEMS = (
    "Northwind Harbor Bluebell Greenfield Apex Riverside Summit Copperleaf Ironbridge Lumen "
    "Oakridge Pinecrest Quayside Redwood Silverline Tidewater Union Vantage Willow Zenith "
    "Ashford Beacon Cedar Dunmore Eastgate Foxglove Granite Highland Kestrel Lakeside "
    "Meadow Northstar Orchard Pioneer Ravenscroft Sterling Thistle Upland Westbrook Yarrow"
).split()
COMPANY_KINDS = (
    "Traders|Logistics|Dairy|Farms|Tooling|Clinic|Builders|Cafés|Motors|Solar|Schools|"
    "Hotels|Marine|Pharmacy|Telecom|Foods|Hardware|Print|Veterinary|Fitness"
).split("|")
FREE_MAIL = ["mail.example", "post.example", "inbox.example"]
USERS = [
    ("admin", "Ada Admin"),
    ("manager", "Maya Manager"),
    ("manager", "Mo Manager"),
    ("rep", "Ravi Rep"),
    ("rep", "Rita Rep"),
    ("rep", "Rob Rep"),
    ("rep", "Rosa Rep"),
    ("rep", "Rui Rep"),
    ("rep", "Ruth Rep"),
    ("support", "Sam Support"),
    ("support", "Sia Support"),
    ("marketer", "Mia Marketer"),
    ("marketer", "Max Marketer"),
]


# --------------------------------------------------------------------------- helpers


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def out(line: str = "") -> None:
    print(line, flush=True)


def pct(values: list[float], p: float) -> float:
    """The p-quantile (0..1) of values, linearly interpolated."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def ms(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ascii_fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return folded.replace("'", "").replace(" ", "")


def migrations_key() -> str:
    """Head revision plus a hash of the migration files: a changed schema reseeds."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    digest = hashlib.sha256()
    for path in sorted((ROOT / "migrations" / "versions").glob("*.py")):
        digest.update(path.read_bytes())
    return f"{head}-{digest.hexdigest()[:8]}"


def app_config(url: str) -> dict:
    return {
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": SECRET,
        "PREFERRED_URL_SCHEME": "https",
        "WTF_CSRF_ENABLED": True,
        "REDIS_URL": None,
    }


# --------------------------------------------------------------------------- data


@dataclass
class Dataset:
    users: list[dict]
    contacts: list[dict]
    handles: list[dict]
    activity_counts: dict[int, int]
    now: datetime
    rng_state: object
    deleted: int = 0

    def activity_batches(self, batch: int) -> Iterator[list[dict]]:
        """Activities in time order (so ids rise with time, as they would in real use)."""
        from webapp.services.demo import BODIES

        rng = random.Random()
        rng.setstate(self.rng_state)
        span = 730 * 86400
        stamps: list[tuple[int, int]] = []
        for cid, count in self.activity_counts.items():
            stamps.extend((rng.randrange(3600, span), cid) for _ in range(count))
        stamps.sort(reverse=True)  # oldest first: largest "seconds ago" first
        loggers = [u["id"] for u in self.users if u["role"] in {"rep", "manager", "support"}]
        kinds = list(BODIES)
        kind_weights = [5, 3, 2, 2, 3]
        rows: list[dict] = []
        for i, (ago, cid) in enumerate(stamps, start=1):
            kind = rng.choices(kinds, kind_weights)[0]
            body = rng.choice(BODIES[kind])
            if body and rng.random() < 0.3:
                body += f" Ref {rng.randrange(10000, 99999)}."
            when = self.now - timedelta(seconds=ago)
            rows.append(
                {
                    "id": i,
                    "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "contact_id": cid,
                    "author_id": rng.choice(loggers),
                    "kind": kind,
                    "body": body,
                    "occurred_at": when,
                    "created_at": when + timedelta(seconds=rng.randrange(1, 600)),
                }
            )
            if len(rows) >= batch:
                yield rows
                rows = []
        if rows:
            yield rows


def generate(n_contacts: int, n_activities: int, seed: int = 7) -> Dataset:
    """Users of each role, varied contacts with handles, and per-contact activity counts:
    a few contacts with thousands of entries, some with hundreds, most with a handful."""
    from webapp.services import search_text
    from webapp.services.contacts import search_text_for
    from webapp.services.demo import CITIES, FIRST, LAST, STREETS, TAGS, TITLES
    from webapp.services.passwords import hash_password
    from webapp.services.search_text import sort_name_for

    # Numbers read in the region the app will be given: no app exists yet at this point.
    search_text.configure(os.environ.get("DEFAULT_PHONE_REGION"))
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    pw = hash_password(PASSWORD)
    users = []
    counters: dict[str, int] = {}
    for i, (role, name) in enumerate(USERS, start=1):
        counters[role] = counters.get(role, 0) + 1
        users.append(
            {
                "id": i,
                "email": f"{role}{counters[role]}@{USER_DOMAIN}",
                "name": name,
                "role": role,
                "password_hash": pw,
                "created_at": now - timedelta(days=800),
            }
        )
    owners = [u["id"] for u in users if u["role"] in {"rep", "manager", "admin"}]
    owner_weights = [8 if users[o - 1]["role"] == "rep" else 1 for o in owners]

    firsts = list(FIRST) + FIRST_EXTRA
    lasts = list(LAST) + LAST_EXTRA
    companies = [(f"{s} {k}", ascii_fold(f"{s}{k}").lower() + ".example") for s in COMPANY_STEMS
                 for k in COMPANY_KINDS]  # fmt: skip
    rng.shuffle(companies)
    company_weights = [1 / (rank + 1) ** 0.8 for rank in range(len(companies))]
    rare = set(rng.sample(range(1, n_contacts + 1), max(2, n_contacts // 25000)))
    used_email: dict[str, int] = {}
    contacts: list[dict] = []
    handles: list[dict] = []
    deleted = 0
    for cid in range(1, n_contacts + 1):
        first = rng.choice(firsts)
        last = RARE_LAST if cid in rare else rng.choice(lasts)
        middle = f" {rng.choice('ABCDEFGHJKLMNPRSTW')}." if rng.random() < 0.08 else ""
        name = f"{first}{middle} {last}"
        company, domain = (None, None)
        if rng.random() < 0.9:
            company, domain = rng.choices(companies, company_weights)[0]
        local = ascii_fold(f"{first}.{last}").lower()
        email = None
        if rng.random() < 0.92:
            host = domain if domain and rng.random() < 0.75 else rng.choice(FREE_MAIL)
            address = f"{local}@{host}"
            n = used_email.get(address, 0)
            used_email[address] = n + 1
            email = address if n == 0 else f"{local}{n + 1}@{host}"
        phone = _phone(rng) if rng.random() < 0.95 else None
        created = now - timedelta(days=rng.randrange(1, 1100), seconds=rng.randrange(86400))
        row = {
            "id": cid,
            "name": name,
            "sort_name": sort_name_for(name),
            "email": email,
            "phone": phone,
            "company": company,
            "title": rng.choice(TITLES) if rng.random() < 0.8 else None,
            "address": f"{rng.randrange(1, 300)} {rng.choice(STREETS)}, {rng.choice(CITIES)}"
            if rng.random() < 0.7
            else None,
            "notes": "Met at the trade show; prefers email." if rng.random() < 0.05 else None,
            "tags": ",".join(rng.sample(TAGS, rng.randrange(0, 3))) or None,
            "owner_id": rng.choices(owners, owner_weights)[0],
            "created_at": created,
            "updated_at": created + timedelta(days=rng.randrange(0, 30)),
            "deleted_at": None,
        }
        if rng.random() < 0.005:
            row["deleted_at"] = now - timedelta(days=rng.randrange(1, 60))
            deleted += 1
        row["search_text"] = search_text_for(SimpleNamespace(**row))  # type: ignore[arg-type]
        contacts.append(row)
        plain = local.replace(".", "_").replace("-", "")[:10]
        if rng.random() < 0.45:
            handles.append({"contact_id": cid, "network": "x", "handle": f"{plain}{cid}"})
        if rng.random() < 0.25:
            handle = f"{plain}{cid}@mastodon.social"
            handles.append({"contact_id": cid, "network": "mastodon", "handle": handle})
        if rng.random() < 0.25:
            handle = f"{local.replace('_', '')}{cid}.bsky.social"
            handles.append({"contact_id": cid, "network": "bluesky", "handle": handle})
    for i, h in enumerate(handles, start=1):
        h["id"] = i

    counts = _activity_counts(rng, n_contacts, n_activities)
    return Dataset(users, contacts, handles, counts, now, rng.getstate(), deleted)


def _phone(rng: random.Random) -> str:
    r = rng.random()
    d = rng.randrange
    if r < 0.45:
        return f"+44 7{d(100, 1000)} {d(0, 1000000):06d}"
    if r < 0.7:
        area = rng.choice(["20", "113", "117", "161", "141"])
        return f"+44 {area} {d(1000, 10000)} {d(0, 10000):04d}"
    if r < 0.85:
        return f"+1 ({d(200, 1000)}) {d(200, 1000)}-{d(0, 10000):04d}"
    if r < 0.95:
        return f"+353 {d(1, 100)} {d(100, 1000)} {d(0, 10000):04d}"
    return f"0{d(1000, 10000)} {d(100000, 1000000)}"


def _activity_counts(rng: random.Random, n: int, m: int) -> dict[int, int]:
    """A quarter of the activities on a few heavy contacts (~5,000 each), a third on 2%
    of contacts (~175 each), the rest spread thinly; 15% of contacts have none."""
    ids = list(range(1, n + 1))
    rng.shuffle(ids)
    n_heavy = min(max(1, round(m * 0.25 / 5000)), max(1, n // 10))
    avg_h = m * 0.25 / n_heavy
    n_med = min(max(1, round(m * 0.35 / 175)), max(1, n // 20))
    avg_m = m * 0.35 / n_med
    counts: dict[int, int] = {}
    for cid in ids[:n_heavy]:
        counts[cid] = rng.randint(int(avg_h * 0.4), int(avg_h * 1.6))
    for cid in ids[n_heavy : n_heavy + n_med]:
        counts[cid] = rng.randint(max(1, int(avg_m * 0.3)), max(1, int(avg_m * 1.7)))
    remaining = m - sum(counts.values())
    while remaining < 0:  # an unlucky draw: trim the biggest
        top = max(counts, key=counts.__getitem__)
        cut = min(-remaining, counts[top] - 1)
        counts[top] -= cut
        remaining += cut
    rest = [cid for cid in ids[n_heavy + n_med :] if rng.random() >= 0.15]
    if remaining and rest:
        weights = [rng.expovariate(1.0) for _ in rest]
        for cid in rng.choices(rest, weights=weights, k=remaining):
            counts[cid] = counts.get(cid, 0) + 1
    return counts


# --------------------------------------------------------------------------- seeding


@dataclass
class Backend:
    name: str  # "SQLite" | "PostgreSQL"
    url: str  # SQLAlchemy URL
    env_url: str  # DATABASE_URL for gunicorn
    seed: dict = field(default_factory=dict)  # seed facts: seconds, phases, cached
    version: str = ""


def seed_key(args) -> str:
    return f"c{args.contacts}-a{args.activities}-m{migrations_key()}-s{SEED_VERSION}"


def _insert_rows(conn, table, rows: list[dict], batch: int = 20000) -> None:
    for i in range(0, len(rows), batch):
        conn.execute(table.insert(), rows[i : i + batch])


def seed_sqlite(args) -> Backend:
    """Seed (or reuse) a cached SQLite file built by the real migrations."""
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Activity, Contact, ContactHandle, User

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    key = seed_key(args)
    path = CACHE_DIR / f"contacts-{key}.sqlite3"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists() and not args.fresh:
        meta = json.loads(meta_path.read_text())
        meta["cached"] = True
        log(f"SQLite: reusing cached database {path}")
        return Backend(
            "SQLite", f"sqlite:///{path}", f"sqlite:///{path}", meta, sqlite3.sqlite_version
        )

    tmp = path.with_name(path.name + ".tmp")
    for suffix in ("", "-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    url = f"sqlite:///{tmp}"
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    log(f"SQLite: generating {args.contacts:,} contacts / {args.activities:,} activities")
    data = generate(args.contacts, args.activities)
    phases["generate"] = time.perf_counter() - t0
    app = create_app(app_config(url))
    with app.app_context():
        t = time.perf_counter()
        upgrade()
        phases["migrate"] = time.perf_counter() - t
        with db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
            conn.exec_driver_sql("PRAGMA cache_size=-1000000")
            t = time.perf_counter()
            _insert_rows(conn, User.__table__, data.users)
            # Through the real FTS triggers, as the app's own inserts go.
            _insert_rows(conn, Contact.__table__, data.contacts)
            _insert_rows(conn, ContactHandle.__table__, data.handles)
            conn.commit()
            phases["contacts"] = time.perf_counter() - t
            log(f"SQLite: contacts in {phases['contacts']:.1f}s; inserting activities")
            t = time.perf_counter()
            for rows in data.activity_batches(50000):
                conn.execute(Activity.__table__.insert(), rows)
                conn.commit()
            phases["activities"] = time.perf_counter() - t
            t = time.perf_counter()
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            phases["analyze"] = time.perf_counter() - t
        db.engine.dispose()
    total = time.perf_counter() - t0
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    os.replace(tmp, path)
    meta = {
        "seconds": round(total, 1),
        "phases": {k: round(v, 1) for k, v in phases.items()},
        "seeded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "deleted": data.deleted,
        "handles": len(data.handles),
        "how": "Core executemany (20k/50k-row batches) through the FTS5 triggers, then ANALYZE",
        "bytes": path.stat().st_size,
    }
    meta_path.write_text(json.dumps(meta))
    meta["cached"] = False
    log(f"SQLite: seeded in {total:.1f}s -> {path}")
    return Backend("SQLite", f"sqlite:///{path}", f"sqlite:///{path}", meta, sqlite3.sqlite_version)


def seed_postgres(args, raw_url: str) -> Backend:
    """Create the bench database if missing, migrate it and COPY the data in, unless it
    already holds this dataset (remembered in COMMENT ON DATABASE)."""
    import psycopg
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.config import database_url
    from webapp.extensions import db

    url = database_url(raw_url, "")
    parsed = sa.engine.make_url(url)
    name = parsed.database
    if not name or name in {"test", "postgres", "template0", "template1"}:
        sys.exit(f"refusing to use PostgreSQL database {name!r}: give a dedicated one (crm_bench)")
    libpq = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            log(f"PostgreSQL: creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')
    key = seed_key(args)
    with psycopg.connect(libpq, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        comment = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE datname = current_database()"
        ).fetchone()[0]
        intact = False
        with contextlib.suppress(psycopg.Error):
            # Another benchmark may have emptied or replaced the schema since: check.
            intact = conn.execute(
                "SELECT (SELECT count(*) FROM contacts) = %s"
                " AND (SELECT max(id) FROM activities) = %s"
                " AND (SELECT version_num FROM alembic_version) = %s",
                [args.contacts, args.activities, migrations_key().split("-")[0]],
            ).fetchone()[0]
    try:
        meta = json.loads(comment or "{}")
    except ValueError:
        meta = {}
    if meta.get("key") == key and intact and not args.fresh:
        meta["cached"] = True
        log(f"PostgreSQL: reusing seeded database {name}")
        return Backend("PostgreSQL", url, raw_url, meta, version)

    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    log(f"PostgreSQL: generating {args.contacts:,} contacts / {args.activities:,} activities")
    data = generate(args.contacts, args.activities)
    phases["generate"] = time.perf_counter() - t0
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    app = create_app(app_config(url))
    with app.app_context():
        t = time.perf_counter()
        upgrade()
        db.engine.dispose()
        phases["migrate"] = time.perf_counter() - t
    cols = {
        "users": ["id", "email", "name", "role", "password_hash", "created_at"],
        "contacts": list(data.contacts[0]),
        "contact_handles": ["id", "contact_id", "network", "handle"],
    }
    activity_cols = [
        "id",
        "uuid",
        "contact_id",
        "author_id",
        "kind",
        "body",
        "occurred_at",
        "created_at",
    ]
    with psycopg.connect(libpq) as conn:
        t = time.perf_counter()
        sources = {"users": data.users, "contacts": data.contacts, "contact_handles": data.handles}
        for table_name, rows in sources.items():
            names = cols[table_name]
            with conn.cursor().copy(f"COPY {table_name} ({', '.join(names)}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row([row.get(c) for c in names])
        conn.commit()
        phases["contacts"] = time.perf_counter() - t
        log(f"PostgreSQL: contacts in {phases['contacts']:.1f}s; copying activities")
        t = time.perf_counter()
        with conn.cursor().copy(f"COPY activities ({', '.join(activity_cols)}) FROM STDIN") as cp:
            for rows in data.activity_batches(50000):
                for row in rows:
                    cp.write_row([row[c] for c in activity_cols])
        conn.commit()
        phases["activities"] = time.perf_counter() - t
        for table_name in ("users", "contacts", "contact_handles", "activities"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table_name}', 'id'),"
                f" (SELECT max(id) FROM {table_name}))"
            )
        conn.commit()
    with psycopg.connect(libpq, autocommit=True) as conn:
        t = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        phases["analyze"] = time.perf_counter() - t
        total = time.perf_counter() - t0
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        meta = {
            "key": key,
            "seconds": round(total, 1),
            "phases": {k: round(v, 1) for k, v in phases.items()},
            "seeded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "deleted": data.deleted,
            "handles": len(data.handles),
            "how": "COPY into the migrated schema (indexes in place), then VACUUM (ANALYZE)",
            "bytes": size,
        }
        conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{json.dumps(meta)}'")
    meta["cached"] = False
    log(f"PostgreSQL: seeded in {total:.1f}s")
    return Backend("PostgreSQL", url, raw_url, meta, version)


# --------------------------------------------------------------------------- noise


_CLK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(v) - v[3] - v[4]) / _CLK  # minus idle and iowait


def _our_cpu(db_name: str | None) -> float:
    """CPU seconds of this process, its children (live or reaped: gunicorn, its workers,
    wrk) and the PostgreSQL backends serving the benchmark's database."""
    me = os.getpid()
    procs: dict[int, tuple[int, float, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            rest = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        procs[int(entry.name)] = (int(rest[1]), (int(rest[11]) + int(rest[12])) / _CLK, cmd)

    def descends(pid: int) -> bool:
        for _ in range(50):
            if pid == me:
                return True
            if pid not in procs or pid <= 1:
                return False
            pid = procs[pid][0]
        return False

    marker = f" {db_name} " if db_name else None
    total = 0.0
    for pid, (_, cpu, cmd) in procs.items():
        if pid != me and (descends(pid) or (marker and marker in cmd)):
            total += cpu
    import resource

    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class CpuWatch:
    """How much of the machine other work used while a measurement ran."""

    def __init__(self, db_name: str | None = None):
        self.db_name = db_name
        self.others = float("nan")

    def __enter__(self) -> CpuWatch:
        self.t0 = time.monotonic()
        self.busy0 = _machine_busy()
        self.ours0 = _our_cpu(self.db_name)
        return self

    def __exit__(self, *exc) -> None:
        wall = time.monotonic() - self.t0
        busy = _machine_busy() - self.busy0
        ours = _our_cpu(self.db_name) - self.ours0
        self.others = max(0.0, busy - ours) / (wall * (os.cpu_count() or 1))

    def __str__(self) -> str:
        return "n/a" if self.others != self.others else f"{self.others:.0%}"


# --------------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    label: str
    path: str
    htmx: bool = False
    expect: str = ""
    search: str | None = None  # the query, for search scenarios
    note: str = ""


@dataclass
class Facts:
    heavy_id: int
    heavy_count: int
    few_id: int
    few_count: int
    deep_before: int
    deep_rank: int
    scroll_after: int
    scroll_rank: int
    phone_query: str
    live: int
    total_contacts: int
    total_activities: int
    median_per_contact: float


def gather_facts(session) -> Facts:
    from webapp.models import Activity, Contact

    per = (
        select(Activity.contact_id, func.count().label("n"))
        .group_by(Activity.contact_id)
        .subquery()
    )
    heavy_id, heavy_count = session.execute(
        select(per.c.contact_id, per.c.n).order_by(per.c.n.desc(), per.c.contact_id).limit(1)
    ).one()
    few = session.execute(
        select(per.c.contact_id, per.c.n)
        .join(Contact, Contact.id == per.c.contact_id)
        .where(per.c.n <= 3, Contact.deleted_at.is_(None))
        .order_by(per.c.n.desc(), per.c.contact_id)
        .limit(1)
    ).one()
    counts = sorted(session.scalars(select(per.c.n)).all())
    total_contacts = session.scalar(select(func.count()).select_from(Contact))
    live = session.scalar(
        select(func.count()).select_from(Contact).where(Contact.deleted_at.is_(None))
    )
    all_counts = counts + [0] * (total_contacts - len(counts))
    deep_rank = int(heavy_count * 0.9)
    deep_before = session.scalar(
        select(Activity.id)
        .where(Activity.contact_id == heavy_id)
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .offset(deep_rank)
        .limit(1)
    )
    scroll_rank = live // 2
    scroll_after = session.scalar(
        select(Contact.id)
        .where(Contact.deleted_at.is_(None))
        .order_by(Contact.sort_name, Contact.id)
        .offset(scroll_rank)
        .limit(1)
    )
    phone = session.scalar(
        select(Contact.phone)
        .where(Contact.phone.like("+44 7%"), Contact.deleted_at.is_(None))
        .order_by(Contact.id)
        .offset(total_contacts // 3 // 2)
        .limit(1)
    )
    d = re.sub(r"\D", "", phone or "1234567")
    phone_query = f"{d[-6:-3]} {d[-3:]}"  # "I remember the last six digits"
    return Facts(
        heavy_id,
        heavy_count,
        few[0],
        few[1],
        deep_before,
        deep_rank,
        scroll_after,
        scroll_rank,
        phone_query,
        live,
        total_contacts,
        sum(counts),
        statistics.median(all_counts),
    )


def scenarios(f: Facts) -> list[Scenario]:
    from urllib.parse import urlencode

    def q(term: str) -> str:
        return "/contacts?" + urlencode({"q": term})

    searches = [
        ("search: common first name", "olivia"),
        ("search: rare surname", RARE_LAST.lower()),
        ("search: 2-letter prefix", "ma"),
        ("search: phone digits", f.phone_query),
        ("search: company substring", "logist"),
        ("search: two words", "olivia smith"),
        ("search: 3 letters, as typed", "mar"),
        # Every seeded email ends in .example: the stand-in for ".com" or "gmail".
        ("search: term in ~90% of rows", "example"),
    ]
    result = [
        Scenario("list: first page", "/contacts", expect='id="contact-list"'),
        Scenario(
            f"list: scroll page (?after, row {f.scroll_rank:,})",
            f"/contacts?after={f.scroll_after}",
            htmx=True,
            expect='class="row"',
        ),
    ]
    for label, term in searches:
        result.append(
            Scenario(
                f"{label} “{term}”",
                q(term),
                htmx=True,
                expect='id="contact-list"',
                search=term,
            )
        )
    result += [
        Scenario(
            f"contact page: {f.heavy_count:,} entries",
            f"/contacts/{f.heavy_id}",
            expect='id="timeline"',
        ),
        Scenario(
            f"contact page: {f.few_count} entries",
            f"/contacts/{f.few_id}",
            expect='id="timeline"',
        ),
        Scenario(
            f"timeline: older page (?before, entry {f.deep_rank:,} of {f.heavy_count:,})",
            f"/contacts/{f.heavy_id}?before={f.deep_before}",
            htmx=True,
            expect='class="entry',
        ),
    ]
    return result


# --------------------------------------------------------------------------- in-process timing


class SQLRecorder:
    """Records the statements the app sends while on."""

    def __init__(self, engine):
        self.on = False
        self.statements: list[tuple[str, object]] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        if self.on:
            self.statements.append((statement, parameters))

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[tuple[str, object]]]:
        self.statements = []
        self.on = True
        try:
            yield self.statements
        finally:
            self.on = False


def sign_in(app):
    """A test client signed in as a rep through the real form, CSRF token and all."""
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = UA
    page = client.get("/login", base_url=BASE_URL)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert token, "no CSRF token on /login"
    r = client.post(
        "/login",
        data={"email": f"rep1@{USER_DOMAIN}", "password": PASSWORD, "csrf_token": token[1]},
        headers={"Referer": f"{BASE_URL}/login"},  # over HTTPS, Flask-WTF checks the referrer
        base_url=BASE_URL,
    )
    assert r.status_code == 303, f"sign-in failed: {r.status_code}"
    return client


def timed_get(client, s: Scenario) -> tuple[float, object]:
    headers = {**HTMX} if s.htmx else {}
    t = time.perf_counter()
    r = client.get(s.path, headers=headers, base_url=BASE_URL)
    r.get_data()
    return (time.perf_counter() - t) * 1000, r


@dataclass
class Measured:
    scenario: Scenario
    p50: float
    p95: float
    queries: int
    kbytes: float
    matches: int | None = None
    statements: list[tuple[str, object]] = field(default_factory=list)


def measure_pages(app, client, recorder, items: list[Scenario], n: int, warmup: int):
    results = []
    for s in items:
        for _ in range(warmup):
            _, r = timed_get(client, s)
        assert r.status_code == 200, f"{s.path}: HTTP {r.status_code}"
        body = r.get_data(as_text=True)
        assert s.expect in body, f"{s.path}: {s.expect!r} not in the response"
        with recorder.capture() as stmts:
            timed_get(client, s)
        times = [timed_get(client, s)[0] for _ in range(n)]
        results.append(
            Measured(
                s, pct(times, 0.5), pct(times, 0.95), len(stmts), len(body) / 1024, None, stmts
            )
        )
        log(f"  {s.label}: p50 {results[-1].p50:.1f} ms")
    return results


def count_matches(session, query: str) -> int:
    """How many live contacts the search finds (the service's own query, unlimited)."""
    from webapp.models import User
    from webapp.services.contact_search import list_contacts

    user = session.scalar(select(User).where(User.email == f"rep1@{USER_DOMAIN}"))
    return len(list_contacts(session, user, query, limit=10_000_000).contacts)


# --------------------------------------------------------------------------- raw SQL and plans


def time_raw(engine, statement: str, params, n: int, budget: float = 4.0) -> float:
    """p50 ms of the statement run on the DB-API cursor (execute + fetchall)."""
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        cur = raw.cursor()
        for _ in range(3):
            cur.execute(statement, params)
            cur.fetchall()
        times = []
        deadline = time.perf_counter() + budget
        while len(times) < n and time.perf_counter() < deadline:
            t = time.perf_counter()
            cur.execute(statement, params)
            cur.fetchall()
            times.append((time.perf_counter() - t) * 1000)
        cur.close()
    return pct(times, 0.5)


def plan(engine, dialect: str, statement: str, params) -> tuple[list[str], list[str]]:
    """(plan lines, warnings) — a full scan of a real table is a warning."""
    warnings: list[str] = []
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        cur = raw.cursor()
        if dialect == "sqlite":
            cur.execute("EXPLAIN QUERY PLAN " + statement, params)
            rows = cur.fetchall()
            depth = {0: -1}
            lines = []
            for node, parent, _, detail in rows:
                depth[node] = depth.get(parent, -1) + 1
                lines.append("  " * depth[node] + detail)
                m = re.match(r"SCAN (\w+)(.*)", detail)
                if m and m[1] in {"contacts", "activities", "contact_handles", "users"}:
                    if "USING" not in m[2]:
                        warnings.append(f"FULL TABLE SCAN: {detail}")
                    elif m[1] in {"contacts", "activities"}:
                        warnings.append(f"walks a whole index in order (stops at LIMIT): {detail}")
        else:
            cur.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + statement, params)
            lines = [r[0] for r in cur.fetchall()]
            for line in lines:
                if re.search(r"Seq Scan on (contacts|activities)\b", line):
                    warnings.append(f"FULL TABLE SCAN: {line.strip()}")
                m = re.search(r"Rows Removed by (Filter|Index Recheck): (\d+)", line)
                if m and int(m[2]) > 5000:
                    warnings.append(f"reads and discards {int(m[2]):,} rows: {line.strip()}")
        cur.close()
    return lines, warnings


def statement_kind(statement: str) -> str:
    """A short name for one of the app's statements."""
    flat = " ".join(statement.split())
    if "MATCH" in flat and "count(" in flat:
        return "FTS probe"
    if flat.startswith("SELECT contacts.sort_name, contacts.id FROM"):
        return "walk bound"
    if "instr(" in flat or "strpos(" in flat:
        return "bounded walk"
    if flat.startswith("WITH hits"):
        return "trigram index, fenced"
    if "contacts_fts MATCH" in flat or "search_text LIKE" in flat:
        return "search via index"
    if "FROM activities" in flat:
        return "timeline"
    if "FROM contacts" in flat and "ORDER BY" in flat:
        return "list"
    if "FROM users" in flat:
        return "session user"
    if "FROM contact_handles" in flat:
        return "handles"
    if "FROM contacts" in flat:
        return "contact by id"
    return flat.split()[0]


# --------------------------------------------------------------------------- throughput


@contextlib.contextmanager
def gunicorn(spec: str, env: dict, extra: list[str] | None = None) -> Iterator[int]:
    """gunicorn with 2 sync workers on 127.0.0.1:<free port>; stopped by its PID."""
    port = free_port()
    cmd = [str(VENV_BIN / "gunicorn"), "--workers", "2", "--worker-class", "sync",
           "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--timeout", "60",
           "--graceful-timeout", "5", *(extra or []), spec]  # fmt: skip
    with tempfile.TemporaryFile(prefix="bench-gunicorn-") as logfile:
        proc = subprocess.Popen(cmd, env=env, cwd=str(ROOT), stdout=logfile, stderr=logfile)
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    logfile.seek(0)
                    tail = logfile.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"gunicorn exited: {tail}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("gunicorn did not start within 30 s") from None
                    time.sleep(0.2)
            yield port
        finally:
            if proc.poll() is None:
                proc.terminate()  # SIGTERM to the master (our own child): graceful stop
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def http_get(port: int, path: str, headers: dict) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"User-Agent": UA, **headers})
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


@dataclass
class Load:
    label: str
    rps: float
    p50: float
    p99: float
    requests: int
    errors: str
    tool: str
    others: str = "n/a"


def _wrk_ms(text: str, label: str) -> float:
    m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    if not m:
        return float("nan")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m[2]]
    return float(m[1]) * scale


def load(
    port: int, path: str, headers: dict, duration: float, label: str, db_name: str | None
) -> Load:
    """Drive one URL with 16 connections for duration seconds (after a 2 s warm-up)."""
    url = f"http://127.0.0.1:{port}{path}"
    hdrs = {"User-Agent": UA, **headers}
    if shutil.which("wrk"):
        base = ["wrk", "-t2", "-c16", "--latency", "--timeout", "10s"]
        for k, v in hdrs.items():
            base += ["-H", f"{k}: {v}"]
        subprocess.run([*base, "-d2s", url], capture_output=True, timeout=60, check=False)
        with CpuWatch(db_name) as watch:
            res = subprocess.run(
                [*base, f"-d{duration:g}s", url],
                capture_output=True,
                text=True,
                timeout=duration + 60,
                check=True,
            )
        text = res.stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])
        total = int(re.search(r"(\d+) requests in", text)[1])
        errors = []
        if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
            errors.append(f"{m[1]} non-2xx")
        if m := re.search(r"Socket errors: (.*)", text):
            errors.append(f"socket errors: {m[1].strip()}")
        return Load(
            label,
            rps,
            _wrk_ms(text, "50%"),
            _wrk_ms(text, "99%"),
            total,
            "; ".join(errors) or "0",
            "wrk -t2 -c16",
            str(watch),
        )
    return _python_load(port, path, hdrs, duration, label, db_name)


def _python_load(
    port: int, path: str, headers: dict, duration: float, label: str, db_name: str | None
) -> Load:
    """A bounded threaded client, for machines without wrk (it eats more CPU than wrk)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker(deadline: float, record: bool) -> None:
        while time.monotonic() < deadline:
            t = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", path, headers=headers)
                r = conn.getresponse()
                r.read()
                conn.close()
                ok = r.status < 400
            except OSError:
                ok = False
            elapsed = (time.perf_counter() - t) * 1000
            if record:
                with lock:
                    latencies.append(elapsed)
                    errors[0] += 0 if ok else 1

    for record, secs in ((False, 2.0), (True, duration)):
        deadline = time.monotonic() + secs
        threads = [threading.Thread(target=worker, args=(deadline, record)) for _ in range(16)]
        start = time.monotonic()
        with CpuWatch(db_name) as watch:
            for th in threads:
                th.start()
            for th in threads:
                th.join(secs + 15)
        elapsed = time.monotonic() - start
    return Load(
        label,
        len(latencies) / elapsed,
        pct(latencies, 0.5),
        pct(latencies, 0.99),
        len(latencies),
        str(errors[0]),
        "python threads x16",
        str(watch),
    )


def throughput(backend: Backend, cookie: str, search: str, duration: float) -> list[Load]:
    from urllib.parse import urlencode

    instance = tempfile.mkdtemp(prefix="bench-instance-")
    env = {
        **os.environ,
        "DATABASE_URL": backend.env_url,
        "SECRET_KEY": SECRET,
        "INSTANCE_PATH": instance,
        "BENCH_BASELINE_DB": backend.url,
    }
    signed = {"Cookie": f"crm_session={cookie}"}
    search_path = "/contacts?" + urlencode({"q": search})
    db_name = sa.engine.make_url(backend.url).database if backend.name == "PostgreSQL" else None
    results = []
    try:
        with gunicorn("webapp:create_app()", env) as port:
            for path in ("/contacts", search_path):
                status, body = http_get(port, path, signed)
                if status != 200 or 'id="contact-list"' not in body:
                    raise RuntimeError(
                        f"{path} via gunicorn: HTTP {status}, not the signed-in list"
                    )
            log("  throughput: contact list")
            results.append(
                load(port, "/contacts", signed, duration, "contact list (signed in)", db_name)
            )
            log("  throughput: search")
            results.append(
                load(port, search_path, signed, duration, f"search “{search}” (signed in)", db_name)
            )
        with gunicorn(
            "bench_contacts:baseline_app()", env, ["--pythonpath", str(BENCH_DIR)]
        ) as port:
            status, body = http_get(port, "/rows", {})
            if status != 200 or body.count("<li>") != 50:
                raise RuntimeError(f"baseline /rows: HTTP {status}")
            log("  throughput: baseline")
            results.append(
                load(port, "/rows", {}, duration, "baseline: 50 rows, tiny template", db_name)
            )
            results.append(load(port, "/const", {}, duration, "baseline: constant string", db_name))
    finally:
        shutil.rmtree(instance, ignore_errors=True)
    return results


class _Base(DeclarativeBase):
    pass


class BaselineContact(_Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    sort_name: Mapped[str]
    company: Mapped[str | None]
    phone: Mapped[str | None]
    deleted_at: Mapped[str | None]


BASELINE_TEMPLATE = """<!doctype html><title>Contacts</title><ul>
{% for c in rows %}<li>{{ c.name }} · {{ c.company or "" }} · {{ c.phone or "" }}</li>
{% endfor %}</ul>"""


def baseline_app() -> Flask:
    """The minimal comparison: Flask + Flask-SQLAlchemy, 50 rows, a trivial template."""
    app = Flask("bench_baseline")
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["BENCH_BASELINE_DB"]
    bdb = SQLAlchemy()
    bdb.init_app(app)

    @app.get("/rows")
    def rows():
        stmt = (
            select(BaselineContact)
            .where(BaselineContact.deleted_at.is_(None))
            .order_by(BaselineContact.sort_name, BaselineContact.id)
            .limit(50)
        )
        return render_template_string(BASELINE_TEMPLATE, rows=bdb.session.scalars(stmt).all())

    @app.get("/const")
    def const():
        return "ok"

    return app


# --------------------------------------------------------------------------- the run


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
    plans: list[str] = []
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
    cookie = client.get_cookie("crm_session", domain="localhost")
    assert cookie is not None, "no session cookie after sign-in"
    log(f"{backend.name}: page timings ({args.requests} requests each)")
    db_name = sa.engine.make_url(backend.url).database if backend.name == "PostgreSQL" else None
    with CpuWatch(db_name) as watch:
        results = measure_pages(app, client, recorder, scenarios(facts), args.requests, args.warmup)
    noise.append(watch.others)

    with app.app_context():
        for m in results:
            if m.scenario.search is not None:
                m.matches = count_matches(db.session, m.scenario.search)
        db.session.remove()

        out(
            f"### Server time through the app (Flask test client, signed-in rep, CSRF on;"
            f" {args.warmup} warm-up then {args.requests} requests each; other processes"
            f" used {watch} of the machine meanwhile)"
        )
        out()
        rows = []
        for m in results:
            kind = "htmx fragment" if m.scenario.htmx else "full page"
            matches = "" if m.matches is None else f"{m.matches:,}"
            rows.append(
                [
                    m.scenario.label,
                    kind,
                    matches,
                    ms(m.p50),
                    ms(m.p95),
                    m.queries,
                    f"{m.kbytes:.1f}",
                ]
            )
        out(
            table(
                ["request", "response", "matches", "p50 ms", "p95 ms", "SQL/req", "KB"],
                rows,
                right={2, 3, 4, 5, 6},
            )
        )
        out()

        log(f"{backend.name}: raw SQL and plans")
        dialect = db.engine.dialect.name
        sql_rows = []
        seen_plans: dict[str, str] = {}
        for m in results:
            timings = [
                time_raw(db.engine, st, params, args.requests) for st, params in m.statements
            ]
            notes = []
            for st, params in m.statements:
                if "ORDER BY" not in st and "MATCH" not in st:
                    continue  # the session's user, a row by primary key
                lines, warns = plan(db.engine, dialect, st, params)
                flagged = [w for w in warns if w.startswith(("FULL", "reads"))]
                if flagged:
                    notes.append("!! " + flagged[0].split(":")[0])
                elif any(w.startswith("walks") for w in warns):
                    notes.append("ordered index walk")
                for w in flagged:
                    warnings.append(f"{backend.name} · {m.scenario.label}: {w}")
                title = f"{backend.name} · {m.scenario.label} · {statement_kind(st)}"
                key = "\n".join(lines)
                if key in seen_plans:
                    plans.append(f"{title}: same plan as {seen_plans[key]}")
                    continue
                seen_plans[key] = f"{m.scenario.label} · {statement_kind(st)}"
                plans += [title, "```", *lines, "```"]
            total = sum(timings)
            slow = max(range(len(timings)), key=timings.__getitem__)
            sql_rows.append(
                [
                    m.scenario.label,
                    len(timings),
                    ms(total),
                    f"{ms(timings[slow])} ({statement_kind(m.statements[slow][0])})",
                    ms(m.p50),
                    f"{total / m.p50:.0%}",
                    ", ".join(dict.fromkeys(notes)) or "index",
                ]
            )
        out(
            "### The same requests' SQL alone: every statement re-run on the DB-API cursor,"
            " p50 each"
        )
        out()
        out(
            table(
                [
                    "request",
                    "statements",
                    "SQL p50 ms",
                    "slowest statement ms",
                    "page p50 ms",
                    "SQL share",
                    "plan",
                ],
                sql_rows,
                right={1, 2, 4, 5},
            )
        )
        out()
        db.engine.dispose()

    if not args.no_throughput:
        log(f"{backend.name}: throughput ({args.duration:g}s per target)")
        loads = throughput(backend, cookie.value, "olivia", args.duration)
        base = next(x for x in loads if x.label.startswith("baseline: 50"))
        out(
            f"### Throughput: gunicorn 2 sync workers on 127.0.0.1, {loads[0].tool},"
            f" {args.duration:g} s each after a 2 s warm-up; load generator on the same 2 cores"
        )
        out()
        rows = [
            [
                x.label,
                f"{x.rps:,.0f}",
                ms(x.p50),
                ms(x.p99),
                f"{x.requests:,}",
                x.errors,
                f"{x.rps / base.rps:.2f}",
                x.others,
            ]
            for x in loads
        ]
        for x in loads:
            with contextlib.suppress(ValueError):
                noise.append(float(x.others.rstrip("%")) / 100)
        out(
            table(
                [
                    "target",
                    "req/s",
                    "p50 ms",
                    "p99 ms",
                    "requests",
                    "errors",
                    "vs baseline rows",
                    "others' CPU",
                ],
                rows,
                right={1, 2, 3, 4, 6, 7},
            )
        )
        out()
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
