"""Replies benchmark: --replies queued replies sent by one real `crm worker` process to a
local Bluesky (tests/social/fake_replies.py: the real atproto client, sign-in once,
getPosts, createRecord under the reply's record key), on SQLite and, with --postgres
URL, on a PostgreSQL database of this bench's own (emptied on every run).

Prints the time from the first job taken to the last reply sent and the rate, and checks
that each reply was posted exactly once.

    .venv/bin/python bench/bench_replies.py
    .venv/bin/python bench/bench_replies.py --postgres postgresql://postgres@127.0.0.1:5432/crm_bench_replies
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_today import reset_postgres  # noqa: E402
from report import table  # noqa: E402

from tests.social.fake_replies import bluesky_replies  # noqa: E402


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_backend(name: str, url: str, count: int, redis_url: str) -> list:
    from rq import Queue

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Reply, Source, User
    from webapp.models.base import utcnow
    from webapp.services import mentions
    from workers import jobs
    from workers.queues import connect

    instance = Path(tempfile.mkdtemp(prefix="bench-replies-"))
    os.environ["INSTANCE_PATH"] = str(instance)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            "SECRET_KEY_FROM_DISK": False,
            "REDIS_URL": redis_url,
            "OUTBOUND_ALLOW_PRIVATE": True,
        }
    )
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    with bluesky_replies() as fake, app.app_context():
        agent = User(
            email="agent@bench.test",
            name="Bench Agent",
            role="support",
            password_hash="-",  # noqa: S106
        )
        source = Source(name="Brand", kind="bluesky", config=fake.config)
        db.session.add_all([agent, source])
        db.session.flush()
        ids = mentions.ingest(
            db.session,
            [fake.mention(n, f"@brand question {n}") for n in range(1, count + 1)],
            source,
        ).stored
        now = utcnow()
        db.session.add_all(
            Reply(
                key=str(uuid.uuid4()),
                mention_id=mention_id,
                author_id=agent.id,
                body=f"Thanks, answered {n}",
                state="queued",
                attempts=0,
                created_at=now,
                updated_at=now,
            )
            for n, mention_id in enumerate(ids)
        )
        db.session.commit()
        reply_ids = db.session.scalars(sa.select(Reply.id).order_by(Reply.id)).all()
        db.session.rollback()  # no transaction of ours stands in the worker's way
        redis = connect(redis_url)
        queue_name = f"bench-replies-{uuid.uuid4().hex[:8]}"
        queue = Queue(queue_name, connection=redis)
        before = set(redis.scan_iter())
        for reply_id in reply_ids:
            queue.enqueue(jobs.send_reply, reply_id)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": "bench",
            "OUTBOUND_ALLOW_PRIVATE": "1",
        }
        log(f"{name}: {count:,} replies queued; one worker sends them")
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "webapp.cli", "worker", "--burst", queue_name],
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(done.stderr[-2000:])
        # Nothing of this run stays in Redis: the keys it made (its jobs and their
        # results, its queue and registries, the worker's, the session it kept) go.
        for key in set(redis.scan_iter()) - before:
            redis.delete(key)
        db.session.expire_all()
        sent = db.session.scalar(
            sa.select(sa.func.count()).select_from(Reply).where(Reply.state == "sent")
        )
        posted = len(fake.replies())
    return [
        name,
        f"{count:,}",
        f"{sent:,}",
        f"{posted:,}",
        f"{seconds:.1f}",
        f"{count / seconds:.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=1000)
    parser.add_argument("--postgres", help="a PostgreSQL database of this bench's own")
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL")
    embedded = None
    if not redis_url:
        from workers.queues import EmbeddedRedis

        embedded = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="bench-redis-")) / "redis.db")
        redis_url = embedded.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder, "bench.db")
            rows.append(run_backend("SQLite", f"sqlite:///{path}", args.replies, redis_url))
        if args.postgres:
            reset_postgres(args.postgres)
            rows.append(run_backend("PostgreSQL", args.postgres, args.replies, redis_url))
    finally:
        if embedded:
            embedded.stop()
    print(
        table(["backend", "queued", "sent", "posted on the network", "seconds", "replies/s"], rows)
    )


if __name__ == "__main__":
    main()
