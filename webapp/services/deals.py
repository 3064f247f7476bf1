"""Deals and the pipeline: validation, create (once per form), edit, moving along the
stages and on the board, won and lost, soft delete and undo, the history every stage or
close-date change writes; the deals that need their owner's attention (for the Today
page). The board's columns and cards (reading them) are in board, the reports in
deal_reports, the stages admins edit in stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from webapp.models import Contact, Deal, DealChange, Stage, User
from webapp.models.base import utcnow
from webapp.models.deals import LOST_REASONS
from webapp.services import money, once, triage
from webapp.services.errors import NotFoundError, ValidationError
from webapp.services.permissions import can, require
from webapp.services.values import text_problem

LIMITS = {"title": 200, "company": 200, "next_step": 200, "notes": 5000, "lost_note": 500}
# Close dates people plan with; anything else is a typing slip.
FIRST_DATE, LAST_DATE = date(2000, 1, 1), date(2099, 12, 31)
# A close date moved later this often makes a deal "pushed".
PUSHED_AFTER = 3
TEAM_KINDS = ("call", "visit", "meeting")


class StaleMove(ValidationError):
    """A board move made on a page that no longer shows where the deal is."""


# Stages ---------------------------------------------------------------------------


def stages(session: Session) -> list[Stage]:
    """Every stage in board order."""
    return list(session.scalars(select(Stage).order_by(Stage.position, Stage.id)))


def open_stages(session: Session) -> list[Stage]:
    """The stages a deal moves along before it is won or lost, in board order."""
    return [s for s in stages(session) if s.kind == "open"]


def _stage_of_kind(session: Session, kind: str) -> Stage:
    found = session.scalars(
        select(Stage).where(Stage.kind == kind).order_by(Stage.position, Stage.id).limit(1)
    ).first()
    if found is None:  # the stage rules keep one of each kind
        raise NotFoundError(f"{kind} stage")
    return found


def get_stage(session: Session, stage_id: int) -> Stage:
    """A stage. :raise NotFoundError:"""
    stage = session.get(Stage, stage_id)
    if stage is None:
        raise NotFoundError(f"stage {stage_id}")
    return stage


# Reading deals --------------------------------------------------------------------


def _visible(user: User):
    """The condition narrowing deals to those user may see (a rep: their own)."""
    require(user, "deal.view")
    if can(user, "deal.view_all"):
        return True
    return Deal.owner_id == user.id


def live_deals(user: User, mine: bool = False):
    conditions = [Deal.deleted_at.is_(None), _visible(user)]
    if mine:
        conditions.append(Deal.owner_id == user.id)
    return and_(*conditions)


def get_deal(session: Session, user: User, deal_id: int) -> Deal:
    """A live deal user may see. :raise NotFoundError: unknown or deleted. :raise
    PermissionDenied:"""
    deal = session.get(Deal, deal_id)
    if deal is None or deal.deleted_at is not None:
        raise NotFoundError(f"deal {deal_id}")
    require(user, "deal.view", deal)
    return deal


def contact_deals(session: Session, user: User, contact: Contact) -> list[Deal]:
    """The contact's live deals user may see, open ones first, then latest closed."""
    if not can(user, "deal.view"):
        return []
    return list(
        session.scalars(
            select(Deal)
            .join(Stage, Deal.stage_id == Stage.id)
            .where(Deal.contact_id == contact.id, live_deals(user))
            .order_by(case((Stage.kind == "open", 0), else_=1), Stage.position, Deal.id.desc())
            .limit(50)
        )
    )


def history(session: Session, deal: Deal) -> list[dict]:
    """What changed on the deal, newest first, in words: stage names and dates."""
    names = {s.id: s.name for s in stages(session)}
    rows = session.execute(
        select(DealChange, User.name)
        .outerjoin(User, DealChange.changed_by_id == User.id)
        .where(DealChange.deal_id == deal.id)
        .order_by(DealChange.changed_at.desc(), DealChange.id.desc())
        .limit(100)
    ).all()
    out = []
    for change, who in rows:
        before, after = change.before, change.after
        if change.field == "stage":
            before = names.get(int(before), "a removed stage") if before else None
            after = names.get(int(after), "a removed stage") if after else None
        out.append({"change": change, "who": who, "before": before, "after": after})
    return out


