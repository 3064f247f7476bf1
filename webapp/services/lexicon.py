"""The words admins teach the scorer: lexicon rules (a word or phrase and its valence on
VADER's scale) that apply to mentions scored from then on.

What belongs here: adding, changing and taking back rules (audited, checked by
social.sentiment's own rules so a rule the scorer would reject never reaches it) and
the rules in force at a moment. A rule is never deleted: taking it back or changing it
marks it removed, so a mention is explained by the rules that scored it, and the
rules page shows who added and removed what. The scoring is social.sentiment's; this
module only says which overrides it gets.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from social import sentiment
from webapp.models import LexiconRule, User
from webapp.models.base import utcnow
from webapp.services import audit
from webapp.services.errors import NotFoundError, ValidationError
from webapp.services.permissions import require


def in_force(session: Session, at: datetime | None = None) -> dict[str, float]:
    """The overrides the scorer used (or uses) at `at` (now if None): phrase -> valence."""
    at = at or utcnow()
    rows = session.execute(
        select(LexiconRule.phrase, LexiconRule.valence).where(
            LexiconRule.created_at <= at,
            or_(LexiconRule.removed_at.is_(None), LexiconRule.removed_at > at),
        )
    )
    return dict(rows.all())


def live(session: Session) -> list[LexiconRule]:
    """The rules in force now, by phrase, with who added them."""
    return list(
        session.scalars(
            select(LexiconRule)
            .options(selectinload(LexiconRule.created_by))
            .where(LexiconRule.removed_at.is_(None))
            .order_by(LexiconRule.phrase)
        )
    )


def history(session: Session, limit: int = 50) -> list[LexiconRule]:
    """Rules taken back or replaced, latest first, with who added and removed them."""
    return list(
        session.scalars(
            select(LexiconRule)
            .options(selectinload(LexiconRule.created_by), selectinload(LexiconRule.removed_by))
            .where(LexiconRule.removed_at.is_not(None))
            .order_by(LexiconRule.removed_at.desc(), LexiconRule.id.desc())
            .limit(limit)
        )
    )


def _valence(raw: object) -> float:
    """raw (a form's text or a number) as a valence. :raise ValidationError:"""
    if isinstance(raw, str):
        try:
            raw = float(raw.strip().replace(",", ".").replace("\u2212", "-"))
        except ValueError:
            message = "Give the valence as a number from -4 to 4."
            raise ValidationError({"valence": message}) from None
    return raw  # type: ignore[return-value] - checked by sentiment.checked_overrides


def save(session: Session, user: User, phrase: object, valence: object) -> LexiconRule:
    """Add the rule phrase = valence for mentions scored from now on; a live rule for the
    same phrase (as the scorer reads it) is replaced. :raise ValidationError: with the
    scorer's own reason for a phrase or valence it cannot take."""
    require(user, "lexicon.manage")
    value = _valence(valence)
    try:
        [(word, checked)] = sentiment.checked_overrides({phrase: value})
    except ValueError as exc:
        field = "valence" if "valence" in str(exc) else "phrase"
        raise ValidationError({field: str(exc)}) from None
    if len(word) > LexiconRule.phrase.type.length:
        raise ValidationError({"phrase": "Keep the word or phrase shorter."})
    live_rules = in_force(session)
    live_rules[word] = checked
    try:
        sentiment.checked_overrides(live_rules)
    except ValueError as exc:
        raise ValidationError({"phrase": str(exc)}) from None
    now = utcnow()
    before = session.scalar(
        select(LexiconRule).where(LexiconRule.phrase == word, LexiconRule.removed_at.is_(None))
    )
    if before is not None:
        if before.valence == checked:
            return before
        before.removed_at, before.removed_by_id = now, user.id
        session.flush()
    rule = LexiconRule(phrase=word, valence=checked, created_by_id=user.id, created_at=now)
    session.add(rule)
    session.flush()
    audit.record(
        session,
        user,
        "lexicon.save",
        "lexicon_rule",
        rule.id,
        label=word,
        changes={"valence": (before.valence if before else None, checked)},
    )
    return rule


def remove(session: Session, user: User, rule_id: int) -> LexiconRule:
    """Take a live rule back: mentions scored from now on ignore it. :raise NotFoundError:"""
    require(user, "lexicon.manage")
    rule = session.scalar(
        select(LexiconRule).where(LexiconRule.id == rule_id, LexiconRule.removed_at.is_(None))
    )
    if rule is None:
        raise NotFoundError("That rule is not in force (someone may have removed it).")
    rule.removed_at, rule.removed_by_id = utcnow(), user.id
    audit.record(
        session,
        user,
        "lexicon.remove",
        "lexicon_rule",
        rule.id,
        label=rule.phrase,
        changes={"valence": (rule.valence, None)},
    )
    return rule
