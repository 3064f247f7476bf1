"""Inbox benchmark: the server time and SQL statements of /inbox for a support user at
1,000,000 mentions, for every combination of its filters.

Seeds a database created by the real migrations (SQLite cached under
~/.cache/fieldcrm-bench/; PostgreSQL when --postgres or BENCH_DATABASE_URL names a
database of this benchmark's own, remembered in its comment), then measures through the
real app (Flask test client, CSRF on, a support user signed in through the /login form)
p50/p95 over --requests requests after a warm-up, for each combination of network,
sentiment and matched (support sees no sources, so no source filter). The data: five
sources of different networks and imports with none, a few unscored mentions, one in
twelve matched to a contact.
The report (a markdown table) goes to stdout, progress to stderr.

    .venv/bin/python bench/bench_inbox.py
    .venv/bin/python bench/bench_inbox.py --postgres postgresql://postgres@127.0.0.1:5432/crm_bench_inbox
    .venv/bin/python bench/bench_inbox.py --mentions 100000 --requests 50
"""

from __future__ import annotations

import argparse
import itertools
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
from urllib.parse import urlencode

import seeded
import sqlalchemy as sa
from report import table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE_DIR = Path(os.environ.get("BENCH_CACHE_DIR") or Path.home() / ".cache" / "fieldcrm-bench")
SEED_VERSION = 1  # bump when the generated data changes, so cached databases are rebuilt
SECRET = "fieldcrm-bench-secret"  # noqa: S105 - a throwaway key for the benchmark's sessions
PASSWORD = "bench-password-123"  # noqa: S105 - the seeded users' password
SUPPORT = "support1@bench.fieldcrm.test"
BASE_URL = "https://localhost"
CONTACTS = 20_000
GOAL_MS = 15.0
# (name, kind = network, share of the mentions); what is left is imported, with no source.
SOURCES = [
    ("Brand on X", "x", 0.30),
    ("Mastodon hashtag", "mastodon", 0.10),
    ("Bluesky search", "bluesky", 0.10),
    ("Press feed", "rss", 0.03),
    ("Support form", "webhook", 0.07),
]
IMPORT_NETWORKS = (["x", "mastodon", "bluesky", "rss"], [6, 2, 2, 1])
# How often VADER's labels come up; a mention in two hundred has none.
LABEL_SHARES = (["positive", "neutral", "negative", None], [36, 38, 25.5, 0.5])
MATCHED_SHARE = 1 / 12
WORDS = (
    "love the new app great support slow delivery refund please thanks order late broken "
    "excellent service never again quick reply awesome team disappointed price fair"
).split()
# Support does not see sources (the role table), so its inbox has no source filter.
FILTERS = {
    "network": [None, "x", "rss"],
    "label": [None, "negative", "unscored"],
    "matched": [None, "yes", "no"],
}


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


