"""Databases a benchmark seeds once and reuses: the PostgreSQL database of its own that it
is given (refusing the test databases), remembered by a comment naming what was seeded
and with which migrations, and the newest migration that names such a seed."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent


def newest_migration() -> str:
    """The number of the newest migration: a seed made before it is made again."""
    names = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("*.py"))
    return names[-1].split("_")[0] if names else "none"


def postgres(
    raw: str,
    key: str,
    intact: str,
    seed: Callable[[str], None],
    fresh: bool = False,
    log: Callable[[str], None] = print,
) -> str:
    """The SQLAlchemy URL of the benchmark's own database at raw, seeded by seed(url) unless
    its comment says key and the query intact answers true (and not fresh)."""
    import psycopg

    from webapp.config import database_url

    url = database_url(raw, "")
    parsed = sa.engine.make_url(url)
    name = parsed.database
    if not name or name in {"test", "postgres", "template0", "template1"} or "test" in name:
        sys.exit(f"refusing PostgreSQL database {name!r}: give one of this benchmark's own")
    libpq = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(libpq, autocommit=True) as conn:
        comment = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE datname = current_database()"
        ).fetchone()[0]
        whole = False
        with contextlib.suppress(psycopg.Error):
            whole = bool(conn.execute(intact).fetchone()[0])
        if comment == key and whole and not fresh:
            log(f"PostgreSQL: reusing {name}")
            return url
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    seed(url)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{key}'")
    return url