# Writing deals --------------------------------------------------------------------


def _parse_date(raw: str | None) -> tuple[date | None, str | None]:
    text = (raw or "").strip()
    if not text:
        return None, None
    try:
        value = date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        value = None
    if value is None:
        return None, "Enter a date like 2027-03-31."
    if not FIRST_DATE <= value <= LAST_DATE:
        return None, f"Enter a date from {FIRST_DATE.year} to {LAST_DATE.year}."
    return value, None


def _clean(
    session: Session, data: dict, default_currency: str, allowed_stages: list[Stage]
) -> tuple[dict, dict[str, str]]:
    """Trim and check the deal fields; (values, errors by field)."""
    values: dict = {}
    errors: dict[str, str] = {}
    for name, limit in LIMITS.items():
        if name == "lost_note":
            continue
        raw = data.get(name)
        problem = text_problem(raw, limit) if raw is not None else None
        if problem:
            errors[name] = problem
            continue
        text = (raw or "").strip()
        values[name] = (text if name == "notes" else " ".join(text.split())) or None
    if not values.get("title") and "title" not in errors:
        errors["title"] = "Enter a title, such as what is being sold."
    currency = (data.get("currency") or default_currency or "").strip().upper()
    if problem := money.currency_problem(currency):
        errors["currency"] = problem
    else:
        values["currency"] = currency
        amount, problem = money.parse_amount(data.get("amount"), currency)
        if problem:
            errors["amount"] = problem
        else:
            values["amount_minor"] = amount
    close, problem = _parse_date(data.get("expected_close"))
    if problem:
        errors["expected_close"] = problem
    values["expected_close"] = close
    stage_id = str(data.get("stage_id") or "")
    by_id = {str(s.id): s for s in allowed_stages}
    if stage_id not in by_id:
        errors["stage_id"] = "Choose a stage from the list."
    else:
        values["stage"] = by_id[stage_id]
    return values, errors


def _note(session: Session, user: User | None, deal: Deal, name: str, before, after) -> None:
    session.add(
        DealChange(
            deal_id=deal.id,
            field=name,
            before=None if before is None else str(before),
            after=None if after is None else str(after),
            changed_by_id=user.id if user else None,
        )
    )


def _set_stage(session: Session, user: User | None, deal: Deal, stage: Stage, now) -> None:
    """Put the deal in stage, with its history, time in stage and closing time."""
    if deal.stage_id == stage.id and deal.id is not None:
        return
    _note(session, user, deal, "stage", deal.stage_id, stage.id)
    was = deal.stage.kind if deal.stage is not None else None
    deal.stage_id = stage.id
    deal.stage = stage
    if was is not None and was != stage.kind:
        _customer_changed(session, deal)
    deal.stage_entered_at = now
    if stage.kind == "open":
        deal.closed_at = None
        deal.lost_reason = None
        deal.lost_note = None
    else:
        deal.closed_at = now
    if stage.kind != "lost":
        deal.lost_reason = None
        deal.lost_note = None


def _customer_changed(session: Session, deal: Deal) -> None:
    """A deal opened, closed or went: its contact's mentions rank again (a customer's
    complaint weighs more in support's queue)."""
    if deal.contact_id is not None:
        session.flush()
        triage.contact_changed(session, deal.contact_id)


def _set_close(session: Session, user: User | None, deal: Deal, close: date | None) -> None:
    """Change the expected close date, noting it, and counting it when it moves later."""
    if deal.expected_close == close:
        return
    _note(
        session,
        user,
        deal,
        "expected_close",
        deal.expected_close.isoformat() if deal.expected_close else None,
        close.isoformat() if close else None,
    )
    if deal.expected_close is not None and close is not None and close > deal.expected_close:
        deal.close_date_pushes = (deal.close_date_pushes or 0) + 1
    deal.expected_close = close


