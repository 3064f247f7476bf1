"""RQ jobs: plain importable functions taking ids; they load their own rows.

They run inside the app context that `crm worker` pushes before it starts working.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from redis import Redis
from rq import Retry, get_current_job
from rq.job import Job
from sqlalchemy import delete

from social import mention as social_mention
from social import replies as network_replies
from social.mention import FetchResult, SourceError
from webapp.extensions import db
from webapp.models import Contact, Source
from webapp.models.base import utcnow
from webapp.services import (
    auth,
    contacts,
    mentions,
    notifications,
    once,
    polls,
    push,
    replies,
    routing,
    sla,
    sources,
    triage,
)
from workers import queues
from workers.worker import in_place

log = logging.getLogger(__name__)
PURGE_AFTER = timedelta(days=30)
LOGIN_FAILURE_TTL = timedelta(days=1)


def purge_deleted_contacts() -> int:
    """Remove contacts soft-deleted more than 30 days ago, with their timelines."""
    ids = contacts.deleted_since(db.session, utcnow() - PURGE_AFTER)
    for start in range(0, len(ids), 500):
        db.session.execute(delete(Contact).where(Contact.id.in_(ids[start : start + 500])))
    once.purge(db.session, PURGE_AFTER)
    db.session.commit()
    return len(ids)


def purge_deleted_sources() -> int:
    """Remove sources soft-deleted more than 30 days ago; their mentions stay."""
    count = sources.purge_deleted(db.session, utcnow() - PURGE_AFTER)
    db.session.commit()
    return count


def purge_login_failures() -> int:
    """Forget failed sign-ins older than a day (the throttle's window is far shorter) and
    sessions past their lifetime."""
    lifetime = current_app.config["PERMANENT_SESSION_LIFETIME"]
    count = auth.purge(db.session, LOGIN_FAILURE_TTL, lifetime)
    db.session.commit()
    return count


def triage_sweep() -> dict[str, int]:
    """Wake the snoozed items whose time has come, give what nobody holds to whoever is
    taking new items, let the waiting part of the unanswered ones' priority grow, warn
    of SLA breaches to come and tell of those that came, and queue again the replies
    whose job was lost."""
    woken = triage.wake_snoozed(db.session)
    assigned = routing.assign_waiting(db.session)
    refreshed = triage.refresh_waiting(db.session)
    clocks = sla.sweep(db.session)
    lost = replies.stale(db.session)
    db.session.commit()
    if lost:
        connection = _connection()
        for reply_id in lost:
            enqueue_reply(reply_id, connection)
    return {
        "woken": woken,
        "assigned": assigned,
        "refreshed": refreshed,
        "requeued": len(lost),
        **clocks,
    }


def _connection() -> Redis:
    job = get_current_job()
    return job.connection if job else queues.connect(current_app.config["REDIS_URL"])


REPLY_TIMEOUT = 60


def enqueue_reply(reply_id: int, connection: Redis, at: datetime | None = None) -> Job:
    """Queue the sending of a reply (at a time, for a retry); a job queued twice for the
    same reply sends it once, since sending claims the row first."""
    options = {
        "job_id": f"reply-{reply_id}-{uuid.uuid4().hex[:8]}",
        "job_timeout": REPLY_TIMEOUT,
        "result_ttl": 3600,
        "failure_ttl": 24 * 3600,
    }
    queue = queues.queue("high", connection)
    if at is not None:
        return queue.enqueue_at(at, send_reply, reply_id, **options)
    return queue.enqueue(send_reply, reply_id, **options)


def send_reply(reply_id: int) -> dict[str, Any] | None:
    """Post one reply on its network, once: the row is claimed before the post and the
    outcome recorded after; a retry the network asks for is queued for its time (never
    slept on here). None when the reply is not this job's to send (sent, failed, or in
    another worker's hands)."""
    reply = replies.claim(db.session, reply_id)
    db.session.commit()
    if reply is None:
        return None
    mention, source = replies.source_of(db.session, reply)
    settings = current_app.config
    connection = _connection()
    try:
        if source is None or source.deleted_at is not None:
            raise network_replies.NotAllowed(replies.NO_ACCOUNT)
        if source.kind != mention.network:
            raise network_replies.NotAllowed(replies.NOT_ITS_ACCOUNT)
        try:
            config = polls.connector_config(source, polls.Credentials.from_settings(settings))
        except SourceError as exc:
            raise network_replies.Rejected(str(exc)) from exc
        posted = network_replies.post(
            config,
            network_replies.target_of(mention),
            reply.body,
            key=f"reply-{reply.key}",
            allow_private=bool(settings.get("OUTBOUND_ALLOW_PRIVATE")),
            sessions=queues.RedisMapping(connection, BLUESKY_SESSIONS),
        )
    except network_replies.ReplyError as exc:
        retry = replies.failed(db.session, reply, exc)
        db.session.commit()
        if retry is not None:
            enqueue_reply(reply.id, connection, at=retry)
        return {"state": reply.state, "error": reply.error}
    replies.sent(db.session, reply, posted)
    db.session.commit()
    return {"state": reply.state, "url": reply.url}


POLL_TIMEOUT = 120
BLUESKY_SESSIONS = "crm:bluesky:sessions"
# RQ re-runs a job whose work-horse was killed only when it has a Retry; the job may then
# run twice, which ingest's unique keys make harmless.
POLL_RETRY = Retry(max=2, interval=[30, 120])
# Outlives a poll's time in the queue and its run: a dead worker's lock frees itself.
POLL_LOCK_TTL = 600


def _poll_lock(source_id: int) -> str:
    return f"crm:poll:{source_id}"


# Connectors that fetch from servers an admin names, through the outbound guard.
_GUARDED = frozenset({"rss", "mastodon", "bluesky"})


def _fetcher(
    kind: str, connection: Redis, allow_private: bool = False
) -> Callable[[dict[str, Any], str | None], FetchResult]:
    """The connector's fetch for a source kind (imported on first use). allow_private
    (the OUTBOUND_ALLOW_PRIVATE setting: tests and local development only) lets it reach
    servers on internal addresses."""
    fetch = importlib.import_module(f"social.{kind}").fetch
    options: dict[str, Any] = {}
    if kind in _GUARDED:
        options["allow_private"] = allow_private
    if kind == "bluesky":
        options["sessions"] = queues.RedisMapping(connection, BLUESKY_SESSIONS)
    return functools.partial(fetch, **options) if options else fetch


def enqueue_poll(source_id: int, connection: Redis, queue_name: str = "default") -> Job | None:
    """Queue a poll of the source unless one is queued or running; None if one is."""
    job_id = f"poll-{source_id}-{uuid.uuid4().hex[:12]}"
    if not queues.hold_lock(connection, _poll_lock(source_id), job_id, POLL_LOCK_TTL):
        return None
    return queues.enqueue(
        poll_source,
        source_id,
        queue_name=queue_name,
        connection=connection,
        job_id=job_id,
        job_timeout=POLL_TIMEOUT,
        retry=POLL_RETRY,
        result_ttl=3600,
    )


def poll_now(source_id: int, redis_url: str | None) -> bool:
    """Queue a poll of the source at once (an admin's "poll now"); False if one is
    queued or running already."""
    return enqueue_poll(source_id, queues.connect(redis_url)) is not None


def poll_source(source_id: int) -> dict[str, int] | None:
    """Poll one source: new mentions scored, stored and attached with the cursor, in one
    transaction. Runs only while it holds the source's poll lock."""
    job = get_current_job()
    owner = job.id if job else f"inline-{uuid.uuid4().hex}"
    connection = job.connection if job else queues.connect(current_app.config["REDIS_URL"])
    if not queues.hold_lock(connection, _poll_lock(source_id), owner, POLL_LOCK_TTL):
        return None  # another poll of this source is running
    try:
        source = db.session.get(Source, source_id)
        if source is None or not source.enabled:
            return None
        settings = current_app.config
        fetch = _fetcher(source.kind, connection, bool(settings.get("OUTBOUND_ALLOW_PRIVATE")))
        credentials = polls.Credentials.from_settings(settings)
        outcome = polls.poll(db.session, source, fetch, credentials=credentials)
        db.session.commit()
        return (outcome or mentions.IngestResult([], 0, 0)).counts()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        queues.release_lock(connection, _poll_lock(source_id), owner)


def dispatch_polls() -> int:
    """Queue a poll of every source that is due (run by the scheduler); return how many."""
    job = get_current_job()
    connection = job.connection if job else queues.connect(current_app.config["REDIS_URL"])
    due = [s.id for s in polls.due_sources(db.session, utcnow())]
    db.session.rollback()
    return sum(enqueue_poll(source_id, connection) is not None for source_id in due)


INGEST_TIMEOUT = 300
# A batch may be run again (a worker killed mid-batch): ingest stores each mention once.
# The first time at once: a retry with an interval waits for RQ's scheduler, and that
# may have died with the worker, its lock held for a minute more.
INGEST_RETRY = Retry(max=2, interval=[0, 60])
# A batch's mentions wait in Redis under a key of their own, and the job carries only the
# key: RQ compresses a job's arguments when it is queued and again each time it records
# the job's progress, which for a thousand mentions cost more than storing them.
BATCH_KEY = "crm:ingest:{}"
BATCH_TTL = 7 * 86400
# Kept a while after the batch is stored, so a run again of its job finds it (and finds
# every mention already stored).
STORED_BATCH_TTL = 3600


def enqueue_ingest(
    batch: bytes | str | list[dict[str, Any]],
    source_id: int | None = None,
    *,
    connection: Redis,
    queue_name: str = "default",
    default_network: str | None = None,
) -> Job:
    """Queue a batch of normalized mention objects for a worker to check and store.

    batch is a JSON array of them (bytes or text), or the list itself. default_network
    is the network of objects that name none (an import's). A batch already checked
    goes through enqueue_checked instead.
    """
    if isinstance(batch, list):
        batch = json.dumps(batch)
    return _enqueue_blob(ingest_batch, batch, (source_id, default_network), connection, queue_name)


def enqueue_checked(
    batch: list[social_mention.Mention],
    source_id: int | None = None,
    *,
    connection: Redis,
    queue_name: str = "default",
) -> Job:
    """Queue mentions checked already (by social.mention.from_line or from_json) for a
    worker to store as they are, with no parsing or checking again.

    :raise OverflowError: or msgspec.EncodeError when an extra field holds what
        MessagePack cannot carry (an integer beyond 64 bits): queue the objects with
        enqueue_ingest then.
    """
    data = social_mention.pack(batch)
    return _enqueue_blob(ingest_checked, data, (source_id,), connection, queue_name)


def _enqueue_blob(
    func: Callable[..., Any],
    data: bytes | str,
    args: tuple[Any, ...],
    connection: Redis,
    queue_name: str,
) -> Job:
    """Put a batch in Redis under a key of its job's own and queue func(key, *args)."""
    job_id = f"ingest-{uuid.uuid4().hex}"
    key = BATCH_KEY.format(job_id)
    queues.put_blob(connection, key, data, BATCH_TTL)
    return queues.enqueue(
        func,
        key,
        *args,
        queue_name=queue_name,
        connection=connection,
        job_id=job_id,
        job_timeout=INGEST_TIMEOUT,
        retry=INGEST_RETRY,
        result_ttl=3600,
    )


class BatchGone(LookupError):
    """The batch's mentions are no longer in Redis."""


def _batch_data(key: str) -> tuple[Redis, bytes]:
    """The Redis connection of the running job and the batch kept under key.

    :raise BatchGone:
    """
    job = get_current_job()
    connection = job.connection if job else queues.connect(current_app.config["REDIS_URL"])
    data = queues.get_blob(connection, key)
    if data is None:
        raise BatchGone(
            f"The batch {key} is no longer in Redis: it waited longer than"
            f" {BATCH_TTL // 86400} days, or was stored more than an hour ago."
        )
    return connection, data


@in_place
def ingest_batch(
    key: str, source_id: int | None = None, default_network: str | None = None
) -> dict[str, int]:
    """Check and store a queued batch of JSON objects (see enqueue_ingest) in one
    transaction. Runs in the worker process itself (see workers.worker)."""
    connection, data = _batch_data(key)
    try:
        items = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"The batch {key} is not JSON: {exc}") from None
    if not isinstance(items, list):
        raise ValueError(f"The batch {key} is not a JSON array of mentions.")
    outcome = ingest_mentions(items, source_id, default_network)
    queues.keep_blob(connection, key, STORED_BATCH_TTL)
    return outcome


