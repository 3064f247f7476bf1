"""Bulk triage: assign, resolve or label many items at once from the queue.

Each item goes through the same rule as a single change (webapp.services.triage), so
it is audited and re-prioritised as one would be; the round robin then runs once for
the holders they all freed. Items already in the asked-for state are counted as
unchanged rather than touched again. A bulk resolve remembers where each item was, so
it can be undone in one tap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from social import sentiment
from webapp.models import LabelCorrection, Mention
from webapp.models.base import utcnow
from webapp.models.triage import OPEN, PENDING, RESOLVED, SNOOZED
from webapp.services import routing, triage
from webapp.services.errors import ValidationError
from webapp.services.permissions import require

BULK_MAX = 100
ACTIONS = ("assign", "resolve", "label")


@dataclass
class BulkResult:
    changed: int = 0
    unchanged: int = 0
    missing: int = 0
    # Where each resolved item was, as restore() reads it back: "id:status[@until]".
    restore: list[str] = field(default_factory=list)


def parse_ids(raw: list[str]) -> list[int]:
    """The selected items' ids, in order, each once. :raise ValidationError:"""
    ids: list[int] = []
    for value in raw:
        value = value.strip()
        if not value.isascii() or not value.isdigit() or len(value) > 12:
            raise ValidationError({"ids": "The selection holds something that is not an item."})
        if int(value) not in ids:
            ids.append(int(value))
    if not ids:
        raise ValidationError({"ids": "Select the items first (the boxes beside them)."})
    if len(ids) > BULK_MAX:
        raise ValidationError({"ids": f"Select at most {BULK_MAX} items at once."})
    return ids


def apply(
    session: Session, user, ids: list[int], action: str, value: str | int | None = None
) -> BulkResult:
    """Do action to each item: assign (value: a user id, or None for nobody), resolve,
    or label (value: positive, neutral or negative). :raise ValidationError:"""
    require(user, "mention.triage")
    if action not in ACTIONS:
        raise ValidationError({"action": "Choose assign, resolve or label."})
    if action == "label" and value not in sentiment.LABELS:
        raise ValidationError({"label": "Choose positive, neutral or negative."})
    items = {m.id: m for m in session.scalars(select(Mention).where(Mention.id.in_(ids)))}
    result = BulkResult(missing=len(ids) - len(items))
    # The labels people gave already, read once (a label is unchanged when it is so).
    given = (
        dict(
            session.execute(
                select(LabelCorrection.mention_id, LabelCorrection.label).where(
                    LabelCorrection.mention_id.in_(items)
                )
            ).all()
        )
        if action == "label"
        else {}
    )
    for mention_id in ids:
        mention = items.get(mention_id)
        if mention is None:
            continue
        if action == "resolve":
            if mention.status == RESOLVED:
                result.unchanged += 1
                continue
            until = mention.snoozed_until if mention.status == SNOOZED else None
            result.restore.append(
                f"{mention.id}:{mention.status}" + (f"@{until.isoformat()}" if until else "")
            )
            triage.set_status(session, user, mention, RESOLVED, route=False)
        elif action == "assign":
            if mention.assignee_id == value:
                result.unchanged += 1
                continue
            triage.assign(session, user, mention, value, route=False)  # type: ignore[arg-type]
        else:
            if given.get(mention.id) == value:
                result.unchanged += 1
                continue
            triage.correct_label(session, user, mention, value)  # type: ignore[arg-type]
        result.changed += 1
    if action != "label" and result.changed:
        # The holders freed up, or items came back: one round robin for them all.
        routing.assign_waiting(session)
    return result


def restore(session: Session, user, raw: str) -> int:
    """Put back items a bulk resolve moved (raw as BulkResult.restore, comma-joined),
    each only if it is still resolved. Returns how many came back.
    :raise ValidationError:"""
    require(user, "mention.triage")
    wanted: dict[int, tuple[str, datetime | None]] = {}
    for part in (raw or "").split(",")[:BULK_MAX]:
        head, _, until = part.partition("@")
        mention_id, _, status = head.partition(":")
        if not mention_id.isdigit() or status not in (OPEN, PENDING, SNOOZED):
            raise ValidationError({"restore": "There is nothing to undo."})
        when = None
        if status == SNOOZED:
            try:
                when = datetime.fromisoformat(until)
            except ValueError:
                raise ValidationError({"restore": "There is nothing to undo."}) from None
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
        wanted[int(mention_id)] = (status, when)
    back = 0
    for mention in session.scalars(select(Mention).where(Mention.id.in_(wanted))):
        status, when = wanted[mention.id]
        if mention.status != RESOLVED:
            continue
        if status == SNOOZED and (when is None or when <= utcnow()):
            status, when = OPEN, None
        triage.set_status(session, user, mention, status, when, route=False)
        back += 1
    if back:
        routing.assign_waiting(session)
    return back
