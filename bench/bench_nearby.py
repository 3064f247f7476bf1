"""Nearby benchmark: the server time of /nearby at 100k contacts with coordinates.

Seeds a database created by the real migrations (SQLite cached under
~/.cache/fieldcrm-bench/; PostgreSQL when --postgres or BENCH_DATABASE_URL names a
database of this benchmark's own), then measures through the real app (Flask test
client, a rep signed in through the /login form) p50/p95 over --requests requests after
a warm-up, at three points:

- a dense city centre (Leeds: a third of all contacts within a few km),
- a sparse rural point (the Scottish Highlands: contacts spread thinly over Britain),
- the middle of the ocean (the North Atlantic: nothing within the widest radius),

each for the rep's own contacts (the default) and for all contacts. The baseline in the
same run is the query Nearby replaces: every located contact read and measured in Python.
The report (markdown tables) goes to stdout, progress to stderr.

    .venv/bin/python bench/bench_nearby.py
    .venv/bin/python bench/bench_nearby.py --postgres postgresql://postgres@127.0.0.1:5432/crm_bench_nearby
    .venv/bin/python bench/bench_nearby.py --contacts 20000 --requests 50
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import seeded
import sqlalchemy as sa
from report import table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE_DIR = Path(os.environ.get("BENCH_CACHE_DIR") or Path.home() / ".cache" / "fieldcrm-bench")
SEED_VERSION = 1  # bump when the generated data changes, so cached databases are rebuilt
SECRET = "fieldcrm-bench-secret"  # noqa: S105 - a throwaway key for the benchmark's sessions
PASSWORD = "bench-password-123"  # noqa: S105 - the seeded users' password
REPS = 20
START_LOAD = ""
BASE_URL = "https://localhost"
CITY = (53.7997, -1.5492)
POINTS = {
    "dense city centre": CITY,
    "sparse rural point": (57.30, -4.90),
    "middle of the ocean": (35.0, -40.0),
}
# Other towns of the dataset, so the world is not one city: a contact's spread around each.
TOWNS = [
    (51.5074, -0.1278),
    (52.4862, -1.8904),
    (55.9533, -3.1883),
    (53.4808, -2.2426),
    (48.8566, 2.3522),
    (52.52, 13.405),
    (40.4168, -3.7038),
    (40.7128, -74.006),
    (-33.8688, 151.2093),
    (-17.7134, 178.065),  # Fiji, astride the antimeridian
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]


def app_config(url: str) -> dict:
    return {
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": SECRET,
        "PREFERRED_URL_SCHEME": "https",
        "WTF_CSRF_ENABLED": True,
        "REDIS_URL": None,
        "ARGON2_PROFILE": "CHEAPEST",
    }


def _around(rng: random.Random, centre: tuple[float, float], km: float) -> tuple[float, float]:
    distance, bearing = abs(rng.gauss(0, km)), rng.uniform(0, 2 * math.pi)
    lat = centre[0] + distance * math.cos(bearing) / 111.2
    lon = centre[1] + distance * math.sin(bearing) / (111.2 * math.cos(math.radians(centre[0])))
    lon = (lon + 180.0) % 360.0 - 180.0
    return round(max(-90.0, min(90.0, lat)), 6), round(lon, 6)


def generate(n: int, owners: list[int], seed: int = 11) -> list[dict]:
    """n contacts: a third around CITY, a third thinly over Britain, a third around TOWNS;
    one in twenty without coordinates."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.05:
            lat, lon = None, None
        elif roll < 0.38:
            lat, lon = _around(rng, CITY, 3.0)
        elif roll < 0.70:
            lat, lon = round(rng.uniform(50.0, 58.6), 6), round(rng.uniform(-6.0, 1.7), 6)
        else:
            lat, lon = _around(rng, rng.choice(TOWNS), 15.0)
        name = f"Contact {i:06d}"
        rows.append(
            {
                "name": name,
                "sort_name": name.lower(),
                "search_text": name.lower(),
                "phone": f"+44 113 496 {i % 10000:04d}",
                "company": f"Company {i % 997}",
                "owner_id": owners[i % len(owners)],
                "latitude": lat,
                "longitude": lon,
                "located_at": now if lat is not None else None,
                "created_at": now - timedelta(days=i % 400),
                "updated_at": now,
            }
        )
    return rows


def _seed(url: str, n: int) -> None:
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Contact
    from webapp.services import users

    app = create_app(app_config(url))
    with app.app_context():
        upgrade()
        owners = []
        for i in range(1, REPS + 1):
            user = users.create_user(
                db.session, f"rep{i}@bench.fieldcrm.test", f"Rep {i}", "rep", PASSWORD
            )
            owners.append(user.id)
        db.session.commit()
        rows = generate(n, owners)
        t = time.perf_counter()
        with db.engine.begin() as conn:
            for i in range(0, len(rows), 10_000):
                conn.execute(Contact.__table__.insert(), rows[i : i + 10_000])
        log(f"  {n:,} contacts inserted in {time.perf_counter() - t:.1f} s")
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "ANALYZE" if db.engine.dialect.name == "sqlite" else "VACUUM ANALYZE"
            )
        db.engine.dispose()


