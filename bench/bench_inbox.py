"""Inbox benchmark: the server time and SQL statements of /inbox for a support user at
1,000,000 mentions, each triage view with and without filters (issue #12 item 8: p95 <=
20 ms; issue #10 item 3: a fixed number of statements per page).

Seeds a database created by the real migrations (SQLite cached under
~/.cache/fieldcrm-bench/; PostgreSQL when --postgres or BENCH_DATABASE_URL names a
database of this benchmark's own, remembered in its comment), then measures through the
real app (Flask test client, CSRF on, a support user signed in through the /login form)
p50/p95 over --requests requests after a warm-up, and the statements a page sends, for
the open queue by priority (support's default), Mine, Unassigned, Pending, Snoozed,
Resolved and All newest first, each with no filter, a network, a label and both, the
first page and the second through its More link; and the navigation's counts alone.
The data: five sources of different networks and imports with none, a few unscored
mentions, one in twelve matched to a contact, ten support users holding most items;
most mentions resolved, a few percent open, pending or snoozed (more of the last three
days'), SLA targets on the unresolved, priorities from triage.parts, the product's own.
The report (a markdown table) goes to stdout, progress to stderr. Seeding 1,000,000
takes about three minutes per backend; run at 100,000 first to find problems.

    .venv/bin/python bench/bench_inbox.py --mentions 100000 --requests 30
    .venv/bin/python bench/bench_inbox.py \
        --postgres postgresql://postgres@127.0.0.1:5432/crm_bench_inbox > inbox.md
"""

from __future__ import annotations

import argparse
import html
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
SEED_VERSION = 2  # bump when the generated data changes, so cached databases are rebuilt
SECRET = "fieldcrm-bench-secret"  # noqa: S105 - a throwaway key for the benchmark's sessions
PASSWORD = "bench-password-123"  # noqa: S105 - the seeded users' password
SUPPORT = "support1@bench.fieldcrm.test"  # one of the AGENTS support users
AGENTS = 10
BASE_URL = "https://localhost"
CONTACTS = 20_000
GOAL_MS = 20.0
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
COMPOUNDS = {"positive": (0.05, 1.0), "neutral": (-0.05, 0.05), "negative": (-1.0, -0.05)}
# Triage: the last days' posts are still being worked on; older ones are mostly done.
RECENT = timedelta(days=3)
STATUSES = ["open", "pending", "snoozed", "resolved"]
RECENT_STATUS_SHARES = (STATUSES, [40, 10, 5, 45])
STATUS_SHARES = (STATUSES, [2, 1.2, 0.8, 96])
# Who holds an item, by status: resolved ones mostly by the agent who answered.
ASSIGNED_SHARES = {"open": 0.4, "pending": 0.9, "snoozed": 0.9, "resolved": 0.95}
MATCHED_SHARE = 1 / 12
WORDS = (
    "love the new app great support slow delivery refund please thanks order late broken "
    "excellent service never again quick reply awesome team disappointed price fair"
).split()
# What support opens (the open queue is its default), each with no filter, a network, a
# label and both; support does not see sources (the role table), so no source filter.
VIEWS = [
    ("open queue", {}),
    ("mine", {"assignee": "me"}),
    ("unassigned", {"assignee": "none"}),
    ("pending", {"status": "pending"}),
    ("snoozed", {"status": "snoozed"}),
    ("resolved", {"status": "resolved"}),
    ("all, newest first", {"status": "all"}),
]
FILTERS = [{}, {"network": "rss"}, {"label": "negative"}, {"network": "rss", "label": "negative"}]
MORE_LINK = re.compile(r'<li class="more">\s*<a href="([^"]+)"')


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


