"""The application factory: config, extensions, blueprints and the CLI; nothing else."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from webapp import config

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app; test_config overrides settings read from the environment."""
    app = Flask(
        __name__,
        instance_path=config.instance_path(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    app.config.from_mapping(config.from_environment(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    if app.config.get("SECRET_KEY_FROM_DISK") and not app.config[
        "SQLALCHEMY_DATABASE_URI"
    ].startswith("sqlite"):
        app.logger.warning(
            "SECRET_KEY is not set: this machine signs sessions with a key of its own"
            " (instance/secret_key). Set SECRET_KEY, the same on every machine, before a"
            " second one serves the app."
        )

    from webapp import cli, errors, htmx, inputs, security, templating
    from webapp.extensions import compress, csrf, db, login, migrate
    from webapp.extensions import htmx as htmx_ext
    from webapp.services import passwords, search_text

    passwords.configure(app.config["ARGON2_PROFILE"])
    search_text.configure(app.config["DEFAULT_PHONE_REGION"])
    inputs.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    compress.init_app(app)
    htmx_ext.init_app(app)
    login.init_app(app)
    htmx.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    templating.init_app(app)

    from webapp.views import (
        activities,
        api,
        auth,
        contacts,
        deals,
        demo,
        inbox,
        inbox_settings,
        nearby,
        notifications,
        pwa,
        sources,
        sync,
        tasks,
        today,
        users,
    )

    places = (auth, today, contacts, activities, deals, nearby, tasks, inbox, notifications)
    for module in (*places, inbox_settings, sources, users, api, sync, pwa, demo):
        app.register_blueprint(module.bp)
    return app
