"""The deals board and the phone's list by stage, as read: the open stages as columns,
each its first cards in card order (one statement for every column), the cards after
one ("more"), a card as the one looking sees it, and each stage's count and totals per
currency from the totals the database keeps. Moving a card writes a stage change with
its history, so it is services.deals.move_deal, as are the positions every write sets."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select, union_all
from sqlalchemy.orm import Session, lazyload

from webapp.models import Contact, Deal, DealTotal, Stage, User
from webapp.services.deals import live_deals, open_stages
from webapp.services.errors import NotFoundError
from webapp.services.permissions import can, require

# Cards a board column or a stage of the phone's list shows before "more".
PER_COLUMN = 12


@dataclass
class Column:
    """One stage on the board: its first cards, whether more follow, and its totals."""

    stage: Stage
    deals: list[Card]
    more: bool
    count: int = 0
    totals: dict[str, int] = field(default_factory=dict)


def totals_by_stage(session: Session, user: User, stage_ids: list[int], mine: bool) -> dict:
    """{stage id: (count, {currency: sum of minor units})} of the live deals user sees
    (mine: their own only), from the totals the database keeps (DealTotal)."""
    require(user, "deal.view")
    query = (
        select(
            DealTotal.stage_id,
            DealTotal.currency,
            func.sum(DealTotal.deals),
            func.sum(DealTotal.amount_minor),
        )
        .where(DealTotal.stage_id.in_(stage_ids), DealTotal.deals > 0)
        .group_by(DealTotal.stage_id, DealTotal.currency)
    )
    if mine or not can(user, "deal.view_all"):
        query = query.where(DealTotal.owner_id == user.id)
    rows = session.execute(query).all()
    out: dict[int, tuple[int, dict[str, int]]] = {}
    for stage_id, currency, count, total in rows:
        n, sums = out.get(stage_id, (0, {}))
        sums[currency] = int(total or 0)
        out[stage_id] = (n + int(count), sums)
    return out


@dataclass(frozen=True)
class Card:
    """A deal as the board shows it, with its contact's and owner's names, and whether
    the one looking may move it."""

    deal: Deal
    contact_name: str | None
    owner_name: str | None
    editable: bool


def card_of(user: User, deal: Deal) -> Card:
    """The board card of one deal, as user sees it."""
    contact = deal.contact.name if deal.contact else None
    return Card(deal, contact, deal.owner.name, can(user, "deal.edit", deal))


# A card's row: the deal with its contact's and owner's names (the stage is the column's).
_CARD_ROWS = (
    select(Deal, Contact.name, User.name)
    .outerjoin(Contact, Deal.contact_id == Contact.id)
    .join(User, Deal.owner_id == User.id)
    .options(lazyload(Deal.stage))
)


def _cards(user: User, rows, limit: int) -> tuple[list[Card], bool]:
    """The cards of the first limit rows of _CARD_ROWS, and whether more rows follow."""
    cards = [
        Card(deal, contact, owner, can(user, "deal.edit", deal))
        for deal, contact, owner in rows[:limit]
    ]
    return cards, len(rows) > limit


def column_deals(
    session: Session,
    user: User,
    stage: Stage,
    after: int | None = None,
    mine: bool = False,
    limit: int = PER_COLUMN,
) -> tuple[list[Card], bool]:
    """A stage's live deals in card order, limit at a time after the deal `after`;
    (cards, whether more follow). :raise NotFoundError: an after that is not there."""
    query = _CARD_ROWS.where(live_deals(user, mine), Deal.stage_id == stage.id)
    if after is not None:
        mark = session.get(Deal, after)
        if mark is None or mark.stage_id != stage.id:
            raise NotFoundError(f"deal {after} in stage {stage.id}")
        query = query.where(
            or_(
                Deal.position > mark.position,
                and_(Deal.position == mark.position, Deal.id > mark.id),
            )
        )
    rows = session.execute(query.order_by(Deal.position, Deal.id).limit(limit + 1)).all()
    return _cards(user, rows, limit)


def _first_cards(
    session: Session, user: User, stages: list[Stage], mine: bool, limit: int
) -> dict[int, list]:
    """{stage id: its first limit + 1 live deals in card order, with contact and owner
    names}, for every stage in one statement: each stage's own walk of its board index,
    stopping at limit + 1 (a round trip a column is what a board costs on a server)."""
    if not stages:
        return {}
    firsts = [
        select(Deal.id)
        .where(live_deals(user, mine), Deal.stage_id == stage.id)
        .order_by(Deal.position, Deal.id)
        .limit(limit + 1)
        .subquery()
        for stage in stages
    ]
    ids = union_all(*(select(first.c.id) for first in firsts))
    rows = session.execute(_CARD_ROWS.where(Deal.id.in_(ids))).all()
    out: dict[int, list] = {stage.id: [] for stage in stages}
    for row in sorted(rows, key=lambda r: (r[0].position, r[0].id)):
        out[row[0].stage_id].append(row)
    return out


def board(session: Session, user: User, mine: bool = False) -> list[Column]:
    """The open stages as columns, each with its first cards, its count and its totals
    per currency (a column never holds more than PER_COLUMN cards: "more" pages on)."""
    columns = open_stages(session)
    totals = totals_by_stage(session, user, [s.id for s in columns], mine)
    firsts = _first_cards(session, user, columns, mine, PER_COLUMN)
    out = []
    for stage in columns:
        cards, more = _cards(user, firsts[stage.id], PER_COLUMN)
        count, sums = totals.get(stage.id, (0, {}))
        out.append(Column(stage, cards, more, count, sums))
    return out