def triage_state(rng: random.Random, posted: datetime, now: datetime) -> dict:
    """Where support is with one mention: most resolved (mostly by the agent who had it),
    a few in each other status (more among the last days' posts), SLA targets on the
    unresolved ones (first response an hour after the post, resolution a day after),
    snoozes waking within a week."""
    recent = now - posted < RECENT
    status = rng.choices(*(RECENT_STATUS_SHARES if recent else STATUS_SHARES))[0]
    assigned = rng.random() < ASSIGNED_SHARES[status]
    state = {
        "status": status,
        "assignee_id": rng.randrange(AGENTS) + 1 if assigned else None,
        "assigned_at": posted + timedelta(minutes=rng.randrange(1, 120)) if assigned else None,
        "status_at": posted + timedelta(minutes=rng.randrange(1, 600)),
        "snoozed_until": None,
        "first_response_at": None,
        "resolved_at": None,
        "first_response_due": None,
        "resolution_due": None,
        "sla_paused_at": None,
    }
    if status == "resolved":
        state["first_response_at"] = posted + timedelta(minutes=rng.randrange(2, 120))
        state["resolved_at"] = state["status_at"]
    else:
        state["first_response_due"] = posted + timedelta(hours=1)
        state["resolution_due"] = posted + timedelta(days=1)
        if status != "open":
            state["first_response_at"] = posted + timedelta(minutes=rng.randrange(2, 120))
            state["sla_paused_at"] = state["status_at"]
        if status == "snoozed":
            state["snoozed_until"] = now + timedelta(minutes=rng.randrange(10, 7 * 24 * 60))
    return state


