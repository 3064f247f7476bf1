"""Web Push with our own VAPID keys (pywebpush, no vendor relay): the key pair (from the
environment, or made once and kept in the database so every machine signs alike), the
contact push services may write to (a real one, or nothing is sent), subscriptions of
the phones that asked, and sending a notification to each of its user's phones."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from pywebpush import WebPushException, webpush
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from webapp.models import AppSecret, Notification, PushSubscription, User
from webapp.models.base import utcnow
from webapp.services.errors import ValidationError
from webapp.services.notifications import mark_pushed
from webapp.services.permissions import require
from webapp.services.values import insert_once, text_problem

log = logging.getLogger(__name__)
SECRET_NAME = "vapid_private_key"  # noqa: S105 (the name of the row, not a secret)
# Apple's push service answers 403 BadJwtToken to a contact no one can reach; the
# others take it, so the mistake would show only on iPhones.
PLACEHOLDER_DOMAINS = re.compile(
    r"(^|\.)(localhost|local|invalid|test|example|localdomain)$|(^|\.)example\.[a-z]+$"
)
GONE = (404, 410)


class PushNotReady(RuntimeError):
    """Push cannot be sent: the reason, in words for the admin page."""


def subject_problem(subject: str) -> str | None:
    """Why subject is no VAPID contact a push service accepts; None when it is one."""
    if not subject:
        return "VAPID_SUBJECT is not set: set it to a mailto: or https: address of yours."
    if subject.startswith("mailto:"):
        address = subject.removeprefix("mailto:")
        local, _, host = address.rpartition("@")
        if local and PLACEHOLDER_DOMAINS.search(host.lower().rstrip(".")):
            return _placeholder(subject)
        if not local or not host or not re.fullmatch(r"[A-Za-z0-9.-]+\.[A-Za-z]{2,}", host):
            return f"VAPID_SUBJECT {subject!r} is no mail address: write mailto:you@yourdomain."
    elif subject.startswith("https://"):
        host = (urlsplit(subject).hostname or "").lower()
        if PLACEHOLDER_DOMAINS.search(host):
            return _placeholder(subject)
        if "." not in host:
            return f"VAPID_SUBJECT {subject!r} has no public host name."
    else:
        return f"VAPID_SUBJECT {subject!r} must start with mailto: or https://."
    if PLACEHOLDER_DOMAINS.search(host.lower().rstrip(".")):
        return _placeholder(subject)
    return None


def _placeholder(subject: str) -> str:
    return (
        f"VAPID_SUBJECT {subject!r} is a placeholder: Apple's push service refuses it"
        " (403 BadJwtToken). Set a mailto: or https: address people can reach."
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _load(private: str) -> Vapid:
    if private.lstrip().startswith("-----BEGIN"):
        return Vapid.from_pem(private.encode())
    return Vapid.from_string(private)


def keys(session: Session, settings: Mapping[str, Any]) -> tuple[Vapid, str]:
    """The VAPID key and its public half (base64url, the page's applicationServerKey):
    VAPID_PRIVATE_KEY, else the pair made once into app_secrets (the first machine to
    ask makes it; one at the same moment finds the other's)."""
    if settings.get("VAPID_PRIVATE_KEY"):
        vapid = _load(settings["VAPID_PRIVATE_KEY"])
    else:
        row = session.get(AppSecret, SECRET_NAME)
        if row is None:
            made = Vapid()
            made.generate_keys()
            raw = made.private_key.private_numbers().private_value.to_bytes(32, "big")
            insert_once(
                session,
                AppSecret,
                {"name": SECRET_NAME, "value": _b64url(raw), "created_at": utcnow()},
                "name",
            )
            row = session.get(AppSecret, SECRET_NAME)
        vapid = _load(row.value)
    public = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return vapid, _b64url(public)


@dataclass
class Status:
    """What the push admin page says."""

    subject: str
    problem: str | None
    key_from: str
    public_key: str
    subscriptions: int


def status(session: Session, user: User, settings: Mapping[str, Any]) -> Status:
    """Whether push can be sent, and why not. :raise PermissionDenied:"""
    require(user, "push.manage")
    _, public = keys(session, settings)
    count = len(session.scalars(select(PushSubscription.id)).all())
    return Status(
        subject=settings.get("VAPID_SUBJECT", ""),
        problem=subject_problem(settings.get("VAPID_SUBJECT", "")),
        key_from="the environment (VAPID_PRIVATE_KEY)"
        if settings.get("VAPID_PRIVATE_KEY")
        else "the database (made once by the app)",
        public_key=public,
        subscriptions=count,
    )


def _host_allowed(host: str, allowed: frozenset[str]) -> bool:
    return any(host == h or host.endswith("." + h) for h in allowed)


def endpoint_problem(endpoint: object, settings: Mapping[str, Any]) -> str | None:
    """Why a subscription may not point at endpoint: the workers post to it, so only
    the push services of PUSH_SERVICE_HOSTS (and a local one, in tests) are taken."""
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > 1000:
        return "The subscription has no endpoint."
    if problem := text_problem(endpoint, 1000):
        return problem
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    local = settings.get("OUTBOUND_ALLOW_PRIVATE") and host in {"127.0.0.1", "localhost"}
    if local and parts.scheme in {"http", "https"}:
        return None
    if parts.scheme != "https" or not _host_allowed(host, settings["PUSH_SERVICE_HOSTS"]):
        return "That push service is not one this app sends to."
    return None


def _key(value: object, size: int, name: str) -> str:
    try:
        raw = _unb64url(value) if isinstance(value, str) and value.isascii() else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != size or (name == "p256dh" and raw[0] != 4):
        raise ValidationError({name: f"The subscription's {name} key is not valid."})
    return value


def subscribe(
    session: Session, user: User, data: object, settings: Mapping[str, Any], agent: str = ""
) -> PushSubscription:
    """Keep a phone's subscription (PushSubscription.toJSON()) for user; the same
    endpoint again (a new sign-in on that phone) moves to user with its new keys.

    :raise ValidationError:
    """
    require(user, "notification.view")
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        raise ValidationError({"subscription": "Send the subscription as a JSON object."})
    if problem := endpoint_problem(data.get("endpoint"), settings):
        raise ValidationError({"endpoint": problem})
    p256dh = _key(data["keys"].get("p256dh"), 65, "p256dh")
    auth = _key(data["keys"].get("auth"), 16, "auth")
    values = {"user_id": user.id, "p256dh": p256dh, "auth": auth, "user_agent": agent[:200]}
    row = insert_once(
        session,
        PushSubscription,
        {**values, "endpoint": data["endpoint"], "created_at": utcnow()},
        "endpoint",
    )
    if row is None:
        session.execute(
            update(PushSubscription)
            .where(PushSubscription.endpoint == data["endpoint"])
            .values(**values)
        )
        row = session.scalar(
            select(PushSubscription).where(PushSubscription.endpoint == data["endpoint"])
        )
    return row


def unsubscribe(session: Session, user: User, endpoint: object) -> int:
    """Forget the user's subscription at endpoint; how many were removed."""
    if not isinstance(endpoint, str) or text_problem(endpoint, 1000):
        return 0
    result = session.execute(
        delete(PushSubscription).where(
            PushSubscription.user_id == user.id, PushSubscription.endpoint == endpoint
        )
    )
    return result.rowcount or 0


@dataclass
class Sent:
    delivered: int = 0
    gone: int = 0
    failed: int = 0


class Sender:
    """Sends notifications to every subscription of their users, with one HTTP session
    (kept-alive connections to each push service) and one key."""

    def __init__(self, session: Session, settings: Mapping[str, Any]):
        problem = subject_problem(settings.get("VAPID_SUBJECT", ""))
        if problem:
            raise PushNotReady(problem)
        self.vapid, _ = keys(session, settings)
        self.claims = {"sub": settings["VAPID_SUBJECT"]}
        self.ttl = int(settings.get("PUSH_TTL_SECONDS", 12 * 3600))
        self.timeout = float(settings.get("PUSH_TIMEOUT_SECONDS", 10))
        self.http = requests.Session()

    def close(self) -> None:
        self.http.close()

    def _post(self, sub: PushSubscription, payload: str) -> int:
        """Send one message; the push service's status (0: no answer)."""
        info = {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
        try:
            response = webpush(
                info,
                payload,
                vapid_private_key=self.vapid,
                # pywebpush fills aud and exp into the dict it is given: a fresh one per
                # send, or the first push service's audience is sent to every other.
                vapid_claims=dict(self.claims),
                ttl=self.ttl,
                timeout=self.timeout,
                requests_session=self.http,
            )
            return response.status_code
        except WebPushException as exc:
            return exc.response.status_code if exc.response is not None else 0
        except requests.RequestException as exc:
            log.warning("push to %s failed: %s", urlsplit(sub.endpoint).hostname, exc)
            return 0

    def send(self, session: Session, notification_ids: list[int]) -> Sent:
        """Push each notification to its user's phones and mark it pushed; a
        subscription the push service says is gone (404, 410) is deleted."""
        sent = Sent()
        if not notification_ids:
            return sent
        rows = list(
            session.scalars(
                select(Notification).where(
                    Notification.id.in_(notification_ids), Notification.pushed_at.is_(None)
                )
            )
        )
        users = {n.user_id for n in rows}
        subscriptions: dict[int, list[PushSubscription]] = {}
        for sub in session.scalars(
            select(PushSubscription).where(PushSubscription.user_id.in_(users))
        ):
            subscriptions.setdefault(sub.user_id, []).append(sub)
        now = utcnow()
        for row in rows:
            payload = json.dumps(
                {"title": row.title, "body": row.body, "url": row.url, "tag": row.key}
            )
            for sub in subscriptions.get(row.user_id, []):
                code = self._post(sub, payload)
                if 200 <= code < 300:
                    sent.delivered += 1
                    sub.last_success_at = now
                elif code in GONE:
                    sent.gone += 1
                    session.execute(
                        delete(PushSubscription).where(PushSubscription.endpoint == sub.endpoint)
                    )
                    subscriptions[row.user_id] = [
                        s for s in subscriptions[row.user_id] if s.endpoint != sub.endpoint
                    ]
                else:
                    sent.failed += 1
        mark_pushed(session, [r.id for r in rows])
        return sent
