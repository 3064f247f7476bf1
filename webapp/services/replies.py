"""Replies to mentions, posted on their network: the record first, then the sending.

What belongs here: asking for a reply (checked by the network's own rules, held back if
the thread changed since the person looked, once per tap however often it is sent),
the state a reply is in (queued, sending, sent with its link, failed with the reason in
words) and the rules of moving between them; the job that posts lives in workers/jobs,
the network calls in social.replies and the connectors.

A reply is a row before it is a request: a double tap finds the row its first tap
made; the job claims the row before it posts and records the outcome after; a job run
again after its worker died mid-post posts under the same key, which each network's
connector uses so that the post is made once (X: our own recent replies are read
first; Mastodon: an Idempotency-Key; Bluesky: a record key).
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from social import replies as network_replies
from webapp.models import Mention, MentionNote, Reply, Source, User
from webapp.models.base import utcnow
from webapp.models.triage import FAILED, QUEUED, SENDING, SENT
from webapp.services import audit, triage
from webapp.services.errors import ValidationError
from webapp.services.permissions import require

STATE_LABELS = {QUEUED: "Queued", SENDING: "Sending", SENT: "Sent", FAILED: "Failed"}
# How often a reply the network could not take for now is tried before it fails.
MAX_ATTEMPTS = 5
# A claim older than this is a worker that died mid-post: the row may be claimed again.
SENDING_STALE = timedelta(minutes=5)
# A queued reply whose job has not run this long after it was due: its job was lost
# (Redis restarted, or was down when it was queued), and the sweep queues it again.
LOST_AFTER = timedelta(minutes=2)
NO_ACCOUNT = "It did not come through a source of ours, so there is no account to answer from."
NOT_ITS_ACCOUNT = "Its source holds no account on this network to answer from."


class ThreadChanged(Exception):
    """Something was added to the thread since the person loaded it; .new says what."""

    def __init__(self, new: list[str], mark: str):
        super().__init__("The thread changed since you opened it.")
        self.new = new
        self.mark = mark


@dataclass(frozen=True)
class Composer:
    """What the reply form needs: whether this mention can be answered here, why not,
    the check's count and limit, and the link to answer on the network by hand."""

    can_reply: bool
    reason: str
    limit: int
    by_hand: str | None


def thread(session: Session, mention: Mention) -> list[Reply]:
    return list(
        session.scalars(
            select(Reply)
            .options(selectinload(Reply.author))
            .where(Reply.mention_id == mention.id)
            .order_by(Reply.id)
        )
    )


def mark(session: Session, mention: Mention) -> str:
    """What the thread holds now (the newest reply and note, and the author's newest
    post), as a string the form carries: a different one means something was added."""
    row = session.execute(
        select(
            select(func.max(Reply.id)).where(Reply.mention_id == mention.id).scalar_subquery(),
            select(func.max(MentionNote.id))
            .where(MentionNote.mention_id == mention.id)
            .scalar_subquery(),
            select(func.max(Mention.id))
            .where(
                Mention.network == mention.network,
                Mention.author_handle == mention.author_handle,
            )
            .scalar_subquery(),
        )
    ).one()
    return ".".join(str(part or 0) for part in row)


def _news(session: Session, mention: Mention, seen: str) -> list[str]:
    """What was added since mark seen, in words, newest last."""
    try:
        reply_id, note_id, post_id = (int(p) for p in seen.split("."))
    except ValueError:
        reply_id = note_id = post_id = 0
    news = [
        f"{r.author.name} replied: {r.body[:140]}"
        for r in session.scalars(
            select(Reply)
            .options(selectinload(Reply.author))
            .where(Reply.mention_id == mention.id, Reply.id > reply_id)
            .order_by(Reply.id)
        )
    ]
    news += [
        f"{n.author.name} added a note: {n.body[:140]}"
        for n in session.scalars(
            select(MentionNote)
            .options(selectinload(MentionNote.author))
            .where(MentionNote.mention_id == mention.id, MentionNote.id > note_id)
            .order_by(MentionNote.id)
        )
    ]
    news += [
        f"@{m.author_handle} wrote again: {m.text[:140]}"
        for m in session.scalars(
            select(Mention)
            .where(
                Mention.network == mention.network,
                Mention.author_handle == mention.author_handle,
                Mention.id > post_id,
            )
            .order_by(Mention.id)
        )
    ]
    return news


def composer(mention: Mention) -> Composer:
    """Whether the reply form is offered for this mention, and with what limit."""
    try:
        by_hand = network_replies.open_on_network(network_replies.target_of(mention))
    except network_replies.ReplyError:
        by_hand = None
    if mention.network not in network_replies.REPLY_NETWORKS:
        return Composer(False, network_replies.no_reply(mention.network), 0, by_hand)
    if mention.source is None or mention.source.deleted_at is not None:
        return Composer(False, NO_ACCOUNT, 0, by_hand)
    if mention.source.kind != mention.network:
        # A webhook or the demo source speaks for a network but holds no account on it.
        return Composer(False, NOT_ITS_ACCOUNT, 0, by_hand)
    if mention.network == "x" and (refused := _x_refuses(mention)):
        return Composer(False, refused, 0, by_hand)
    return Composer(True, "", network_replies.limit_of(mention.network), by_hand)


