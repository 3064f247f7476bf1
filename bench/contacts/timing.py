"""Page timing: the scenarios (list, searches, contact page, timeline) measured through
the real app in-process, and the raw SQL of each with its plan (a full scan is flagged)."""

from __future__ import annotations

import contextlib
import re
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from report import table
from sqlalchemy import event, func, select

from contacts.common import BASE_URL, HTMX, PASSWORD, UA, USER_DOMAIN, CpuWatch, log, ms, out, pct
from contacts.seed import RARE_LAST


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


def report_pages(
    app, client, recorder, facts, backend, args, warnings: list[str], noise: list[float]
) -> list[str]:
    """Time the scenarios and their SQL on one backend; print both tables; return the plans
    section's lines (and add each full scan to warnings, each measurement's noise to noise)."""
    from webapp.extensions import db

    plans: list[str] = []
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

    return plans
