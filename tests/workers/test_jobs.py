"""The workers' jobs (workers/jobs.py): purges; polls in one transaction each, never two
of a source at once, rate limits and spend caps honoured, exactly once through retries, a
killed worker and a Redis restart; ingest batches run twice or holding a bad mention."""

import http.server
import os
import signal
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rq import Queue, Retry, SimpleWorker
from sqlalchemy import func, select

from social.mention import FetchResult, MentionError, RateLimited, SourceError, UsageCapped
from social.mention import Mention as Incoming
from tests.workers.processes import (
    crm_env,
    external_ids,
    mention,
    output,
    start_crm,
    stored_count,
    timeline,
)
from webapp.extensions import db
from webapp.models import Contact, LoginFailure, Mention, Source
from webapp.models.base import utcnow
from webapp.services import polls, sources
from workers import jobs, queues
from workers.queues import EmbeddedRedis, connect


def _source(kind="demo", **fields) -> Source:
    fields.setdefault("config", {"batch": 3})
    source = Source(name=f"{kind} source", kind=kind, **fields)
    db.session.add(source)
    db.session.commit()
    return source


def test_purge_job_removes_only_contacts_deleted_long_ago(
    app, make_user, make_contact, redis, isolated_queue
):
    rep = make_user("rep")
    old, recent, _live = (make_contact(rep, name=n) for n in ("Old Gone", "Recent Gone", "Live"))
    with app.app_context():
        db.session.get(Contact, old.id).deleted_at = utcnow() - timedelta(days=31)
        db.session.get(Contact, recent.id).deleted_at = utcnow() - timedelta(days=1)
        db.session.commit()
        job = isolated_queue.enqueue(jobs.purge_deleted_contacts)
        SimpleWorker([isolated_queue], connection=redis).work(burst=True)
        assert job.get_status() == "finished"
        assert job.return_value() == 1
        assert {c.name for c in db.session.query(Contact)} == {"Recent Gone", "Live"}


def test_purge_login_failures_keeps_recent_ones(app, redis, isolated_queue):
    with app.app_context():
        db.session.add_all(
            [
                LoginFailure(key="account:a", at=utcnow() - timedelta(days=2)),
                LoginFailure(key="account:b"),
            ]
        )
        db.session.commit()
        isolated_queue.enqueue(jobs.purge_login_failures)
        SimpleWorker([isolated_queue], connection=redis).work(burst=True)
        assert [f.key for f in db.session.query(LoginFailure)] == ["account:b"]


def test_demo_source_polled_by_a_worker_stores_and_advances(app, redis):
    queue = Queue(f"test-{uuid.uuid4().hex[:8]}", connection=redis)
    with app.app_context():
        source = _source()
        for expected_cursor in ("3", "6"):
            job = queue.enqueue(jobs.poll_source, source.id)
            SimpleWorker([queue], connection=redis).work(burst=True)
            assert job.return_value() == {"stored": 3, "duplicates": 0, "attached": 0}
            db.session.refresh(source)
            assert source.cursor == expected_cursor
        assert stored_count() == 6
        assert source.mentions_stored == 6 and source.last_error is None
        # A poll replayed from an old cursor (a retried job) stores nothing twice.
        source.cursor = "3"
        db.session.commit()
        job = queue.enqueue(jobs.poll_source, source.id)
        SimpleWorker([queue], connection=redis).work(burst=True)
        assert job.return_value() == {"stored": 0, "duplicates": 3, "attached": 0}
        assert stored_count() == 6


def test_a_failed_poll_says_why_and_keeps_the_cursor(app):
    def broken(config, cursor):
        raise SourceError("X rejected the token: check it in the source's settings.")

    with app.app_context():
        source = _source(kind="x", config={}, cursor="42")
        assert polls.poll(db.session, source, broken) is None
        db.session.commit()
        assert source.cursor == "42"
        assert source.last_error == "X rejected the token: check it in the source's settings."
        assert source.last_polled_at is not None and source.last_success_at is None


def test_a_rate_limit_reschedules_instead_of_sleeping(app):
    reset = utcnow() + timedelta(minutes=7)

    def limited(config, cursor):
        raise RateLimited("429", reset)

    with app.app_context():
        source = _source(kind="x", config={}, interval_seconds=60)
        polls.poll(db.session, source, limited)
        db.session.commit()
        assert source.retry_after == reset
        assert "Rate limited" in source.last_error
        later = utcnow() + timedelta(minutes=5)
        assert source not in polls.due_sources(db.session, later)
        assert source in polls.due_sources(db.session, reset + timedelta(seconds=1))


def test_usage_capped_stops_polling(app):
    def capped(config, cursor):
        raise UsageCapped("usage-capped")

    with app.app_context():
        source = _source(kind="x", config={})
        polls.poll(db.session, source, capped)
        db.session.commit()
        assert source.capped_at is not None
        assert source not in polls.due_sources(db.session, utcnow() + timedelta(hours=1))