@in_place
def ingest_checked(key: str, source_id: int | None = None) -> dict[str, int]:
    """Store a queued batch of checked mentions (see enqueue_checked) in one
    transaction, decoded straight into mentions. Runs in the worker process itself."""
    connection, data = _batch_data(key)
    try:
        parsed = social_mention.unpack(data)
    except social_mention.MentionError as exc:
        raise ValueError(f"The batch {key} is {exc}.") from None
    outcome = store_mentions(parsed, source_id)
    queues.keep_blob(connection, key, STORED_BATCH_TTL)
    return outcome


def ingest_mentions(
    items: list[dict[str, Any]],
    source_id: int | None = None,
    default_network: str | None = None,
) -> dict[str, int]:
    """Check and store a batch of normalized mention objects in one transaction.

    :raise MentionError: naming the first bad object; nothing is stored then.
    """
    parsed = []
    for number, item in enumerate(items, start=1):
        try:
            parsed.append(social_mention.from_json(item, default_network))
        except social_mention.MentionError as exc:
            raise social_mention.MentionError(f"mention {number} of the batch: {exc}") from None
    return store_mentions(parsed, source_id)


def store_mentions(
    parsed: list[social_mention.Mention], source_id: int | None = None
) -> dict[str, int]:
    """Store checked mentions in one transaction; the counts of mentions.ingest."""
    try:
        source = db.session.get(Source, source_id) if source_id else None
        outcome = mentions.ingest(db.session, parsed, source)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return outcome.counts()


