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
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from pywebpush import WebPusher, WebPushException
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
# Pushes in flight at once from one sender.
CONCURRENCY = 16
# A signed VAPID header is good for this long (push services take up to 24 hours).
VAPID_HOURS = 12


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
    """Sends notifications to every subscription of their users: the pushes of a batch
    in parallel (a push service is a round trip away; one after another, a minute holds
    a few hundred), over one HTTP session's kept-alive connections, each push service's
    VAPID header signed once per sender (one sweep) with claims of its own."""

    def __init__(self, session: Session, settings: Mapping[str, Any]):
        problem = subject_problem(settings.get("VAPID_SUBJECT", ""))
        if problem:
            raise PushNotReady(problem)
        self.vapid, _ = keys(session, settings)
        self.claims = {"sub": settings["VAPID_SUBJECT"]}
        self.ttl = int(settings.get("PUSH_TTL_SECONDS", 12 * 3600))
        self.timeout = float(settings.get("PUSH_TIMEOUT_SECONDS", 10))
        self.http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=CONCURRENCY)
        self.http.mount("https://", adapter)
        self.http.mount("http://", adapter)
        self.pool = ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="push")
        self.headers: dict[str, dict[str, str]] = {}

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.http.close()

    def _vapid(self, endpoint: str) -> dict[str, str]:
        """The VAPID header for endpoint's push service (its origin is the audience)."""
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        if audience not in self.headers:
            # A copy per audience: the claims of one push service never reach another.
            claims = {**self.claims, "aud": audience, "exp": int(time.time()) + VAPID_HOURS * 3600}
            self.headers[audience] = self.vapid.sign(claims)
        return self.headers[audience]

    def _post(self, info: dict[str, Any], payload: str, headers: dict[str, str]) -> int:
        """Encrypt and send one message (in a pool thread); the push service's status
        (0: no answer)."""
        try:
            response = WebPusher(info, requests_session=self.http).send(
                payload,
                dict(headers),
                ttl=self.ttl,
                timeout=self.timeout,
                content_encoding="aes128gcm",
            )
            return response.status_code
        except (requests.RequestException, WebPushException) as exc:
            log.warning("push to %s failed: %s", urlsplit(info["endpoint"]).hostname, exc)
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
        work = []
        for row in rows:
            payload = json.dumps(
                {"title": row.title, "body": row.body, "url": row.url, "tag": row.key}
            )
            for sub in subscriptions.get(row.user_id, []):
                info = {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
                work.append((sub, info, payload, self._vapid(sub.endpoint)))
        codes = self.pool.map(lambda w: self._post(w[1], w[2], w[3]), work)
        now = utcnow()
        gone: set[str] = set()
        for (sub, _, _, _), code in zip(work, codes, strict=True):
            if 200 <= code < 300:
                sent.delivered += 1
                if sub.endpoint not in gone:
                    sub.last_success_at = now
            elif code in GONE:
                sent.gone += 1
                gone.add(sub.endpoint)
            else:
                sent.failed += 1
        if gone:
            session.execute(
                delete(PushSubscription).where(PushSubscription.endpoint.in_(gone)),
                execution_options={"synchronize_session": False},
            )
        mark_pushed(session, [r.id for r in rows])
        return sent