def test_x_spend_cap_stops_polling_and_says_so(app, client, login, make_user):
    when = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    def reads(config, cursor):
        post = Incoming("x", f"p{cursor or 0}", "fan", "Fan", "ok", when)
        return FetchResult([post], str(int(cursor or 0) + 1), reads=2000)

    with app.app_context():
        source = _source(kind="x", config={}, monthly_cap_usd=24.0)
        now = utcnow()
        polls.poll(db.session, source, reads, now)  # 2000 reads = $10
        assert source.capped_at is None
        assert sources.spend_usd(source, now) == 10.0
        polls.poll(db.session, source, reads, now)  # $20: one more poll could pass $24
        db.session.commit()
        assert source.capped_at is not None
        assert source not in polls.due_sources(db.session, now + timedelta(hours=1))
        # A poll that would overspend is not made.
        assert polls.poll(db.session, source, reads, now) is None
        assert sources.reads_this_month(source, now) == 4000
        db.session.commit()
        # A new month starts from zero.
        assert sources.spend_usd(source, now + timedelta(days=40)) == 0
        source_id = source.id
    login(make_user("admin"))
    assert "stopped polling: its monthly spend cap is reached" in client.get("/inbox/").get_data(
        as_text=True
    )
    page = client.get(f"/sources/{source_id}").get_data(as_text=True)
    assert "Stopped: monthly spend cap reached" in page and "$20.00 of a $24.00 cap" in page


def test_dispatch_queues_each_due_source_once(app, redis, isolated_queue):
    with app.app_context():
        due, paused, recent = _source(), _source(enabled=False), _source(last_polled_at=utcnow())
        first = jobs.enqueue_poll(due.id, redis, queue_name=isolated_queue.name)
        assert first is not None
        assert jobs.enqueue_poll(due.id, redis, queue_name=isolated_queue.name) is None
        due_now = {s.id for s in polls.due_sources(db.session, utcnow())}
        assert due_now == {due.id} and not {paused.id, recent.id} & due_now
        # Once the poll has run, the source can be queued again.
        SimpleWorker([isolated_queue], connection=redis).work(burst=True)
        assert first.get_status() == "finished"
        again = jobs.enqueue_poll(due.id, redis, queue_name=isolated_queue.name)
        assert again is not None
        SimpleWorker([isolated_queue], connection=redis).work(burst=True)
        assert again.get_status() == "finished"


FEED = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Reviews</title><link>https://reviews.example/</link>
<description>Reviews</description>
{items}
</channel></rss>"""


ITEM = """<item><title>Review {n}</title><link>https://reviews.example/r/{n}</link>
<guid>https://reviews.example/r/{n}</guid>
<description>Review number {n}: great service.</description>
<pubDate>Fri, 20 Nov 2026 10:{n:02d}:00 GMT</pubDate></item>"""


class _Feed(http.server.BaseHTTPRequestHandler):
    first_request = threading.Event()
    release = threading.Event()

    def do_GET(self):
        if not _Feed.first_request.is_set():
            _Feed.first_request.set()
            # Hold the first poll until its work-horse is killed.
            _Feed.release.wait(30)
        body = FEED.format(items="\n".join(ITEM.format(n=n) for n in range(12))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_a_worker_killed_mid_poll_leaves_every_mention_stored_once(app, redis, redis_url, tmp_path):
    """SIGKILL the work-horse while it waits on the feed: the retried job stores all 12
    entries exactly once and advances the cursor."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    _Feed.first_request.clear()
    _Feed.release.clear()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    queue_name = f"test-{uuid.uuid4().hex[:8]}"
    with app.app_context():
        url = f"http://127.0.0.1:{server.server_port}/feed.xml"
        source_id = _source(kind="rss", config={"url": url}).id
        database_url = app.config["SQLALCHEMY_DATABASE_URI"]
    job = Queue(queue_name, connection=redis).enqueue(
        jobs.poll_source, source_id, retry=Retry(max=2), job_timeout=60
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(tmp_path),
        "SECRET_KEY": "x",
        "CRM_RSS_ALLOW_PRIVATE": "1",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "webapp.cli", "worker", "--burst", queue_name],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert _Feed.first_request.wait(30), "the worker never fetched the feed"
        horses = _children(worker.pid)
        assert horses, "no work-horse to kill"
        for pid in horses:
            os.kill(pid, signal.SIGKILL)
        _Feed.release.set()
        output, _ = worker.communicate(timeout=90)
    finally:
        _Feed.release.set()
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        server.shutdown()
        server.server_close()
    job.refresh()
    assert job.get_status() == "finished", output
    with app.app_context():
        assert stored_count() == 12
        assert db.session.scalar(select(func.count(func.distinct(Mention.external_id)))) == 12
        stored = db.session.get(Source, source_id)
        assert stored.mentions_stored == 12 and stored.cursor