REMINDER_LOCK = "crm:reminders"
# Outlives one sweep (it stops claiming after REMINDER_BUDGET): a dead sweeper's lock
# frees itself, and the next sweep pushes what it had claimed.
REMINDER_LOCK_TTL = 300
REMINDER_BUDGET = 50.0


def send_reminders() -> dict[str, int]:
    """Remind every task that fell due: claim its notification (the row's unique key is
    the claim: a retried job, or a second sweep at the same moment, inserts nothing and
    so pushes nothing), commit, then push only the rows claimed here and mark them
    pushed. Run by the scheduler every few seconds, one sweep at a time; a sweep first
    pushes what a dead one claimed and never pushed (a push may then arrive twice; its
    tag, the notification's key, folds the two into one on the phone)."""
    job = get_current_job()
    owner = job.id if job else f"inline-{uuid.uuid4().hex}"
    connection = job.connection if job else queues.connect(current_app.config["REDIS_URL"])
    if not queues.hold_lock(connection, REMINDER_LOCK, owner, REMINDER_LOCK_TTL):
        return {"claimed": 0, "delivered": 0, "skipped": 1}
    counts = {"claimed": 0, "delivered": 0, "gone": 0, "failed": 0}
    started = time.monotonic()
    try:
        try:
            sender = push.Sender(db.session, current_app.config)
        except push.PushNotReady as exc:
            # Said once an hour, not at every sweep (every few seconds).
            if connection.set(f"{REMINDER_LOCK}:not-ready-said", 1, nx=True, ex=3600):
                log.warning("reminders are not pushed: %s", exc)
            sender = None
        db.session.commit()
        try:
            if sender:
                _push(sender, notifications.unpushed(db.session, utcnow()), counts)
            while time.monotonic() - started < REMINDER_BUDGET:
                due = notifications.due_unreminded(db.session, utcnow())
                claimed = notifications.claim_reminders(db.session, due, _task_url)
                db.session.commit()
                counts["claimed"] += len(claimed)
                if sender:
                    _push(sender, claimed, counts)
                if len(due) < notifications.CLAIM_BATCH:
                    break
        finally:
            if sender:
                sender.close()
        return counts
    except BaseException:
        db.session.rollback()
        raise
    finally:
        queues.release_lock(connection, REMINDER_LOCK, owner)


def _push(sender: push.Sender, ids: list[int], counts: dict[str, int]) -> None:
    for start in range(0, len(ids), 100):
        sent = sender.send(db.session, ids[start : start + 100])
        db.session.commit()
        counts["delivered"] += sent.delivered
        counts["gone"] += sent.gone
        counts["failed"] += sent.failed


def _task_url(task) -> str:
    return f"/tasks/{task.id}"