def mention_batches(n: int, batch: int, seed: int = 5):
    """n mentions oldest first (ids rise with time), in lists of batch rows, each with its
    triage state and the priority the product's own formula gives it."""
    from webapp.services import triage

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
        compound = None if label is None else round(rng.uniform(*COMPOUNDS[label]), 4)
        posted = now - timedelta(seconds=ago)
        author = rng.randrange(50_000)
        matched = author < 50_000 * MATCHED_SHARE
        # Followers spread over orders of magnitude, as on the networks.
        followers = int(10 ** rng.uniform(0.5, 6.5))
        state = triage_state(rng, posted, now)
        waited = now - posted if state["first_response_at"] is None else None
        made = triage.parts(compound, followers, waited, "contact" if matched else None)
        rows.append(
            {
                "id": i,
                "network": network,
                "external_id": f"{network}-{i}",
                "source_id": source_id,
                "author_handle": f"author{author}",
                "author_name": f"Author {author}",
                "author_followers": followers,
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
                **state,
                "priority": sum(made.values()),
                "priority_parts": made,
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
        agents = [
            users.create_user(
                db.session, f"support{i}@bench.fieldcrm.test", f"Agent {i}", "support", PASSWORD
            )
            for i in range(1, AGENTS + 1)
        ]
        db.session.flush()
        # The seeded assignees are users 1..AGENTS.
        assert [a.id for a in agents] == list(range(1, AGENTS + 1))
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
                    row["priority_parts"] = json.dumps(row["priority_parts"])
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


class Statements:
    """The statements the app sends and the time their execution takes, as it goes."""

    def __init__(self, engine) -> None:
        self.sent: list[str] = []
        self.ms = 0.0
        sa.event.listen(engine, "before_cursor_execute", self.before)
        sa.event.listen(engine, "after_cursor_execute", self.after)

    def before(self, conn, cursor, statement, *_args) -> None:
        self.sent.append(statement)
        conn.info["bench_started"] = time.perf_counter()

    def after(self, conn, *_args) -> None:
        self.ms += (time.perf_counter() - conn.info.pop("bench_started")) * 1000

    def clear(self) -> None:
        self.sent.clear()
        self.ms = 0.0


def timed(fetch, seen: Statements, args) -> tuple[float, float, float]:
    """p50 and p95 in ms of fetch() over args.requests calls after args.warmup, and the
    median of the time its statements took to execute."""
    for _ in range(args.warmup):
        fetch()
    times, sql = [], []
    for _ in range(args.requests):
        seen.clear()
        t = time.perf_counter()
        fetch()
        times.append((time.perf_counter() - t) * 1000)
        sql.append(seen.ms)
    return statistics.median(times), pct(times, 0.95), statistics.median(sql)


def deep_cursor(session) -> str:
    """A cursor halfway through the resolved priority with the most items: where a page
    ends when someone scrolls far down Resolved."""
    from webapp.models import Mention
    from webapp.services import triage

    resolved = Mention.status == "resolved"
    priority, items = session.execute(
        sa.select(Mention.priority, sa.func.count())
        .where(resolved)
        .group_by(Mention.priority)
        .order_by(sa.func.count().desc())
        .limit(1)
    ).one()
    middle = session.scalar(
        sa.select(Mention)
        .where(resolved, Mention.priority == priority)
        .order_by(Mention.posted_at, Mention.id)
        .offset(items // 2)
        .limit(1)
    )
    return triage._cursor(middle)


def measure(backend: str, url: str, args) -> list[list]:
    """A row per view, filters and page (the first, then the second through the first's
    More link), one for a page deep in Resolved, one for the navigation's counts alone."""
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import triage

    app = create_app(app_config(url))
    client = sign_in(app)
    with app.app_context():
        seen = Statements(db.engine)
    rows = []

    def row(view: str, filters: str, page: str, shown: int, fetch) -> None:
        seen.clear()
        fetch()
        queries = len(seen.sent)
        p50, p95, sql = timed(fetch, seen, args)
        timing = [f"{sql:.1f}", f"{p50:.1f}", f"{p95:.1f}", "yes" if p95 <= GOAL_MS else "NO"]
        rows.append([backend, view, filters, page, shown, queries, *timing])
        log(f"  {backend} {view} {filters} {page}: p95 {p95:.1f} ms, SQL {sql:.1f}, {queries}")

    for (view, query), filters in itertools.product(VIEWS, FILTERS):
        path = "/inbox/" + (f"?{urlencode({**query, **filters})}" if query or filters else "")
        named = " + ".join(filters.values()) or "-"
        for page in ("1", "2"):
            r = client.get(path, base_url=BASE_URL)
            assert r.status_code == 200, f"{path}: HTTP {r.status_code}"
            body = r.get_data(as_text=True)
            shown = body.count('class="row mention"')
            row(view, named, page, shown, lambda p=path: client.get(p, base_url=BASE_URL).data)
            more = MORE_LINK.search(body)
            if not more:
                break
            path = html.unescape(more[1])
    with app.app_context():
        deep = deep_cursor(db.session)
    path = f"/inbox/?{urlencode({'status': 'resolved', 'after': deep})}"
    shown = client.get(path, base_url=BASE_URL).get_data(as_text=True).count('class="row mention"')
    row("resolved", "-", "deep", shown, lambda: client.get(path, base_url=BASE_URL).data)
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == SUPPORT))
        shown = sum(triage.counts(db.session, user).values())
        row("nav counts", "-", "-", shown, lambda: triage.counts(db.session, user))
        db.session.remove()
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
        "Server time of GET /inbox/ through the real app (a support user signed in, who"
        " holds about a tenth of the assigned items), each status view with no filter, RSS,"
        " negative and both, its first page and the second through the More link (deep: a"
        " page from halfway through Resolved's largest priority); nav"
        " counts is triage.counts() alone (it is part of every page). SQL p50 is the"
        " median time the page's statements took to execute; the rest is the app's."
        f" Goal: p95 <= {GOAL_MS:g} ms and a fixed number of statements whatever the"
        " filters. About 2% of the mentions are open, 1% pending, 1% snoozed (more of the"
        " last three days' posts), the rest resolved; RSS carries about one in sixteen,"
        " a quarter are negative.\n"
    )
    headers = ["backend", "view", "filters", "page", "shown", "statements", "SQL p50 ms"]
    headers += ["p50 ms", "p95 ms", "goal"]
    print(table(headers, results, right={4, 5, 6, 7, 8}))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average {load}"
        f" at the end (started at {start_load}); {vars(args)}"
    )


if __name__ == "__main__":
    main()