def sqlite_url(args) -> str:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = (
        CACHE_DIR / f"nearby-c{args.contacts}-s{SEED_VERSION}-{seeded.newest_migration()}.sqlite3"
    )
    if path.exists() and not args.fresh:
        log(f"SQLite: reusing {path}")
        return f"sqlite:///{path}"
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    log(f"SQLite: seeding {args.contacts:,} contacts")
    _seed(f"sqlite:///{tmp}", args.contacts)
    os.replace(tmp, path)
    return f"sqlite:///{path}"


def postgres_url(args, raw: str) -> str:
    def seed(url: str) -> None:
        log(f"PostgreSQL: seeding {args.contacts:,} contacts")
        _seed(url, args.contacts)

    key = f"nearby-c{args.contacts}-s{SEED_VERSION}-{seeded.newest_migration()}"
    return seeded.postgres(
        raw, key, f"SELECT count(*) = {args.contacts} FROM contacts", seed, args.fresh, log
    )


def sign_in(app):
    client = app.test_client()
    page = client.get("/login", base_url=BASE_URL)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    r = client.post(
        "/login",
        data={"email": "rep1@bench.fieldcrm.test", "password": PASSWORD, "csrf_token": token[1]},
        headers={"Referer": f"{BASE_URL}/login"},
        base_url=BASE_URL,
    )
    assert r.status_code == 303, f"sign-in failed: {r.status_code}"
    return client


def measure(backend: str, url: str, args) -> list[list]:
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Contact, User
    from webapp.services import nearby

    app = create_app(app_config(url))
    client = sign_in(app)
    statements = []

    with app.app_context():
        sa.event.listen(
            db.engine, "before_cursor_execute", lambda *a: statements.append(1), retval=False
        )
    rows = []
    for label, (lat, lon) in POINTS.items():
        for scope in ("own", "all"):
            path = f"/nearby?latitude={lat}&longitude={lon}" + ("&all=1" if scope == "all" else "")
            for _ in range(args.warmup):
                r = client.get(path, base_url=BASE_URL)
            assert r.status_code == 200, f"{path}: HTTP {r.status_code}"
            found = r.get_data(as_text=True).count('class="row nearby-row"')
            statements.clear()
            client.get(path, base_url=BASE_URL)
            queries = len(statements)
            times = []
            for _ in range(args.requests):
                t = time.perf_counter()
                client.get(path, base_url=BASE_URL).get_data()
                times.append((time.perf_counter() - t) * 1000)
            service = []
            with app.app_context():
                user = db.session.scalar(sa.select(User).where(User.email.like("rep1@%")))
                for _ in range(args.requests):
                    t = time.perf_counter()
                    page = nearby.nearest(db.session, user, nearby.Point(lat, lon), scope == "own")
                    service.append((time.perf_counter() - t) * 1000)
                    db.session.expunge_all()
            p95 = pct(times, 0.95)
            rows.append(
                [
                    backend,
                    label,
                    scope,
                    found,
                    f"{page.radius_km:g}",
                    queries,
                    f"{statistics.median(service):.1f}",
                    f"{pct(service, 0.95):.1f}",
                    f"{statistics.median(times):.1f}",
                    f"{p95:.1f}",
                    "yes" if p95 <= 20 else "NO",
                ]
            )
            log(f"  {backend} {label} ({scope}): p95 {p95:.1f} ms, {found} found")
    # The baseline: every located contact read, measured and sorted in Python.
    with app.app_context():
        times = []
        for _ in range(max(3, args.requests // 20)):
            t = time.perf_counter()
            located = db.session.execute(
                sa.select(Contact.id, Contact.latitude, Contact.longitude).where(
                    Contact.latitude.is_not(None), Contact.deleted_at.is_(None)
                )
            ).all()
            centre = nearby.Point(*CITY)
            sorted((nearby.distance_m(centre, nearby.Point(a, b)), i) for i, a, b in located)[:20]
            times.append((time.perf_counter() - t) * 1000)
        rows.append(
            [
                backend,
                "baseline: full scan + sort",
                "all",
                20,
                "-",
                1,
                f"{statistics.median(times):.1f}",
                f"{pct(times, 0.95):.1f}",
                "-",
                "-",
                "-",
            ]
        )
        db.engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--fresh", action="store_true", help="seed again even if cached")
    args = parser.parse_args()

    global START_LOAD
    START_LOAD = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    os.environ.setdefault("INSTANCE_PATH", str(CACHE_DIR / "instance"))
    results = measure("SQLite " + sqlite3.sqlite_version, sqlite_url(args), args)
    if args.postgres:
        url = postgres_url(args, args.postgres)
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
        engine.dispose()
        results += measure(f"PostgreSQL {version}", url, args)

    print(
        f"## Nearby at {args.contacts:,} contacts (95% with coordinates), "
        f"{args.requests} requests per row after {args.warmup} warm-up\n"
    )
    print(
        "Server time of GET /nearby through the real app (signed-in rep; own = the rep's "
        f"1/{REPS} of the contacts), first page of {20}. Goal: p95 <= 20 ms.\n"
    )
    print(
        "service: services.nearby.nearest alone (the box queries, the distances, the 20 "
        "contacts loaded); page: the whole request, sign-in check and template included.\n"
    )
    headers = ["backend", "point", "scope", "found", "radius km", "queries"]
    headers += ["service p50 ms", "service p95 ms", "page p50 ms", "page p95 ms", "page goal"]
    print(table(headers, results, right=set(range(3, 10))))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average {load}"
        f" at the end (started at {START_LOAD}); {json.dumps(vars(args))}"
    )


if __name__ == "__main__":
    main()
