"""Who wrote a mention, as support needs to know before answering: their reach, what
they wrote before (and in what mood), and, when they are a contact, what they are worth
to us (open and won deals).

Deals are summed for everyone who triages; their titles and links are only for those
the role table lets see deals (support sees the value, not the deal).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, contains_eager

from webapp.models import Deal, Mention, Stage
from webapp.services.permissions import can

EARLIER_SHOWN = 5


@dataclass
class Author:
    earlier: list[Mention]
    earlier_count: int
    earlier_negative: int
    open_deals: list[Deal] = field(default_factory=list)
    open_totals: dict[str, int] = field(default_factory=dict)
    won_count: int = 0
    won_totals: dict[str, int] = field(default_factory=dict)
    sees_deals: bool = False


def of(session: Session, user, mention: Mention) -> Author:
    """The author panel of mention: three statements (earlier mentions, their counts,
    the contact's deals)."""
    same_author = (
        Mention.network == mention.network,
        Mention.author_handle == mention.author_handle,
        Mention.id != mention.id,
    )
    earlier = list(
        session.scalars(
            select(Mention)
            .where(*same_author)
            .order_by(Mention.posted_at.desc(), Mention.id.desc())
            .limit(EARLIER_SHOWN)
        )
    )
    count, negative = session.execute(
        select(func.count(), func.count().filter(Mention.label == "negative")).where(*same_author)
    ).one()
    author = Author(earlier, count, negative, sees_deals=can(user, "deal.view_all"))
    if mention.contact_id is None:
        return author
    deals = session.scalars(
        select(Deal)
        .join(Deal.stage)
        .options(contains_eager(Deal.stage))  # the join that filters also loads the stage
        .where(
            Deal.contact_id == mention.contact_id,
            Deal.deleted_at.is_(None),
            Stage.kind.in_(("open", "won")),
        )
        .order_by(Deal.amount_minor.desc(), Deal.id)
    ).all()
    open_totals: dict[str, int] = defaultdict(int)
    won_totals: dict[str, int] = defaultdict(int)
    for deal in deals:
        if deal.stage.kind == "open":
            author.open_deals.append(deal)
            open_totals[deal.currency] += deal.amount_minor
        else:
            author.won_count += 1
            won_totals[deal.currency] += deal.amount_minor
    author.open_totals, author.won_totals = dict(open_totals), dict(won_totals)
    return author