def _end_of(session: Session, stage_id: int) -> float:
    """A position after every live card of the stage."""
    last = session.scalar(
        select(func.max(Deal.position)).where(Deal.stage_id == stage_id, Deal.deleted_at.is_(None))
    )
    return (last or 0.0) + 1.0


def new_deal_form(session: Session, contact: Contact | None, default_currency: str) -> dict:
    """What the new-deal form starts with: the contact's company, the first open stage."""
    first = open_stages(session)[0]
    return {
        "uuid": once.new_key(),
        "currency": default_currency,
        "stage_id": str(first.id),
        "company": (contact.company if contact else "") or "",
    }


def create_deal(
    session: Session,
    user: User,
    contact: Contact | None,
    data: dict,
    form_key: str | None,
    default_currency: str,
) -> tuple[Deal, bool]:
    """A deal owned by user, once per form key; (deal, created). The company defaults
    to the contact's.

    :raise ValidationError: with a message per field.
    """
    require(user, "deal.create")
    earlier = once.claim(session, user, form_key, "deal")
    if earlier is not None:
        return get_deal(session, user, earlier), False
    values, errors = _clean(session, data, default_currency, open_stages(session))
    if errors:
        raise ValidationError(errors)
    now = utcnow()
    stage = values.pop("stage")
    close = values.pop("expected_close")
    if not values.get("company") and contact is not None:
        values["company"] = contact.company
    deal = Deal(
        owner_id=user.id,
        contact_id=contact.id if contact else None,
        stage_id=stage.id,
        position=_end_of(session, stage.id),
        stage_entered_at=now,
        expected_close=close,
        close_date_pushes=0,
        **values,
    )
    session.add(deal)
    session.flush()
    _note(session, user, deal, "stage", None, stage.id)
    if close:
        _note(session, user, deal, "expected_close", None, close.isoformat())
    once.made(session, form_key or "", deal.id)
    session.flush()
    _customer_changed(session, deal)
    return deal, True


def edit_form(deal: Deal) -> dict:
    """The edit form's values for a deal."""
    return {
        "title": deal.title,
        "amount": money.as_input(deal.amount_minor, deal.currency),
        "currency": deal.currency,
        "stage_id": str(deal.stage_id),
        "expected_close": deal.expected_close.isoformat() if deal.expected_close else "",
        "company": deal.company or "",
        "next_step": deal.next_step or "",
        "notes": deal.notes or "",
    }


def update_deal(
    session: Session, user: User, deal: Deal, data: dict, default_currency: str
) -> Deal:
    """Save the edit form. An open deal moves among the open stages here; a closed one
    keeps its stage (reopen it to move it). :raise ValidationError: :raise
    PermissionDenied:"""
    require(user, "deal.edit", deal)
    allowed = open_stages(session) if deal.stage.kind == "open" else [deal.stage]
    values, errors = _clean(session, data, default_currency, allowed)
    if errors:
        raise ValidationError(errors)
    now = utcnow()
    _set_stage(session, user, deal, values.pop("stage"), now)
    _set_close(session, user, deal, values.pop("expected_close"))
    if values["amount_minor"] != deal.amount_minor or values["currency"] != deal.currency:
        _note(
            session,
            user,
            deal,
            "amount",
            money.format_money(deal.amount_minor, deal.currency),
            money.format_money(values["amount_minor"], values["currency"]),
        )
    for name, value in values.items():
        setattr(deal, name, value)
    session.flush()
    return deal


def _neighbour(session: Session, deal_id: int | None, stage_id: int) -> Deal | None:
    if deal_id is None:
        return None
    found = session.get(Deal, deal_id)
    if found is None or found.deleted_at is not None or found.stage_id != stage_id:
        raise StaleMove({"position": "The board has changed since it was loaded: reload it."})
    return found