def test_a_redis_restart_loses_no_mention_and_doubles_none(app, tmp_path):
    """Queues and locks live in Redis; mentions and cursors in the database. A restart
    that keeps the queue re-runs the old job harmlessly; one that loses it is made good
    by the next dispatch, which polls from the stored cursor."""
    server = EmbeddedRedis(tmp_path / "redis.db")
    with app.app_context():
        source_id = _source().id
        try:
            redis = connect(server.start())
            queued = jobs.enqueue_poll(source_id, redis)
            SimpleWorker(["default"], connection=redis).work(burst=True)
            assert queued.return_value()["stored"] == 3
            # Queued again, then the server restarts keeping its data (saved on shutdown).
            again = jobs.enqueue_poll(source_id, redis)
            db.session.get(Source, source_id).cursor = None  # as if the first poll re-ran
            db.session.commit()
            server.stop()
            redis = connect(server.start())
            assert again.id in Queue("default", connection=redis).job_ids
            SimpleWorker(["default"], connection=redis).work(burst=True)
            assert stored_count() == 3
            # Now a restart that loses everything: the dispatcher polls again, once.
            jobs.enqueue_poll(source_id, redis)
            server.stop()
            (tmp_path / "redis.db").unlink(missing_ok=True)
            redis = connect(server.start())
            assert Queue("default", connection=redis).count == 0
            source = db.session.get(Source, source_id)
            source.last_polled_at = None
            db.session.commit()
            job = Queue("default", connection=redis).enqueue(jobs.dispatch_polls)
            SimpleWorker(["default"], connection=redis).work(burst=True)
            assert job.return_value() == 1
            assert stored_count() == 6
            assert len(set(db.session.scalars(select(Mention.external_id)))) == 6
        finally:
            server.stop()


def test_a_batch_run_twice_stores_each_mention_once(
    app, redis, redis_url, queue_name, tmp_path, make_user, make_contact
):
    """A batch's job run again (its key queued twice here) stores nothing twice and
    says so; a batch no longer in Redis fails naming its key."""
    contact = make_contact(make_user("rep"), name="Twice Fan", handle_x="twicefan")
    batch = [mention(1), mention(2, "twicefan", source="x"), mention(3)]
    first = jobs.enqueue_ingest(
        batch, connection=redis, queue_name=queue_name, default_network="import"
    )
    key = jobs.BATCH_KEY.format(first.id)
    assert redis.ttl(key) > jobs.STORED_BATCH_TTL
    second = queues.enqueue(
        jobs.ingest_batch, key, None, "import", queue_name=queue_name, connection=redis
    )
    log = tmp_path / "worker.log"
    worker = start_crm(crm_env(app, redis_url, tmp_path), log, "worker", "--burst", queue_name)
    try:
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert first.get_status() == second.get_status() == "finished", output(log)
    assert first.return_value() == {"stored": 3, "duplicates": 0, "attached": 1}
    assert second.return_value() == {"stored": 0, "duplicates": 3, "attached": 0}
    # Stored: kept only an hour more, for a run again such as the second one.
    assert 0 < redis.ttl(key) <= jobs.STORED_BATCH_TTL
    with app.app_context():
        assert external_ids() == ["q1", "q2", "q3"]
        assert len(timeline(contact.id)) == 1

    missing = f"crm:ingest:gone-{uuid.uuid4().hex}"
    app.config["REDIS_URL"] = redis_url  # outside a job ingest_batch connects itself
    with app.app_context():
        with pytest.raises(jobs.BatchGone) as gone:
            jobs.ingest_batch(missing)
        assert missing in str(gone.value)
        assert stored_count() == 3


def test_a_batch_with_a_malformed_mention_stores_nothing_and_says_which(
    app, redis, redis_url, queue_name, monkeypatch
):
    bad = {k: v for k, v in mention(2).items() if k != "external_id"}
    job = jobs.enqueue_ingest(
        [mention(1), bad, mention(3)],
        connection=redis,
        queue_name=queue_name,
        default_network="import",
    )
    app.config["REDIS_URL"] = redis_url
    with app.app_context():
        with pytest.raises(MentionError) as error:
            jobs.ingest_batch(jobs.BATCH_KEY.format(job.id), None, "import")
        assert str(error.value) == "mention 2 of the batch: external_id is missing"
        assert stored_count() == 0
    # The batch stays for a run again once what is wrong is put right.
    assert redis.ttl(jobs.BATCH_KEY.format(job.id)) > jobs.STORED_BATCH_TTL
