"""Flask extensions, created here and bound to the app in create_app."""

import sqlite3

import flask_compress
from flask import request
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from htmx_flask import Htmx
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine

# Named constraints keep migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Compress(flask_compress.Compress):
    """Flask-Compress, with static files too: a file response is read into memory (ours
    are small) and its file closed, so it is compressed like any other body instead of
    being passed through as a stream the library leaves alone."""

    def after_request(self, response):
        if response.direct_passthrough and request.accept_encodings and response.status_code == 200:
            original = response.response
            response.direct_passthrough = False
            response.set_data(b"".join(original))
            if hasattr(original, "close"):
                original.close()
        return super().after_request(response)


db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING))
migrate = Migrate()
login = LoginManager()
csrf = CSRFProtect()
htmx = Htmx()
compress = Compress()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """SQLite: enforce foreign keys, let readers and a writer work side by side (WAL),
    and wait for a lock instead of failing at once."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # 64 MiB of page cache rather than 2: storing a batch of mentions touches pages
        # all over their indexes, and a cache that holds them halves the cost.
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()
