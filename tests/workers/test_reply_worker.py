"""A reply sent by a real `crm worker` process to a local Bluesky, once, even when the
job is run a second time by another worker."""

import re
import subprocess
import sys

from rq import Queue
from sqlalchemy import select

from tests.social.fake_replies import bluesky_replies
from tests.workers.processes import crm_env
from webapp.extensions import db
from webapp.models import Reply, Source
from webapp.services import mentions
from workers import jobs


def test_a_real_worker_posts_the_reply_once(
    app, client, login, make_user, redis, redis_url, queue_name, tmp_path
):
    app.config["REDIS_URL"] = redis_url
    with bluesky_replies() as fake:
        with app.app_context():
            source = Source(name="Brand", kind="bluesky", config=fake.config)
            db.session.add(source)
            db.session.flush()
            (mention_id,) = mentions.ingest(db.session, [fake.mention(1)], source).stored
            db.session.commit()
        login(make_user("support"))
        url = f"/inbox/{mention_id}"
        page = client.get(url).get_data(as_text=True)
        form = {
            name: re.search(rf'name="{name}" value="([^"]+)"', page)[1]
            for name in ("csrf_token", "key", "thread")
        }
        assert client.post(f"{url}/reply", data={**form, "body": "Thanks!"}).status_code == 303
        with app.app_context():
            reply_id = db.session.scalars(select(Reply.id)).one()
        # The job twice on this test's queue, as a retried job would be.
        queue = Queue(queue_name, connection=redis)
        first = queue.enqueue(jobs.send_reply, reply_id)
        second = queue.enqueue(jobs.send_reply, reply_id)
        env = {**crm_env(app, redis_url, tmp_path), "OUTBOUND_ALLOW_PRIVATE": "1"}
        done = subprocess.run(
            [sys.executable, "-m", "webapp.cli", "worker", "--burst", queue_name],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert done.returncode == 0, done.stderr
        first.refresh()
        second.refresh()
        assert first.return_value()["state"] == "sent", done.stderr
        assert second.return_value() is None
        assert [r["value"]["text"] for r in fake.replies()] == ["@fan1.bsky.social Thanks!"]
        with app.app_context():
            assert db.session.get(Reply, reply_id).state == "sent"
