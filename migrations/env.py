"""Alembic environment: runs migrations on the app's engine (SQLite or PostgreSQL)."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config
if config.config_file_name and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

db = current_app.extensions["migrate"].db

# Tables the migrations create by hand (SQLite's full-text index) and no model declares.
MANAGED_BY_HAND = ("contacts_fts",)


def include_object(obj, name, type_, reflected, compare_to):
    """Leave the hand-made search tables out of autogenerate's comparison."""
    if type_ == "table" and name and name.startswith(MANAGED_BY_HAND):
        return False
    return not (type_ == "index" and name and name.startswith("ix_contacts_search_trgm"))


def run_migrations_online():
    connectable = db.engine
    with connectable.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A batch migration rebuilds a table (copy, drop, rename); with foreign keys
            # enforced, dropping a table others refer to fails. They are checked once
            # the migrations are done instead. (The pragma is ignored inside a
            # transaction, so it is set before one begins.)
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=db.metadata,
            include_object=include_object,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
            if broken:
                raise RuntimeError(f"the migrations left broken foreign keys: {broken[:5]}")


run_migrations_online()