def _renumber(session: Session, stage_id: int) -> None:
    """Spread a stage's positions out again (1, 2, 3, …) when two neighbours have no
    float left between them."""
    ids = session.scalars(
        select(Deal.id)
        .where(Deal.stage_id == stage_id, Deal.deleted_at.is_(None))
        .order_by(Deal.position, Deal.id)
    ).all()
    for i, deal_id in enumerate(ids, start=1):
        session.execute(update(Deal).where(Deal.id == deal_id).values(position=float(i)))
    session.expire_all()


def move_deal(
    session: Session,
    user: User,
    deal: Deal,
    stage_id: int | None,
    from_stage_id: int | None = None,
    prev_id: int | None = None,
    next_id: int | None = None,
) -> Deal:
    """Move the deal to a stage (the stage picker, a board drop, a keyboard move),
    between the cards prev_id and next_id when given, else at the end of the column.

    A move from a page that showed the deal in another stage than it is now
    (from_stage_id), or next to cards that are no longer there, is refused: someone
    else moved it meanwhile. A lost stage needs a reason: that is lose_deal.

    :raise StaleMove: :raise ValidationError: :raise PermissionDenied:
    """
    require(user, "deal.edit", deal)
    stage = session.get(Stage, stage_id) if stage_id else None
    if stage is None:
        raise ValidationError({"stage_id": "Choose a stage from the list."})
    if from_stage_id is not None and from_stage_id != deal.stage_id:
        where = deal.stage.name
        raise StaleMove(
            {"stage_id": f"Someone moved this deal to {where} meanwhile: reload to see it."}
        )
    if stage.kind == "lost" and deal.stage_id != stage.id:
        raise ValidationError({"lost_reason": "Say why the deal was lost: use Mark lost."})
    if prev_id == deal.id or next_id == deal.id:
        raise ValidationError({"position": "A card cannot go next to itself."})
    before = _neighbour(session, prev_id, stage.id)
    after = _neighbour(session, next_id, stage.id)
    if before and after and before.position > after.position:
        raise StaleMove({"position": "The board has changed since it was loaded: reload it."})
    if before and after:
        position = (before.position + after.position) / 2
        if not before.position < position < after.position:
            _renumber(session, stage.id)
            return move_deal(session, user, deal, stage_id, None, prev_id, next_id)
    elif before:
        position = before.position + 1.0
    elif after:
        position = after.position - 1.0
    elif deal.stage_id == stage.id:
        position = deal.position
    else:
        position = _end_of(session, stage.id)
    _set_stage(session, user, deal, stage, utcnow())
    deal.position = position
    session.flush()
    return deal


def win_deal(session: Session, user: User, deal: Deal) -> Deal:
    """Mark the deal won. :raise PermissionDenied:"""
    require(user, "deal.edit", deal)
    stage = _stage_of_kind(session, "won")
    if deal.stage.kind != "won":
        _set_stage(session, user, deal, stage, utcnow())
        deal.position = _end_of(session, stage.id)
    session.flush()
    return deal


def lose_deal(
    session: Session, user: User, deal: Deal, reason: str | None, note: str | None
) -> Deal:
    """Mark the deal lost, with one of LOST_REASONS and an optional note.

    :raise ValidationError: no reason from the list, or a note that cannot be stored.
    """
    require(user, "deal.edit", deal)
    errors = {}
    if reason not in LOST_REASONS:
        errors["lost_reason"] = "Choose why the deal was lost."
    if problem := text_problem(note, LIMITS["lost_note"]):
        errors["lost_note"] = problem
    if errors:
        raise ValidationError(errors)
    stage = _stage_of_kind(session, "lost")
    if deal.stage.kind != "lost":
        _set_stage(session, user, deal, stage, utcnow())
        deal.position = _end_of(session, stage.id)
    deal.lost_reason = reason
    deal.lost_note = " ".join((note or "").split()) or None
    session.flush()
    return deal


