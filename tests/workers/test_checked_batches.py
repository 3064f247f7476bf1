"""Queued imports hand the workers checked mentions (workers.jobs.enqueue_checked): each
line is parsed once, by the command, and a worker stores what it receives as it is,
the same rows a local import stores."""

import json

from rq import Queue, SimpleWorker
from sqlalchemy import delete, select

from social import mention as social_mention
from tests.workers.processes import crm_env, mention, output, start_crm, stop, timeline
from webapp.extensions import db
from webapp.models import Activity, Mention
from workers import imports, jobs

# Lines of every kind a file holds: plain, by a contact, with an author id, counts and a
# language, extra fields (nested), a number as the external id (accepted by the checks
# in Python only), an emoji, and the refused ones: a NUL, half a surrogate pair, a
# wrong type, invalid JSON.
LINES = [
    json.dumps(mention(1)),
    json.dumps(mention(2, "@CheckedFan", source="x", author_followers=12, language="en")),
    json.dumps(mention(3, source="bluesky", author_id="did:plc:abc", in_reply_to="q1")),
    json.dumps(mention(4, campaign="spring", tags=["a", {"b": [1, 2.5, None]}])),
    json.dumps({**mention(5), "external_id": 5005}),
    json.dumps(mention(6, text="Love it 😍 \u00e9t\u00e9", url="https://x.example/6")),
    json.dumps(mention(7, text="bad \u0000 byte")),
    '{"external_id": "q8", "author_handle": "a", "text": "half \\ud83d", "created_at": "2026-11-20T10:08:00Z"}',  # noqa: E501
    json.dumps(mention(9, author_followers="many")),
    "{not json",
    json.dumps(mention(10, source="mastodon", author_handle="Fan@Mastodon.Social")),
]
REJECTED = [
    (7, "text has a NUL character (\\u0000)"),
    (8, "text has an unpaired surrogate escape (\\ud800-\\udfff)"),
    (9, "author_followers must be a whole number or null"),
]
STORED = 7

_COLUMNS = (
    "network external_id source_id author_handle author_name author_followers author_id"
    " text url posted_at in_reply_to language extra compound pos neu neg label"
    " sentiment_status contact_id"
).split()


def _rows() -> list[tuple]:
    """Every stored mention as the inbox and the reports read it (ids and the time of
    storing aside), with its timeline entries."""
    rows = []
    for m in db.session.scalars(select(Mention).order_by(Mention.external_id)):
        entries = [(a.kind, a.contact_id, a.occurred_at) for a in timeline(m.contact_id or 0)]
        rows.append((*(getattr(m, name) for name in _COLUMNS), entries))
    return rows


def _forget_stored() -> None:
    db.session.execute(delete(Activity).where(Activity.mention_id.is_not(None)))
    db.session.execute(delete(Mention))
    db.session.commit()


def test_a_queued_import_stores_the_rows_a_local_import_stores(
    app, redis, redis_url, queue_name, tmp_path, make_user, make_contact
):
    """Through a real `crm worker`, the checked batches become the same rows, scores,
    contacts and timeline entries as storing them from the command; the refused lines
    are reported the same way by both."""
    rep = make_user("rep")
    make_contact(rep, name="Checked Fan", handle_x="checkedfan")
    make_contact(rep, name="Fan Account", handle_mastodon="fan@mastodon.social")
    lines = [line + "\n" for line in LINES]
    with app.app_context():
        local = imports.import_lines(lines, batch=4, say=lambda text: None)
        assert local.totals == {"stored": STORED, "duplicates": 0, "attached": 2}
        assert local.rejected[:3] == REJECTED
        assert local.rejected[3][0] == 10 and local.rejected[3][1].startswith("not valid JSON")
        expected = _rows()
        _forget_stored()

    worker = start_crm(crm_env(app, redis_url, tmp_path), tmp_path / "w.log", "worker", queue_name)
    try:
        with app.app_context():
            queued = imports.import_lines(
                lines, batch=4, queue_name=queue_name, redis_url=redis_url, say=print
            )
            assert queued.failures == [], output(tmp_path / "w.log")
            assert queued.totals == local.totals
            assert queued.rejected == local.rejected
            db.session.expire_all()
            assert _rows() == expected
    finally:
        stop(worker)


def test_the_worker_receives_checked_mentions_and_parses_nothing(
    app, redis, redis_url, queue_name, monkeypatch
):
    """The command parses each line once and queues the mentions it made; the job
    decodes them straight into mentions, with no JSON parsing or checks of its own."""
    parsed = []
    from_line = social_mention.from_line

    def counted(line, default_network=None):
        parsed.append(line)
        return from_line(line, default_network)

    monkeypatch.setattr(imports, "from_line", counted)
    monkeypatch.setattr(imports._QueuedStore, "finish", lambda self: [])  # no waiting
    lines = [json.dumps(mention(n)) for n in range(1, 6)]
    with app.app_context():
        imports.import_lines(lines, batch=3, queue_name=queue_name, redis_url=redis_url)
    assert parsed == lines  # once each

    queue = Queue(queue_name, connection=redis)
    queued = queue.get_jobs()
    assert [job.func_name for job in queued] == ["workers.jobs.ingest_checked"] * 2
    payloads = [social_mention.unpack(redis.get(job.args[0])) for job in queued]
    assert [m for batch in payloads for m in batch] == [from_line(x, "import") for x in lines]

    def no_parsing(*args, **kwargs):
        raise AssertionError("the worker parsed a checked batch again")

    for name in ("from_json", "from_line", "_decode_line"):
        monkeypatch.setattr(social_mention, name, no_parsing)
    monkeypatch.setattr(jobs, "ingest_mentions", no_parsing)  # the path that checks objects
    with app.app_context():
        SimpleWorker([queue], connection=redis).work(burst=True)
        assert [job.get_status() for job in queued] == ["finished", "finished"]
        assert sum(job.return_value()["stored"] for job in queued) == 5
        assert db.session.scalars(select(Mention.network)).all() == ["import"] * 5


def test_extra_fields_msgpack_cannot_carry_go_as_lines(
    app, redis, redis_url, queue_name, monkeypatch
):
    """An extra field with an integer beyond 64 bits: that batch goes as its lines, for
    the worker to check again, and is stored with the field intact."""
    monkeypatch.setattr(imports._QueuedStore, "finish", lambda self: [])
    lines = [json.dumps(mention(1)), json.dumps(mention(2, big=2**70)), json.dumps(mention(3))]
    with app.app_context():
        imports.import_lines(lines, batch=2, queue_name=queue_name, redis_url=redis_url)
    queue = Queue(queue_name, connection=redis)
    queued = queue.get_jobs()
    assert [job.func_name for job in queued] == [
        "workers.jobs.ingest_batch",
        "workers.jobs.ingest_checked",
    ]
    with app.app_context():
        SimpleWorker([queue], connection=redis).work(burst=True)
        assert [job.get_status() for job in queued] == ["finished", "finished"]
        stored = db.session.scalar(select(Mention).where(Mention.external_id == "q2"))
        assert stored.extra == {"big": 2**70}
