"""Polling sources: one transaction per poll, never two polls at once, rate limits and
spend caps honoured, and exactly once through retries and a killed worker."""

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

from social.mention import FetchResult, RateLimited, SourceError, UsageCapped
from social.mention import Mention as Incoming
from webapp.extensions import db
from webapp.models import Mention, Source
from webapp.models.base import utcnow
from webapp.services import polls, sources
from workers import jobs
from workers.queues import EmbeddedRedis, connect


@pytest.fixture
def redis(redis_url):
    return connect(redis_url)


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(Mention))


def _source(kind="demo", **fields) -> Source:
    fields.setdefault("config", {"batch": 3})
    source = Source(name=f"{kind} source", kind=kind, **fields)
    db.session.add(source)
    db.session.commit()
    return source


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
        assert _count() == 6
        assert source.mentions_stored == 6 and source.last_error is None
        # A poll replayed from an old cursor (a retried job) stores nothing twice.
        source.cursor = "3"
        db.session.commit()
        job = queue.enqueue(jobs.poll_source, source.id)
        SimpleWorker([queue], connection=redis).work(burst=True)
        assert job.return_value() == {"stored": 0, "duplicates": 3, "attached": 0}
        assert _count() == 6


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


def test_dispatch_queues_each_due_source_once(app, redis, monkeypatch):
    with app.app_context():
        due, paused, recent = _source(), _source(enabled=False), _source(last_polled_at=utcnow())
        monkeypatch.setattr(
            jobs, "_poll_lock", lambda sid: f"test:poll:{uuid.uuid4().hex[:6]}:{sid}"
        )
        first = jobs.enqueue_poll(due.id, redis)
        assert first is not None
        monkeypatch.setattr(jobs, "_poll_lock", lambda sid: f"test:poll:fixed:{sid}")
        assert jobs.enqueue_poll(due.id, redis) is not None
        assert jobs.enqueue_poll(due.id, redis) is None  # already queued
        due_now = {s.id for s in polls.due_sources(db.session, utcnow())}
        assert due_now == {due.id} and not {paused.id, recent.id} & due_now
        first.cancel()
        redis.delete(f"test:poll:fixed:{due.id}")
        Queue("default", connection=redis).empty()


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
        assert _count() == 12
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
            redis.delete(jobs._poll_lock(source_id))
            again = jobs.enqueue_poll(source_id, redis)
            db.session.get(Source, source_id).cursor = None  # as if the first poll re-ran
            db.session.commit()
            server.stop()
            redis = connect(server.start())
            assert again.id in Queue("default", connection=redis).job_ids
            SimpleWorker(["default"], connection=redis).work(burst=True)
            assert _count() == 3
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
            assert _count() == 6
            assert len(set(db.session.scalars(select(Mention.external_id)))) == 6
        finally:
            server.stop()
