"""Throughput: the app under gunicorn (2 sync workers on 127.0.0.1) driven by wrk or a
bounded Python client, against a minimal Flask + Flask-SQLAlchemy baseline."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask, render_template_string
from flask_sqlalchemy import SQLAlchemy
from report import table
from sqlalchemy import select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from contacts.common import (
    BENCH_DIR,
    ROOT,
    SECRET,
    UA,
    VENV_BIN,
    CpuWatch,
    free_port,
    log,
    ms,
    out,
    pct,
)
from contacts.seed import Backend


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
            "contacts.throughput:baseline_app()", env, ["--pythonpath", str(BENCH_DIR)]
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


def report_throughput(backend: Backend, cookie: str, duration: float, noise: list[float]) -> None:
    """Drive the app and the baseline under gunicorn; print the table (and add each
    target's noise to noise)."""
    log(f"{backend.name}: throughput ({duration:g}s per target)")
    loads = throughput(backend, cookie, "olivia", duration)
    base = next(x for x in loads if x.label.startswith("baseline: 50"))
    out(
        f"### Throughput: gunicorn 2 sync workers on 127.0.0.1, {loads[0].tool},"
        f" {duration:g} s each after a 2 s warm-up; load generator on the same 2 cores"
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
