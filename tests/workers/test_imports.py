"""Imports stored by workers (workers/imports.py): `crm mentions import --queue` end to
end, waiting (and saying so) for a worker, reporting like a local import."""

import json

from rq import Queue
from sqlalchemy import select

from tests.workers.processes import (
    NO_WORKER,
    crm_env,
    external_ids,
    mention,
    output,
    start_crm,
    stop,
    stored_count,
    timeline,
    wait_for,
)
from webapp.extensions import db
from webapp.models import Mention


def test_import_through_a_queue_reports_like_a_local_import(
    app, redis, redis_url, queue_name, tmp_path, make_user, make_contact
):
    """The CLI queues the good lines in batches, waits (saying so) until a worker is
    there, and reports what the workers stored; a second run stores nothing new."""
    contact = make_contact(make_user("rep"), name="Queued Fan", handle_x="queuedfan")
    lines = [
        json.dumps(mention(1)),
        json.dumps(mention(2, "queuedfan", source="x")),
        "{not json",
        json.dumps(mention(3)),
        json.dumps(mention(2, "queuedfan", source="x")),  # line 2 again, in another batch
        json.dumps(mention(4)),
        json.dumps({k: v for k, v in mention(99).items() if k != "text"}),
        json.dumps(mention(5)),
        "",
        json.dumps(mention(6)),
        json.dumps(mention(7)),
    ]
    path = tmp_path / "mentions.jsonl"
    path.write_text("\n".join(lines) + "\n")
    env = crm_env(app, redis_url, tmp_path)
    args = ("mentions", "import", str(path), "--batch", "3", "--queue", queue_name)
    cli_log, worker_log = tmp_path / "import.log", tmp_path / "worker.log"
    cli = start_crm(env, cli_log, *args)
    worker = None
    try:
        # No worker yet: the batches wait in the queue, and the CLI says why it waits.
        queue = Queue(queue_name, connection=redis)
        wait_for(lambda: queue.count == 3, "three batches queued")
        wait_for(lambda: NO_WORKER in output(cli_log), "the no-worker notice")
        assert cli.poll() is None, output(cli_log)
        worker = start_crm(env, worker_log, "worker", queue_name)
        cli.wait(timeout=30)
        out = cli_log.read_text()
        err = cli_log.with_suffix(".err").read_text()
        assert cli.returncode == 1, out + err
        assert out.strip() == "7 stored, 1 duplicate, 2 rejected (1 attached to contacts).", err
        rejected = [line.strip() for line in err.splitlines() if line.startswith("  line ")]
        assert len(rejected) == 2, err
        assert rejected[0].startswith("line 3: not valid JSON")
        assert rejected[1] == "line 7: text is missing"
        assert "not stored" not in err
        assert queue.count == 0
        with app.app_context():
            assert external_ids() == [f"q{n}" for n in range(1, 8)]
            [attached] = db.session.scalars(select(Mention).where(Mention.contact_id.is_not(None)))
            assert (attached.network, attached.external_id) == ("x", "q2")
            first = db.session.scalar(select(Mention).where(Mention.external_id == "q1"))
            assert first.network == "import"
            [entry] = timeline(contact.id)
            assert (entry.kind, entry.mention_id) == ("mention", attached.id)

        # The same file again, from this process, while the worker still runs.
        app.config["REDIS_URL"] = redis_url
        again = app.test_cli_runner().invoke(args=list(args))
        assert again.exit_code == 1, again.output
        assert again.stdout.strip() == (
            "0 stored, 8 duplicate, 2 rejected (0 attached to contacts)."
        )
        assert NO_WORKER not in again.stderr
        assert "line 3: not valid JSON" in again.stderr
        assert "line 7: text is missing" in again.stderr
        with app.app_context():
            assert stored_count() == 7
            assert len(timeline(contact.id)) == 1
        assert worker.poll() is None, output(worker_log)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        if worker is not None:
            stop(worker)
