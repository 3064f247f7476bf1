"""Fixtures: an app per test on each database backend, a real Redis, users per role."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from webapp import create_app
from webapp.extensions import db
from webapp.models import Contact, Stage
from webapp.models.deals import DEFAULT_STAGES
from webapp.services import contacts, users
from workers.queues import EmbeddedRedis

PG_URL = os.environ.get("TEST_DATABASE_URL")
# Keep secrets and files the app writes under instance/ out of the working tree.
os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="crm-test-instance-"))
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
PASSWORD = "correct horse battery"


def pytest_generate_tests(metafunc):
    # PostgreSQL joins the run when TEST_DATABASE_URL is set (always in CI); it is not
    # listed as skipped otherwise, and .ci/run fails when the server is missing.
    # A test marked sqlite_only is about SQLite itself (its query planner, say).
    if "backend" in metafunc.fixturenames:
        only_sqlite = metafunc.definition.get_closest_marker("sqlite_only")
        metafunc.parametrize("backend", ["sqlite"] if only_sqlite else BACKENDS, scope="session")


def _config(url: str, instance: Path) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": url,
        "SERVER_NAME": "localhost",
        "PREFERRED_URL_SCHEME": "https",
        "WTF_CSRF_ENABLED": False,
        # Real argon2id, with the cheapest parameters: hashing cost is not under test.
        "ARGON2_PROFILE": "CHEAPEST",
        "REDIS_URL": os.environ.get("TEST_REDIS_URL"),
    }


@pytest.fixture(scope="session")
def migrated(backend, tmp_path_factory):
    """A database migrated once per session: a SQLite template file, or the PostgreSQL schema."""
    base = tmp_path_factory.mktemp(f"db-{backend}")
    if backend == "sqlite":
        url = f"sqlite:///{base / 'template.sqlite3'}"
    else:
        url = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", PG_URL)
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    app = create_app(_config(url, base))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return url, base


@pytest.fixture
def app(backend, migrated, tmp_path):
    """An app on a clean database: a fresh copy of the SQLite template, or emptied tables.

    No app context stays pushed: each test-client request then gets its own, as in
    production (a shared one would share g and the session between "devices").
    """
    url, base = migrated
    if backend == "sqlite":
        path = tmp_path / "crm.sqlite3"
        shutil.copy(base / "template.sqlite3", path)
        url = f"sqlite:///{path}"
    app = create_app(_config(url, tmp_path))
    if backend == "postgresql":
        with app.app_context():
            tables = ", ".join(t.name for t in db.metadata.sorted_tables)
            db.session.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            # The migration seeds the default pipeline; an emptied database gets it back.
            db.session.add_all(
                Stage(name=n, position=i, probability=p, rotting_days=r, kind=k)
                for i, (n, p, r, k) in enumerate(DEFAULT_STAGES, start=1)
            )
            db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def _detach(obj, *relationships):
    """Load obj's columns (and the named relationships) and detach it from the session."""
    db.session.refresh(obj)
    for name in relationships:
        getattr(obj, name)
    db.session.expunge(obj)
    return obj


@pytest.fixture
def make_user(app):
    """Create a user of a role: make_user('rep', email=…); returns a detached User."""
    count = {"n": 0}

    def make(role: str = "rep", email: str | None = None, name: str | None = None):
        count["n"] += 1
        with app.app_context():
            user = users.create_user(
                db.session,
                email or f"{role}{count['n']}@example.com",
                name or f"{role.title()} {count['n']}",
                role,
                PASSWORD,
            )
            db.session.commit()
            return _detach(user)

    return make


@pytest.fixture
def make_contact(app):
    """Create a contact owned by a user: make_contact(owner, name=…); returns it detached."""

    def make(owner, **fields) -> Contact:
        fields.setdefault("name", "Jane Doe")
        with app.app_context():
            contact = contacts.create_contact(db.session, owner, fields)
            db.session.commit()
            return _detach(contact, "handles")

    return make


def sign_in(client, user, password: str = PASSWORD, **kw):
    """Sign user in through the real form; return the response."""
    return client.post("/login", data={"email": user.email, "password": password}, **kw)


@pytest.fixture
def login(client):
    def do(user):
        response = sign_in(client, user)
        assert response.status_code == 303, response.get_data(as_text=True)
        return client

    return do


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real Redis: REDIS_URL when set (CI's server), else an embedded one for the session."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis") / "redis.db")
    try:
        yield server.start()
    finally:
        server.stop()