def mention_batches(n: int, batch: int, seed: int = 5):
    """n mentions oldest first (ids rise with time), in lists of batch rows."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    span = 365 * 86400
    stamps = sorted((rng.randrange(span) for _ in range(n)), reverse=True)
    shares = [s[2] for s in SOURCES]
    choices = [*range(1, len(SOURCES) + 1), None]
    weights = [*shares, 1 - sum(shares)]
    rows = []
    for i, ago in enumerate(stamps, start=1):
        source_id = rng.choices(choices, weights)[0]
        network = SOURCES[source_id - 1][1] if source_id else rng.choices(*IMPORT_NETWORKS)[0]
        label = rng.choices(*LABEL_SHARES)[0]
        compound = {"positive": 0.6, "neutral": 0.0, "negative": -0.6, None: None}[label]
        posted = now - timedelta(seconds=ago)
        author = rng.randrange(50_000)
        matched = author < 50_000 * MATCHED_SHARE
        rows.append(
            {
                "id": i,
                "network": network,
                "external_id": f"{network}-{i}",
                "source_id": source_id,
                "author_handle": f"author{author}",
                "author_name": f"Author {author}",
                "author_followers": rng.randrange(10, 100_000),
                "text": " ".join(rng.choices(WORDS, k=rng.randrange(4, 30))),
                "url": f"https://social.example/{network}/{i}",
                "posted_at": posted,
                "fetched_at": posted + timedelta(seconds=rng.randrange(5, 600)),
                "language": "en",
                "extra": {},
                "compound": compound,
                "pos": None if label is None else 0.3,
                "neu": None if label is None else 0.5,
                "neg": None if label is None else 0.2,
                "label": label,
                "sentiment_status": "scored" if label else "not_english",
                # A matched author is one of the contacts, by their number.
                "contact_id": author % CONTACTS + 1 if matched else None,
            }
        )
        if len(rows) >= batch:
            yield rows
            rows = []
    if rows:
        yield rows


def _seed(url: str, n: int) -> None:
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Contact, Mention, Source
    from webapp.services import users

    app = create_app(app_config(url))
    with app.app_context():
        upgrade()
        users.create_user(db.session, SUPPORT, "Sam Support", "support", PASSWORD)
        owner = users.create_user(
            db.session, "rep1@bench.fieldcrm.test", "Rob Rep", "rep", PASSWORD
        )
        db.session.commit()
        now = datetime.now(UTC)
        contacts = [
            {
                "id": i,
                "name": f"Author {i - 1}",
                "sort_name": f"author {i - 1:05d}",
                "search_text": f"author {i - 1}",
                "owner_id": owner.id,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(1, CONTACTS + 1)
        ]
        sources = [
            {"id": i, "name": name, "kind": kind, "config": {}, "created_at": now}
            for i, (name, kind, _) in enumerate(SOURCES, start=1)
        ]
        t = time.perf_counter()
        postgres = db.engine.dialect.name == "postgresql"
        with db.engine.begin() as conn:
            conn.execute(Source.__table__.insert(), sources)
            conn.execute(Contact.__table__.insert(), contacts)
        if postgres:
            _copy_mentions(db.engine, n)
        else:
            with db.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA synchronous=OFF")
                for rows in mention_batches(n, 50_000):
                    conn.execute(Mention.__table__.insert(), rows)
                    conn.commit()
        log(f"  {n:,} mentions inserted in {time.perf_counter() - t:.1f} s")
        with db.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            if postgres:
                for name in ("sources", "contacts", "mentions"):
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"
                        f" (SELECT max(id) FROM {name}))"
                    )
                conn.exec_driver_sql("VACUUM ANALYZE")
            else:
                conn.exec_driver_sql("ANALYZE")
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        # No connection may stay open on the file: it is renamed next.
        db.session.remove()
        db.engine.dispose()


def _copy_mentions(engine, n: int) -> None:
    """COPY into the migrated table, indexes in place, as the app would hold them."""
    import json

    columns = list(next(mention_batches(1, 1))[0])
    raw = engine.raw_connection()
    try:
        with (
            raw.driver_connection.cursor() as cur,
            cur.copy(f"COPY mentions ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for rows in mention_batches(n, 50_000):
                for row in rows:
                    row["extra"] = json.dumps(row["extra"])
                    copy.write_row([row[c] for c in columns])
        raw.driver_connection.commit()
    finally:
        raw.close()


def sqlite_url(args) -> str:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / f"inbox-m{args.mentions}-s{SEED_VERSION}-{seeded.newest_migration()}.sqlite3"
    if path.exists() and not args.fresh:
        log(f"SQLite: reusing {path}")
        return f"sqlite:///{path}"
    tmp = path.with_name(path.name + ".tmp")
    for suffix in ("", "-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    log(f"SQLite: seeding {args.mentions:,} mentions")
    _seed(f"sqlite:///{tmp}", args.mentions)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    os.replace(tmp, path)
    return f"sqlite:///{path}"


def postgres_url(args, raw: str) -> str:
    def seed(url: str) -> None:
        log(f"PostgreSQL: seeding {args.mentions:,} mentions")
        _seed(url, args.mentions)

    key = f"inbox-m{args.mentions}-s{SEED_VERSION}-{seeded.newest_migration()}"
    return seeded.postgres(
        raw, key, f"SELECT max(id) = {args.mentions} FROM mentions", seed, args.fresh, log
    )


def sign_in(app):
    client = app.test_client()
    page = client.get("/login", base_url=BASE_URL)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    r = client.post(
        "/login",
        data={"email": SUPPORT, "password": PASSWORD, "csrf_token": token[1]},
        headers={"Referer": f"{BASE_URL}/login"},  # over HTTPS, Flask-WTF checks the referrer
        base_url=BASE_URL,
    )
    assert r.status_code == 303, f"sign-in failed: {r.status_code}"
    return client


def measure(backend: str, url: str, args) -> list[list]:
    from webapp import create_app
    from webapp.extensions import db

    app = create_app(app_config(url))
    client = sign_in(app)
    statements: list[str] = []
    with app.app_context():
        sa.event.listen(
            db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]), retval=False
        )
    rows = []
    for combo in itertools.product(*FILTERS.values()):
        args_ = {k: v for k, v in zip(FILTERS, combo, strict=True) if v}
        path = "/inbox/" + (f"?{urlencode(args_)}" if args_ else "")
        for _ in range(args.warmup):
            r = client.get(path, base_url=BASE_URL)
        assert r.status_code == 200, f"{path}: HTTP {r.status_code}"
        shown = r.get_data(as_text=True).count('class="row mention"')
        statements.clear()
        client.get(path, base_url=BASE_URL).get_data()
        queries = len(statements)
        times = []
        for _ in range(args.requests):
            t = time.perf_counter()
            client.get(path, base_url=BASE_URL).get_data()
            times.append((time.perf_counter() - t) * 1000)
        p95 = pct(times, 0.95)
        rows.append(
            [
                backend,
                *(v or "-" for v in combo),
                shown,
                queries,
                f"{statistics.median(times):.1f}",
                f"{p95:.1f}",
                "yes" if p95 <= GOAL_MS else "NO",
            ]
        )
        log(f"  {backend} {path}: p95 {p95:.1f} ms, {shown} shown, {queries} statements")
    with app.app_context():
        db.engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mentions", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--fresh", action="store_true", help="seed again even if cached")
    args = parser.parse_args()

    start_load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
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
        f"## Inbox at {args.mentions:,} mentions, {args.requests} requests per row after"
        f" {args.warmup} warm-up\n"
    )
    print(
        "Server time of GET /inbox/ through the real app (a support user signed in), the"
        f" first page, for each combination of filters. Goal: p95 <= {GOAL_MS:g} ms and the"
        " same few statements whatever the filters. X carries about half the mentions, RSS"
        f" about one in sixteen; one in {round(1 / MATCHED_SHARE)} is matched to a contact,"
        " one in 200 unscored.\n"
    )
    headers = ["backend", "network", "label", "matched", "shown", "statements"]
    headers += ["p50 ms", "p95 ms", "goal"]
    print(table(headers, results, right={4, 5, 6, 7}))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average {load}"
        f" at the end (started at {start_load}); {vars(args)}"
    )


if __name__ == "__main__":
    main()
