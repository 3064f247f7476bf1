"""The `crm` command (webapp/cli.py): create-user, seed-demo, `crm up` from start to every
way of stopping it, and `crm mentions import`: what it stores, what it counts as
duplicates, and each rejected line reported with its number."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pytest
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Mention, User
from webapp.services import demo, demo_sales

ROOT = Path(__file__).resolve().parents[2]


def test_create_user(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-user", "--email", "New@Example.com", "--name", "New Person", "--role", "rep"],
        input="a long enough password\na long enough password\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created rep new@example.com." in result.output
    with app.app_context():
        assert db.session.query(User).filter_by(email="new@example.com").one().role == "rep"


def test_create_user_explains_bad_input(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-user", "--email", "nope", "--name", "X", "--role", "rep"],
        input="short\nshort\n",
    )
    assert result.exit_code != 0
    assert "Enter an email address" in result.output
    assert "at least 10 characters" in result.output


def test_seed_demo_only_into_an_empty_database(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-demo", "--contacts", "40"])
    assert result.exit_code == 0, result.output
    assert "rep@demo.fieldcrm.test" in result.output
    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code != 0
    assert "already" in again.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Process(NamedTuple):
    """A process seen running: its pid, its start time (so that a pid used again by
    some other process is not taken for it) and its command line."""

    pid: int
    started: str
    command: str


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _descendants(pid: int) -> list[_Process]:
    """pid's children, theirs, and so on, as they are now."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for child in map(int, children):
            stat = _stat(child)
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
            except (FileNotFoundError, ProcessLookupError):
                continue
            if stat:
                found.append(_Process(child, stat[19], command.decode(errors="replace")))
                found += _descendants(child)
    return found


def _alive(process: _Process) -> bool:
    """Whether that very process still runs (a zombie has ended)."""
    stat = _stat(process.pid)
    return stat is not None and stat[19] == process.started and stat[0] != "Z"


def _kill_left_over(processes: list[_Process]) -> None:
    for process in processes:
        if _alive(process):
            os.kill(process.pid, signal.SIGKILL)


# How each test starts `crm up` and stops it: (start, signal, to the whole group?).
STOPS = {
    # What a terminal sends on Ctrl-C: SIGINT to the foreground process group.
    "ctrl-c": ("crm up", signal.SIGINT, True),
    # Started as a shell starts a background job, with SIGINT ignored: Ctrl-C must
    # still reach `crm up`.
    "ctrl-c, started in the background": ("background", signal.SIGINT, True),
    # What a process manager sends.
    "sigterm to crm up": ("crm up", signal.SIGTERM, False),
    # `kill -- -PGID`.
    "sigterm to the group": ("crm up", signal.SIGTERM, True),
    # The same through `make run`, which passes its own SIGTERM on to `crm up` as well.
    "sigterm to the group, under make": ("make", signal.SIGTERM, True),
}


def _crm_up(how: str, tmp_path: Path) -> list[str]:
    """The command that starts `crm up` as STOPS says."""
    up = [sys.executable, "-m", "webapp.cli", "up"]
    if how == "background":
        return ["sh", "-c", 'trap "" INT; exec "$0" -m webapp.cli up', sys.executable]
    if how == "make":
        makefile = tmp_path / "Makefile"
        makefile.write_text(f"run:\n\t{shlex.join(up)}\n")
        return ["make", "--no-print-directory", "-f", str(makefile), "run"]
    return up


