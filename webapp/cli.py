"""The `crm` command: up, worker, scheduler, seed-demo, create-user, and Flask's own
(db upgrade, routes, shell)."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import func, select

from webapp import config
from webapp.extensions import db


def _create_app():
    from webapp import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """Field CRM: contacts, timelines and a social inbox."""


# How long the worker may take to finish the job under way, then to stop after a cold
# shutdown, before it and its scheduler are killed.
WARM_STOP_SECONDS = 10
COLD_STOP_SECONDS = 5
# A signal this soon after the first is the same request delivered twice: make passes
# SIGTERM on to its child, and a group kill reaches make and `crm up` alike.
REPEAT_SECONDS = 1.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _StopRequests:
    """How `crm up` takes SIGINT (Ctrl-C), SIGTERM and SIGHUP.

    The first one stops everything: it interrupts the step under way where that step
    can be abandoned (seeding, one transaction; serving), and elsewhere (migrating,
    starting Redis and the children, stopping them) waits for the step to end. A later
    one, a second or more after, is passed on to the worker and the scheduler: RQ's
    worker takes a second signal as a cold shutdown.
    """

    def __init__(self) -> None:
        self.first_at: float | None = None
        self.interruptible = False
        self.children: list[subprocess.Popen] = []

    def install(self) -> None:
        """Take the signals over (SIGINT too: a shell starts background jobs with it ignored)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)

    @property
    def requested(self) -> bool:
        """Whether a stop has been asked for."""
        return self.first_at is not None

    @contextmanager
    def interrupting(self) -> Iterator[None]:
        """Within this block a stop request raises KeyboardInterrupt at once."""
        if self.requested:
            raise KeyboardInterrupt
        self.interruptible = True
        try:
            yield
        finally:
            self.interruptible = False

    def check(self) -> None:
        """Raise KeyboardInterrupt if a stop was asked for while it had to wait."""
        if self.requested:
            raise KeyboardInterrupt

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """Note the first request (raising where allowed); pass a later one on."""
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
            if self.interruptible:
                raise KeyboardInterrupt
        elif now - self.first_at >= REPEAT_SECONDS:
            for child in self.children:
                child.send_signal(signal.SIGTERM)


def _start_child(command: str) -> subprocess.Popen:
    """Start `crm COMMAND` in a process group of its own, away from the terminal, so that
    only `crm up` signals it; and so that it ends should `crm up` die without stopping it."""
    from workers.queues import exit_with_parent

    return subprocess.Popen(  # noqa: S603 - this interpreter, this module
        [sys.executable, "-m", "webapp.cli", command],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=exit_with_parent(),
    )


def _stop_children(children: list[subprocess.Popen]) -> None:
    """SIGTERM each child (RQ's warm shutdown: the job under way is finished); if one
    is still running after a while, SIGTERM again (cold shutdown: the job is stopped,
    and retried later), and at last kill its process group (the worker's and its RQ
    scheduler's)."""
    for child in children:
        child.send_signal(signal.SIGTERM)
    for grace, next_step in ((WARM_STOP_SECONDS, "cold"), (COLD_STOP_SECONDS, "kill")):
        deadline = time.monotonic() + grace
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(max(0.0, deadline - time.monotonic()))
        running = [child for child in children if child.poll() is None]
        if not running:
            return
        for child in running:
            name = child.args[-1]
            if next_step == "cold":
                click.echo(f"The {name} is still busy; stopping it now.")
                child.send_signal(signal.SIGTERM)
            else:
                click.echo(f"The {name} did not stop; killing it.")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
    for child in children:
        child.wait()


