"""Two people acting on one mention at the same moment: real requests on threads of
their own (each its own client, app context and database connection), released together
by a barrier. A lock held from outside makes both reach the database before either is
let through, so the race happens every run instead of by luck."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from tests.conftest import sign_in
from tests.social.fake_replies import bluesky_replies
from tests.webapp.incoming import count
from webapp.extensions import db
from webapp.models import AuditEvent, Mention, Reply, Source
from webapp.services import mentions
from workers import jobs


class Held:
    """Writes held back by another connection until release, reads let by: on
    PostgreSQL the table's (LOCK TABLE ... IN SHARE MODE), on SQLite the database's
    (BEGIN IMMEDIATE). waiting() says how many requests wait: on PostgreSQL the sessions
    waiting for a lock, on SQLite the threads that began a write (which a writer waiting
    on busy_timeout leaves no other trace of)."""

    def __init__(self, app, table: str) -> None:
        with app.app_context():
            self.app_engine = db.engine
        self.sqlite = self.app_engine.dialect.name == "sqlite"
        self.engine = sa.create_engine(self.app_engine.url)
        self.conn = self.engine.connect()
        if self.sqlite:
            self.writers: set[int] = set()
            sa.event.listen(self.app_engine, "before_cursor_execute", self._seen)
            self.conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            self.conn.execute(sa.text(f"LOCK TABLE {table} IN SHARE MODE"))

    def _seen(self, _conn, _cursor, statement: str, *_args) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            self.writers.add(threading.get_ident())

    def waiting(self) -> int:
        if self.sqlite:
            return len(self.writers)
        # pg_locks, not pg_stat_activity: that one is read once per transaction.
        query = "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted"
        return self.conn.scalar(sa.text(query))

    def release(self) -> None:
        if self.sqlite:
            sa.event.remove(self.app_engine, "before_cursor_execute", self._seen)
            self.conn.exec_driver_sql("ROLLBACK")
        else:
            self.conn.rollback()
        self.conn.close()
        self.engine.dispose()


def at_once(app, table: str, *requests: Callable[[], object]) -> list:
    """Run each request on a thread of its own, started together, while table's writes
    are held back until all of them wait at the database; their answers, in order."""
    held = Held(app, table)
    barrier = threading.Barrier(len(requests))
    answers: list = [None] * len(requests)

    def run(i: int) -> None:
        barrier.wait()
        try:
            answers[i] = requests[i]()
        except Exception as exc:  # a 500 in a test app: shown by the assertion below
            answers[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while held.waiting() < len(requests):
            assert time.monotonic() < deadline, "the requests never reached the database"
            time.sleep(0.01)
    finally:
        held.release()
        for thread in threads:
            thread.join(timeout=20)
    assert not [a for a in answers if a is None or isinstance(a, Exception)], answers
    return answers


@pytest.fixture
def fake(app, redis_url):
    app.config["REDIS_URL"] = redis_url
    app.config["OUTBOUND_ALLOW_PRIVATE"] = True
    with bluesky_replies() as running:
        yield running


def _stored(app, fake) -> int:
    with app.app_context():
        source = Source(name="Brand on Bluesky", kind="bluesky", config=fake.config)
        db.session.add(source)
        db.session.flush()
        (mention_id,) = mentions.ingest(db.session, [fake.mention(1, "where is it")], source).stored
        db.session.commit()
        return mention_id


def _form(client, url: str) -> dict:
    page = client.get(url).get_data(as_text=True)
    return {
        name: re.search(rf'name="{name}" value="([^"]+)"', page)[1]
        for name in ("csrf_token", "key", "thread", "seen")
    }


def test_two_agents_assigning_to_themselves_at_once_one_assignment_stands(app, make_user, fake):
    mention_id = _stored(app, fake)
    url = f"/inbox/{mention_id}"
    alice, bob = app.test_client(), app.test_client()
    sign_in(alice, make_user("support", name="Alice Agent"))
    sign_in(bob, make_user("support", name="Bob Agent"))
    forms = [_form(alice, url), _form(bob, url)]
    assert forms[0]["seen"] == forms[1]["seen"] == "none"

    def assign(client, form):
        data = {"csrf_token": form["csrf_token"], "seen": form["seen"], "assign_me": "1"}
        return lambda: client.post(f"{url}/assign", data=data)

    answers = at_once(app, "mentions", assign(alice, forms[0]), assign(bob, forms[1]))

    assert [a.status_code for a in answers] == [303, 303]
    with app.app_context():
        holder = db.session.get(Mention, mention_id).assignee.name
        entries = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "mention.assign")
        ).all()
    assert holder in ("Alice Agent", "Bob Agent")
    assert len(entries) == 1 and entries[0].changes == {"assignee": [None, holder]}
    loser = bob if holder == "Alice Agent" else alice
    page = loser.get(url).get_data(as_text=True)
    assert f"Someone changed it first: it is now assigned to {holder}." in page
    winner = alice if loser is bob else bob
    assert f"Assigned to {holder}." in winner.get(url).get_data(as_text=True)


def test_two_agents_replying_at_once_the_second_is_told_what_the_first_said(app, make_user, fake):
    mention_id = _stored(app, fake)
    url = f"/inbox/{mention_id}"
    alice, bob = app.test_client(), app.test_client()
    sign_in(alice, make_user("support", name="Alice Agent"))
    sign_in(bob, make_user("support", name="Bob Agent"))
    forms = [_form(alice, url), _form(bob, url)]
    assert forms[0]["thread"] == forms[1]["thread"]

    def reply(client, form, body):
        return lambda: client.post(f"{url}/reply", data={**form, "body": body})

    answers = at_once(
        app,
        "replies",
        reply(alice, forms[0], "Alice here: it ships today"),
        reply(bob, forms[1], "Bob here: refund on its way"),
    )

    assert sorted(a.status_code for a in answers) == [303, 409]
    held = next(a for a in answers if a.status_code == 409).get_data(as_text=True)
    with app.app_context():
        (reply_row,) = db.session.scalars(select(Reply)).all()
        first = reply_row.author.name
        body = reply_row.body
    assert "Not sent: the thread changed since you opened it." in held
    assert f"{first} replied: {body}" in held
    # The held-back draft stays in the form, to be sent or changed.
    drafts = {
        "Alice Agent": "Bob here: refund on its way",
        "Bob Agent": "Alice here: it ships today",
    }
    assert f">{drafts[first]}</textarea>" in held
    with app.app_context():
        assert [r["state"] for r in _send(app)] == ["sent"]
    assert len(fake.replies()) == 1


def test_a_double_tap_at_once_makes_one_reply_and_one_post(app, make_user, fake):
    mention_id = _stored(app, fake)
    url = f"/inbox/{mention_id}"
    phone, again = app.test_client(), app.test_client()
    user = make_user("support", name="Sam Support")
    sign_in(phone, user)
    sign_in(again, user)
    form = {**_form(phone, url), "body": "On its way!"}

    answers = at_once(
        app,
        "replies",
        lambda: phone.post(f"{url}/reply", data=form),
        lambda: again.post(f"{url}/reply", data=form),
    )

    assert [a.status_code for a in answers] == [303, 303]
    with app.app_context():
        assert count(Reply) == 1
        outcomes = _send(app)
    assert [o["state"] for o in outcomes] == ["sent"]
    assert [r["value"]["text"] for r in fake.replies()] == ["@fan1.bsky.social On its way!"]
    assert "<strong>Sent</strong>" in phone.get(url).get_data(as_text=True)


def _send(app) -> list:
    """Run each queued reply's job, as a worker would."""
    ids = db.session.scalars(select(Reply.id).order_by(Reply.id)).all()
    db.session.rollback()
    return [jobs.send_reply(reply_id) for reply_id in ids]