@pytest.mark.parametrize("stop", list(STOPS))
def test_crm_up_runs_everything_and_every_way_of_stopping_it_leaves_nothing(tmp_path, stop):
    """A fresh instance: migrate, seed, embedded Redis, web + worker + scheduler, the
    demo source's mentions arriving. Stopped any of the ways a terminal, a shell or a
    process manager stops it, it exits promptly and quietly (no traceback from any of
    its processes, "Stopped." last), and no process it started is left: the web server,
    the worker and its RQ scheduler, the cron scheduler, redis-server."""
    how, sig, to_group = STOPS[stop]
    if how == "make" and not shutil.which("make"):
        pytest.skip("make is not installed")
    port = _free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}
    }
    env.update(INSTANCE_PATH=str(tmp_path), PORT=str(port), ARGON2_PROFILE="CHEAPEST")
    log_path = tmp_path / "up.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            _crm_up(how, tmp_path),
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started: list[_Process] = []
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.3)
        # The worker listens, the scheduler has registered, and the demo source is
        # polled at once: its mentions arrive without any credentials.
        markers = (
            "Listening on high, default, low",
            "registering birth",
            "poll_source",
            "Job OK",
        )
        while time.monotonic() < deadline:
            if all(m in log_path.read_text() for m in markers):
                break
            time.sleep(0.3)
        while time.monotonic() < deadline:
            with sqlite3.connect(tmp_path / "crm.sqlite3") as conn:
                if conn.execute("select count(*) from mentions").fetchone()[0] >= 3:
                    break
            time.sleep(0.3)
        output = log_path.read_text()
        assert f"http://127.0.0.1:{port}/" in output
        assert "rep@demo.fieldcrm.test" in output and demo.PASSWORD in output
        assert all(m in output for m in markers), output
        socket_dir = Path(re.search(r"unix://(\S+)/redis.socket", output).group(1))

        started = _descendants(proc.pid)
        commands = [p.command for p in started]
        assert any("redis-server" in c for c in commands), commands
        assert any(c.endswith("webapp.cli worker ") for c in commands), commands
        assert any(c.endswith("webapp.cli scheduler ") for c in commands), commands
        up = proc.pid if how != "make" else next(p.pid for p in started if "cli up" in p.command)
        if to_group:
            os.killpg(proc.pid, sig)
        else:
            os.kill(up, sig)

        returncode = proc.wait(30)
        output = log_path.read_text()
        if how == "make":
            assert "make: ***" not in output, output  # `crm up` itself ended well
        else:
            assert returncode == 0, output
        assert "Traceback" not in output, output
        assert output.rstrip().endswith("Stopped."), output
        for _ in range(50):
            if not any(_alive(p) for p in started):
                break
            time.sleep(0.2)
        assert [p for p in started if _alive(p)] == [], output
        assert not socket_dir.exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # The children run in process groups of their own: stop by pid what a failed
        # assertion above left running.
        _kill_left_over(started)

    with sqlite3.connect(tmp_path / "crm.sqlite3") as conn:
        # A user per role, and the pipeline's two further reps.
        people = len(demo.USERS) + len(demo_sales.DEAL_REPS)
        assert conn.execute("select count(*) from users").fetchone()[0] == people
        assert conn.execute("select count(*) from contacts").fetchone()[0] >= 300
        assert conn.execute("select count(*) from sources where kind = 'demo'").fetchone()[0] == 1
        assert conn.execute("select count(*) from mentions").fetchone()[0] >= 3
        assert conn.execute("select count(*) from activities").fetchone()[0] > 300


def test_mentions_import_reports_stored_duplicates_and_rejected_lines(
    app, tmp_path, make_user, make_contact
):
    make_contact(make_user("rep"), name="Imported Match", handle_x="importfan")
    lines = [
        json.dumps(
            {
                "source": "x",
                "external_id": "1",
                "author_handle": "importfan",
                "author_name": "F",
                "text": "love it",
                "created_at": "2026-11-20T10:00:00Z",
                "url": "https://x.com/importfan/status/1",
                "author_followers": 10,
            }
        ),
        json.dumps(
            {
                "source": "x",
                "external_id": "1",
                "author_handle": "importfan",
                "text": "love it",
                "created_at": "2026-11-20T10:00:00Z",
            }
        ),
        "{not json",
        json.dumps(
            {
                "source": "x",
                "external_id": "2",
                "author_handle": "a",
                "text": "t",
                "created_at": "yesterday",
            }
        ),
        "",
        json.dumps(
            {
                "source": "myspace",
                "external_id": "3",
                "author_handle": "a",
                "text": "t",
                "created_at": "2026-11-20T10:00:00Z",
            }
        ),
        json.dumps(
            {
                "external_id": "4",
                "author_handle": "b",
                "text": "hello",
                "created_at": "2026-11-20T10:00:00+02:00",
                "mood": "ok",
            }
        ),
        # Half of a surrogate pair, escaped: valid JSON, but no database stores it.
        '{"source": "x", "external_id": "5", "author_handle": "c", "text": "half \\ud83d",'
        ' "created_at": "2026-11-20T10:00:00Z"}',
        # A NUL character, which PostgreSQL text refuses.
        '{"source": "x", "external_id": "6", "author_handle": "c", "text": "nul \\u0000",'
        ' "created_at": "2026-11-20T10:00:00Z"}',
    ]
    path = tmp_path / "mentions.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = app.test_cli_runner().invoke(args=["mentions", "import", str(path)])
    assert result.exit_code == 1
    assert "2 stored, 1 duplicate, 5 rejected (1 attached to contacts)." in result.output
    assert "line 3: not valid JSON" in result.output
    assert "line 4: created_at is not an ISO 8601 time" in result.output
    assert "line 6: source must be one of" in result.output
    assert "line 8: text has an unpaired surrogate escape" in result.output
    assert "line 9: text has a NUL character" in result.output
    with app.app_context():
        imported = db.session.scalar(select(Mention).where(Mention.external_id == "4"))
        assert imported.network == "import" and imported.extra == {"mood": "ok"}
        assert imported.posted_at == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    again = app.test_cli_runner().invoke(args=["mentions", "import", str(path)])
    assert "0 stored, 3 duplicate, 5 rejected" in again.output