@click.command("up")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=lambda: config.port(), type=int)
@click.option("--demo/--no-demo", default=True, help="Seed demo data into an empty database.")
@with_appcontext
def up(host: str, port: int, demo: bool) -> None:
    """Migrate, seed demo data, and run web, worker and scheduler until Ctrl-C."""
    from flask_migrate import upgrade
    from werkzeug.serving import run_simple

    from webapp.models import User
    from webapp.services import demo as demo_data
    from workers.queues import EmbeddedRedis

    app = current_app._get_current_object()
    # Plain http: a Secure cookie would be lost in Safari, which keeps none from http.
    app.config["SESSION_COOKIE_SECURE"] = config.cookie_secure("auto")
    stop = _StopRequests()
    stop.install()
    embedded = None
    try:
        upgrade()
        if demo and not db.session.scalar(select(func.count()).select_from(User)):
            click.echo("Seeding demo data…")
            with stop.interrupting():
                demo_data.seed(db.session)
                db.session.commit()
        stop.check()
        if not app.config["REDIS_URL"]:
            embedded = EmbeddedRedis(Path(app.instance_path) / "redis.db")
            url = embedded.start()
            os.environ["REDIS_URL"] = app.config["REDIS_URL"] = url
            click.echo(f"Embedded Redis on {url}")
        for command in ("worker", "scheduler"):
            stop.children.append(_start_child(command))
        stop.check()
        url = f"http://{host}:{port}/"
        click.echo(f"\n  Field CRM is running at {url}\n")
        for email, role in demo_data.logins(db.session):
            click.echo(f"  {role:<9} {email:<26} password: {demo_data.PASSWORD}")
        click.echo("\n  Ctrl-C stops everything.\n")
        db.session.remove()
        with stop.interrupting():
            run_simple(host, port, app, threaded=True, use_reloader=False)
    except KeyboardInterrupt:
        pass
    finally:
        # No signal interrupts what follows: Redis goes last, once nothing uses it.
        _stop_children(stop.children)
        if embedded:
            embedded.stop()
        click.echo("Stopped.")


CONNECTORS = (
    "social.x",
    "social.x_reply",
    "social.mastodon",
    "social.bluesky",
    "social.bluesky_reply",
    "social.rss",
    "social.replies",
)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Drain the queues, then exit.")
@click.argument("queues", nargs=-1)
@with_appcontext
def worker(burst: bool, queues: tuple[str, ...]) -> None:
    """Run one RQ worker on the queues (default: high, default, low)."""
    from sqlalchemy.orm import configure_mappers

    import workers.jobs  # noqa: F401 - imported once here, not in every work-horse

    # The connectors and the network clients under them, imported once here too: a
    # work-horse forked per job would otherwise import them again for every poll and
    # every reply (0.7 s each on the 2-core machine, more than the job's own work).
    for module in CONNECTORS:
        importlib.import_module(module)
    from social.bluesky_reply import prepare
    from social.net import tls_context

    tls_context()  # the roots loaded once, for every work-horse to inherit
    prepare()
    from workers.queues import QUEUES, connect
    from workers.worker import (
        HEARTBEAT_SECONDS,
        MAINTENANCE_SECONDS,
        Worker,
        WorkerSettingError,
        setting_seconds,
    )

    cfg = current_app.config
    try:
        heartbeat = setting_seconds(
            "CRM_WORKER_HEARTBEAT_SECONDS", cfg["WORKER_HEARTBEAT_SECONDS"], HEARTBEAT_SECONDS
        )
        maintenance = setting_seconds(
            "CRM_WORKER_MAINTENANCE_SECONDS", cfg["WORKER_MAINTENANCE_SECONDS"], MAINTENANCE_SECONDS
        )
    except WorkerSettingError as exc:
        raise click.ClickException(str(exc)) from None
    worker = Worker(
        list(queues or QUEUES),
        connection=connect(cfg["REDIS_URL"]),
        heartbeat_interval=heartbeat,
        maintenance_interval=maintenance,
    )
    # Configure mappers once here, before forking, rather than in every work-horse;
    # and give each forked work-horse fresh database connections of its own.
    configure_mappers()
    engine = db.engine
    engine.dispose()
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    worker.work(burst=burst, with_scheduler=True)


