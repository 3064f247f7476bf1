"""What the contacts benchmark's parts share: where things are, the seeded users'
credentials, the app's config for a seeded database, printing, percentiles, and how much
of the machine other work used while a measurement ran."""

from __future__ import annotations

import hashlib
import math
import os
import socket
import sys
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
CACHE_DIR = Path(os.environ.get("BENCH_CACHE_DIR") or Path.home() / ".cache" / "fieldcrm-bench")

SECRET = "fieldcrm-bench-secret"  # noqa: S105 - a throwaway key for the benchmark's sessions
PASSWORD = "bench-password-123"  # noqa: S105 - the seeded users' password
USER_DOMAIN = "bench.fieldcrm.test"
UA = "fieldcrm-bench/1"
BASE_URL = "https://localhost"
HTMX = {"HX-Request": "true", "HX-Request-Type": "partial"}


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
