"""Seeding the contacts benchmark's database: varied users, contacts, handles and
activities generated from a fixed seed, inserted into a SQLite file (cached) or a
PostgreSQL database of the benchmark's own (remembered in its comment) built by the real
migrations."""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import sqlalchemy as sa

from contacts.common import (
    CACHE_DIR,
    PASSWORD,
    USER_DOMAIN,
    app_config,
    ascii_fold,
    log,
    migrations_key,
)

SEED_VERSION = 2  # bump when the generated data changes, so cached databases are rebuilt


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
