"""The stages of the pipeline as admins edit them: name, order, probability, rotting
days and kind, with an open, a won and a lost stage always left."""

from __future__ import annotations

from sqlalchemy import func, insert, select, update
from sqlalchemy import literal as sa_literal
from sqlalchemy.orm import Session

from webapp.models import Deal, DealChange, Stage, User
from webapp.models.base import UTCDateTime, utcnow
from webapp.models.deals import STAGE_KINDS
from webapp.services import audit, deals
from webapp.services.errors import ValidationError
from webapp.services.permissions import require
from webapp.services.values import text_problem


def stage_deal_counts(session: Session) -> dict[int, int]:
    """How many deals (deleted ones too, which may come back) each stage holds."""
    return dict(session.execute(select(Deal.stage_id, func.count()).group_by(Deal.stage_id)).all())


def _int_field(raw, low: int, high: int, what: str, blank_ok: bool = False):
    text = str(raw or "").strip()
    if not text and blank_ok:
        return None, None
    if not text.isascii() or not text.isdigit() or len(text) > 6 or not low <= int(text) <= high:
        return None, f"Enter {what} from {low} to {high}."
    return int(text), None


def _clean_stage(data: dict) -> tuple[dict, dict[str, str]]:
    values: dict = {}
    errors: dict[str, str] = {}
    name = data.get("name")
    if problem := text_problem(name, 80):
        errors["name"] = problem
    elif not (name or "").strip():
        errors["name"] = "Enter a name."
    else:
        values["name"] = " ".join(name.split())
    for key, low, high, what, blank in (
        ("position", 1, 1000, "a place in the order", False),
        ("probability", 0, 100, "a probability in percent", False),
        ("rotting_days", 1, 3650, "a number of days", True),
    ):
        value, problem = _int_field(data.get(key), low, high, what, blank)
        if problem:
            errors[key] = problem
        else:
            values[key] = value
    if data.get("kind") not in STAGE_KINDS:
        errors["kind"] = "Choose open, won or lost."
    else:
        values["kind"] = data["kind"]
    return values, errors


def _kinds_left(session: Session, changed: Stage | None, kind: str | None) -> set[str]:
    left = {s.kind for s in deals.stages(session) if s is not changed}
    return left | ({kind} if kind else set())


def save_stage(session: Session, user: User, stage: Stage | None, data: dict) -> Stage:
    """Add a stage (stage None) or change one. A stage holding deals keeps its kind,
    and there is always an open, a won and a lost stage.

    :raise ValidationError: :raise PermissionDenied:
    """
    require(user, "stage.manage")
    values, errors = _clean_stage(data)
    if not errors and stage is not None and values["kind"] != stage.kind:
        held = stage_deal_counts(session).get(stage.id, 0)
        if held:
            errors["kind"] = f"This stage holds {held} deals: move them before changing its kind."
        elif _kinds_left(session, stage, values["kind"]) != set(STAGE_KINDS):
            errors["kind"] = f"The pipeline needs at least one {stage.kind} stage."
    if errors:
        raise ValidationError(errors)
    if stage is None:
        stage = Stage(**values)
        session.add(stage)
        session.flush()
        audit.record(
            session,
            user,
            "stage.added",
            "stage",
            stage.id,
            label=stage.name,
            changes={k: [None, v] for k, v in values.items()},
        )
        return stage
    before = {key: getattr(stage, key) for key in values}
    for key, value in values.items():
        setattr(stage, key, value)
    session.flush()
    if changes := audit.changed(before, values):
        audit.record(
            session, user, "stage.changed", "stage", stage.id, label=stage.name, changes=changes
        )
    return stage


def delete_stage(session: Session, user: User, stage: Stage, move_to_id: int | None) -> int:
    """Remove a stage, first moving the deals it holds to move_to_id (a stage of the
    same kind); how many moved. There is always an open, a won and a lost stage.

    :raise ValidationError: :raise PermissionDenied:
    """
    require(user, "stage.manage")
    if _kinds_left(session, stage, None) != set(STAGE_KINDS):
        raise ValidationError({"stage": f"The pipeline needs at least one {stage.kind} stage."})
    held = stage_deal_counts(session).get(stage.id, 0)
    if held:
        target = session.get(Stage, move_to_id) if move_to_id else None
        if target is None or target.id == stage.id or target.kind != stage.kind:
            raise ValidationError(
                {
                    "move_to": f"This stage holds {held} deals: choose another "
                    f"{STAGE_KINDS[stage.kind].lower()} stage to move them to."
                }
            )
        now = utcnow()
        moving = select(Deal.id).where(Deal.stage_id == stage.id)
        session.execute(
            insert(DealChange).from_select(
                ["deal_id", "field", "before", "after", "changed_by_id", "changed_at"],
                select(
                    Deal.id,
                    sa_literal("stage"),
                    sa_literal(str(stage.id)),
                    sa_literal(str(target.id)),
                    sa_literal(user.id),
                    sa_literal(now, UTCDateTime()),
                ).where(Deal.id.in_(moving)),
            )
        )
        session.execute(
            update(Deal)
            .where(Deal.stage_id == stage.id)
            .values(stage_id=target.id, stage_entered_at=now)
        )
    audit.record(
        session,
        user,
        "stage.deleted",
        "stage",
        stage.id,
        label=stage.name,
        changes={"deals_moved": [None, held]} if held else None,
    )
    session.delete(stage)
    session.flush()
    return held