@click.command("scheduler")
@with_appcontext
def scheduler() -> None:
    """Run the cron scheduler that enqueues recurring jobs."""
    from workers import cron
    from workers.queues import connect

    cron.build(connect(current_app.config["REDIS_URL"]), logging.INFO).start()


@click.command("seed-demo")
@click.option("--contacts", "count", default=300, show_default=True)
@with_appcontext
def seed_demo(count: int) -> None:
    """Fill an empty database with demo users, contacts and activities."""
    from webapp.models import User
    from webapp.services import demo as demo_data

    if db.session.scalar(select(func.count()).select_from(User)):
        raise click.ClickException(
            "The database has users already; demo data goes only into an empty one."
        )
    demo_data.seed(db.session, contacts=count)
    db.session.commit()
    for email, role in demo_data.logins(db.session):
        click.echo(f"{role:<9} {email:<26} password: {demo_data.PASSWORD}")


@click.command("create-user")
@click.option("--email", prompt=True)
@click.option("--name", prompt=True)
@click.option(
    "--role", prompt=True, type=click.Choice(["admin", "manager", "rep", "support", "marketer"])
)
@click.password_option()
@with_appcontext
def create_user(email: str, name: str, role: str, password: str) -> None:
    """Add a user who can sign in."""
    from webapp.services import users
    from webapp.services.errors import ValidationError

    try:
        user = users.create_user(db.session, email, name, role, password)
    except ValidationError as exc:
        raise click.ClickException(" ".join(exc.errors.values())) from None
    db.session.commit()
    click.echo(f"Created {user.role} {user.email}.")


@click.group("triage")
def triage_group() -> None:
    """Support triage of mentions."""


@triage_group.command("refresh")
@with_appcontext
def triage_refresh() -> None:
    """Make every unresolved mention's priority again (after an upgrade)."""
    from webapp.services import triage

    done = triage.refresh_all(db.session)
    click.echo(f"Ranked {done:,} mentions again.")


@click.group("mentions")
def mentions_group() -> None:
    """Social mentions."""


@mentions_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--batch", default=2000, show_default=True, help="Mentions stored per transaction.")
@click.option(
    "--queue",
    "queue_name",
    metavar="NAME",
    help="Hand the batches to the workers on this queue (e.g. default) and wait for them,"
    " instead of storing them from this process.",
)
@click.option(
    "--progress",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="With --queue: how often to say, while waiting, what the batches wait for.",
)
@with_appcontext
def import_mentions(path: str, batch: int, queue_name: str | None, progress: float) -> None:
    """Read normalized mentions, one JSON object per line, through the ingest pipeline.

    Reports how many were stored, already there (duplicates) and rejected, with the
    line number and reason of each rejected line; the good lines go in regardless.
    """
    from workers import imports

    with click.open_file(path, encoding="utf-8-sig") as handle:
        report = imports.import_lines(
            handle,
            batch=batch,
            queue_name=queue_name,
            redis_url=current_app.config["REDIS_URL"],
            progress=progress,
            say=lambda text: click.echo(text, err=True),
        )
    totals = report.totals
    click.echo(
        f"{totals['stored']} stored, {totals['duplicates']} duplicate,"
        f" {len(report.rejected)} rejected ({totals['attached']} attached to contacts)."
    )
    for number, reason in report.rejected:
        click.echo(f"  line {number}: {reason}", err=True)
    for failure in report.failures:
        click.echo(f"  {failure}", err=True)
    if report.rejected or report.failures:
        sys.exit(1)


def init_app(app: Flask) -> None:
    """Register the commands on the app, so `crm` and `flask` both have them."""
    for command in (up, worker, scheduler, seed_demo, create_user, mentions_group, triage_group):
        app.cli.add_command(command)


if __name__ == "__main__":
    main()