def _x_refuses(mention: Mention) -> str | None:
    """Why X would refuse an API reply to this post, if it would: since February 2026 X
    answers only posts that mention or quote our account (outside its enterprise tier).
    A mentions source reads exactly those; a search also finds posts that do not, which
    we tell apart by the account's @name on the source."""
    config = mention.source.config or {}
    if config.get("mode", "mentions") == "mentions":
        return None
    account = config.get("username")
    if not account:
        return (
            "X answers from here only posts that mention our account, and this search "
            "source does not say which account that is (an admin can add its @name)."
        )
    target = network_replies.target_of(mention)
    problems = network_replies.check("x", "ok", target, account=account).warnings
    if any(note.code == "not_mentioned" for note in problems):
        return (
            f"This post does not mention @{account}, so X would refuse a reply sent from "
            "here (and bill the attempt)."
        )
    return None


def ask(
    session: Session,
    user: User,
    mention: Mention,
    body: str,
    key: str | None,
    seen: str | None,
) -> tuple[Reply, bool]:
    """Queue a reply (the caller commits, then enqueues the job); (reply, made). The
    same key again gives the reply that key made, whatever else changed.

    :raise ValidationError: empty, too long by the network's count, not answerable here,
        or a key that is not a UUID.
    :raise ThreadChanged: seen is not the thread's mark any more (nothing is queued).
    """
    require(user, "mention.reply")
    try:
        key = str(uuidlib.UUID(str(key)))
    except ValueError:
        raise ValidationError({"key": "This form is out of date: reload the page."}) from None
    _take(session, mention)
    earlier = session.scalar(select(Reply).where(Reply.key == key))
    if earlier is not None:
        return earlier, False
    form = composer(mention)
    if not form.can_reply:
        raise ValidationError({"reply": form.reason})
    checked = network_replies.check(mention.network, body or "", network_replies.target_of(mention))
    if not checked.ok:
        raise ValidationError({"reply": " ".join(n.words for n in checked.problems)})
    now_mark = mark(session, mention)
    if seen is not None and seen != now_mark:
        raise ThreadChanged(_news(session, mention, seen), now_mark)
    reply = Reply(
        key=key,
        mention_id=mention.id,
        author_id=user.id,
        body=body.strip(),
        state=QUEUED,
        attempts=0,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(reply)
    session.flush()
    audit.record(
        session, user, "reply.queue", "mention", mention.id, label=f"@{mention.author_handle}"
    )
    return reply, True


def _take(session: Session, mention: Mention) -> None:
    """Hold the mention's row until the caller commits, so that two replies asked at
    once are served one after the other: the second then reads the key and the thread's
    mark as the first left them (another copy of its tap, or a thread that changed),
    where reading before either wrote let both through. A write, not SELECT ... FOR
    UPDATE, since on SQLite only a write waits for the other writer."""
    session.execute(
        update(Mention)
        .where(Mention.id == mention.id)
        .values(id=Mention.id)
        .execution_options(synchronize_session=False)
    )


def claim(session: Session, reply_id: int, now: datetime | None = None) -> Reply | None:
    """Take the reply for sending: one that is queued, or whose sending was left by a
    worker that died; None if it is sent, failed, or being sent right now. One
    conditional update, so two workers cannot both take it."""
    now = now or utcnow()
    taken = session.execute(
        update(Reply)
        .where(
            Reply.id == reply_id,
            ((Reply.state == QUEUED) & (Reply.not_before.is_(None) | (Reply.not_before <= now)))
            | ((Reply.state == SENDING) & (Reply.updated_at < now - SENDING_STALE)),
        )
        .values(state=SENDING, attempts=Reply.attempts + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not taken:
        return None
    reply = session.get(Reply, reply_id)
    session.refresh(reply)
    return reply


def sent(session: Session, reply: Reply, posted: network_replies.Posted) -> None:
    """The network took it: its id and address, and the mention's first response."""
    now = utcnow()
    reply.state, reply.error, reply.not_before = SENT, None, None
    reply.external_id, reply.url = posted.external_id[:512], posted.url[:2000]
    reply.sent_at = reply.updated_at = now
    mention = session.get(Mention, reply.mention_id)
    if mention is not None and mention.first_response_at is None:
        mention.first_response_at = now
        triage.reprioritize(session, [mention], now)


def failed(session: Session, reply: Reply, error: network_replies.ReplyError) -> datetime | None:
    """The attempt did not go through: back in the queue when trying again can help
    (return when to try), else failed for good with the reason (return None)."""
    now = utcnow()
    reply.error = error.reason[:500]
    reply.updated_at = now
    if not error.permanent and reply.attempts < MAX_ATTEMPTS:
        reply.state = QUEUED
        if error.retry_at is not None:
            reply.not_before = max(error.retry_at, now)
        else:
            reply.not_before = now + timedelta(seconds=30 * 2 ** (reply.attempts - 1))
        return reply.not_before
    reply.state = FAILED
    return None


def stale(session: Session, now: datetime | None = None, limit: int = 200) -> list[int]:
    """Replies that are queued but whose job is not known to be coming (Redis lost it,
    or it was never enqueued), or whose sender died: for the sweep to enqueue again."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(Reply.id)
            .where(
                (
                    (Reply.state == QUEUED)
                    & (Reply.updated_at < now - LOST_AFTER)
                    & (Reply.not_before.is_(None) | (Reply.not_before < now - LOST_AFTER))
                )
                | ((Reply.state == SENDING) & (Reply.updated_at < now - SENDING_STALE))
            )
            .order_by(Reply.id)
            .limit(limit)
        )
    )


def source_of(session: Session, reply: Reply) -> tuple[Mention, Source | None]:
    mention = session.get(Mention, reply.mention_id)
    return mention, mention.source if mention is not None else None
