"""Ready replies (canned replies): short codes support types as /code, with variables
filled in for the mention and the agent.

What belongs here: saving, deleting and listing them (managers, admins and support) and
filling one in; the reply form's insertion at the cursor is static/js/reply.js's.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import CannedReply, Mention, User
from webapp.models.base import utcnow
from webapp.services.errors import NotFoundError, ValidationError
from webapp.services.permissions import require

BODY_MAX = 5_000

SHORT_CODE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
VARIABLES = ("first_name", "name", "handle", "agent_name")


def canned_replies(session: Session) -> list[CannedReply]:
    return list(session.scalars(select(CannedReply).order_by(CannedReply.short_code)))


def save_canned(
    session: Session, user: User, short_code: str, body: str, canned: CannedReply | None = None
) -> CannedReply:
    """Add a canned reply, or change one. :raise ValidationError:"""
    require(user, "canned.manage")
    code = (short_code or "").strip().lstrip("/").lower()
    body = (body or "").strip()
    errors = {}
    if not code or len(code) > 32 or not set(code) <= SHORT_CODE_CHARS:
        errors["short_code"] = "Use 1 to 32 letters, digits, - or _ (it is typed after /)."
    if not body:
        errors["body"] = "Write the reply."
    elif len(body) > BODY_MAX:
        errors["body"] = f"Keep it under {BODY_MAX:,} characters."
    else:
        unknown = {name for name in _placeholders(body) if name not in VARIABLES}
        if unknown:
            known = ", ".join("{" + v + "}" for v in VARIABLES)
            errors["body"] = f"Unknown {{{sorted(unknown)[0]}}}: use {known}."
    taken = session.scalar(select(CannedReply).where(CannedReply.short_code == code))
    if taken is not None and taken is not canned:
        errors["short_code"] = f"/{code} is taken."
    if errors:
        raise ValidationError(errors)
    if canned is None:
        canned = CannedReply(created_by_id=user.id, created_at=utcnow())
        session.add(canned)
    canned.short_code = code
    canned.body = body
    canned.updated_at = utcnow()
    return canned


def delete_canned(session: Session, user: User, canned_id: int) -> None:
    require(user, "canned.manage")
    canned = session.get(CannedReply, canned_id)
    if canned is None:
        raise NotFoundError(f"canned reply {canned_id}")
    session.delete(canned)


def _placeholders(body: str) -> list[str]:
    return re.findall(r"\{([a-z_]+)\}", body)


def fill(body: str, mention: Mention, agent: User) -> str:
    """A canned reply with its variables filled in for this mention and agent."""
    name = (mention.contact.name if mention.contact else None) or mention.author_name or ""
    values = {
        "first_name": name.split()[0] if name.split() else mention.author_handle,
        "name": name or mention.author_handle,
        "handle": "@" + mention.author_handle,
        "agent_name": agent.name.split()[0] if agent.name.split() else agent.name,
    }
    out = body
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out