def reopen_deal(session: Session, user: User, deal: Deal, stage_id: int | None) -> Deal:
    """Put a won or lost deal back in an open stage (the first, unless one is named).

    :raise ValidationError: a stage that is not open.
    """
    require(user, "deal.edit", deal)
    choices = {s.id: s for s in open_stages(session)}
    stage = choices.get(stage_id) if stage_id else next(iter(choices.values()))
    if stage is None:
        raise ValidationError({"stage_id": "Choose an open stage."})
    if deal.stage.kind != "open":
        _set_stage(session, user, deal, stage, utcnow())
        deal.position = _end_of(session, stage.id)
    session.flush()
    return deal


def delete_deal(session: Session, user: User, deal: Deal) -> None:
    """Soft-delete: the deal leaves the board and the reports until restored."""
    require(user, "deal.edit", deal)
    deal.deleted_at = utcnow()
    session.flush()
    _customer_changed(session, deal)


def restore_deal(session: Session, user: User, deal_id: int, undo_window: timedelta) -> Deal:
    """Undo a soft delete made less than undo_window ago.

    :raise NotFoundError: unknown, not deleted, or deleted too long ago.
    """
    deal = session.get(Deal, deal_id)
    if deal is None or deal.deleted_at is None:
        raise NotFoundError(f"deleted deal {deal_id}")
    require(user, "deal.edit", deal)
    if utcnow() - deal.deleted_at > undo_window:
        raise NotFoundError(f"deleted deal {deal_id} is past its undo window")
    deal.deleted_at = None
    session.flush()
    _customer_changed(session, deal)
    return deal


# Attention (for the Today page) ---------------------------------------------------


@dataclass
class Attention:
    """One of a user's open deals that needs them, and why (in words)."""

    deal: Deal
    reasons: list[str] = field(default_factory=list)


def stuck_condition(open_list: list[Stage], now: datetime):
    """Deals in an open stage longer than its rotting days: one cutoff per stage,
    computed here, so the SQL is the same on every database."""
    parts = [
        and_(Deal.stage_id == s.id, Deal.stage_entered_at < now - timedelta(days=s.rotting_days))
        for s in open_list
        if s.rotting_days
    ]
    return or_(*parts) if parts else False


def _days(now: datetime, then: datetime) -> int:
    return max(0, (now - then).days)


def reasons_for(deal: Deal, now: datetime) -> list[str]:
    """Why an open deal needs attention: no next step, stuck, close date passed."""
    reasons = []
    if not deal.next_step:
        reasons.append("No next step")
    rotting = deal.stage.rotting_days
    if rotting and deal.stage_entered_at < now - timedelta(days=rotting):
        days = _days(now, deal.stage_entered_at)
        reasons.append(f"In {deal.stage.name} for {days} days (stuck after {rotting})")
    if deal.expected_close and deal.expected_close < now.astimezone(UTC).date():
        reasons.append(f"Close date passed ({deal.expected_close.isoformat()})")
    return reasons


def needing_attention(
    session: Session, user: User, now: datetime, limit: int = 10
) -> list[Attention]:
    """user's own open deals with no next step, stuck in their stage past its rotting
    days, or past their expected close date; each with its reasons, the longest overdue
    first (deals with no close date last)."""
    if not can(user, "deal.view"):
        return []
    open_list = open_stages(session)
    today = now.astimezone(UTC).date()
    deals = session.scalars(
        select(Deal)
        .where(
            Deal.owner_id == user.id,
            Deal.deleted_at.is_(None),
            Deal.stage_id.in_([s.id for s in open_list]),
            or_(
                Deal.next_step.is_(None),
                Deal.expected_close < today,
                stuck_condition(open_list, now),
            ),
        )
        .order_by(case((Deal.expected_close.is_(None), 1), else_=0), Deal.expected_close, Deal.id)
        .limit(limit)
    ).all()
    return [Attention(deal, reasons_for(deal, now)) for deal in deals]
