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
        context.configure(
            connection=connection,
            target_metadata=db.metadata,
            include_object=include_object,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
