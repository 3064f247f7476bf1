"""Inbound webhooks: signing, verifying and parsing what other systems push to us.

A sender signs each request with the source's shared secret:
  X-CRM-Timestamp: <unix seconds>
  X-CRM-Signature: sha256=<hex HMAC-SHA256(secret, b"<timestamp>." + body)>
The timestamp is inside the MAC and must be recent, so a captured request cannot be
replayed later; several secrets may be valid at once while one is being rotated, and
a sender may send several comma-separated signatures for the same reason.
The body is normalized mention JSON: one object, an array, or JSON lines.

What a webhook says is its own: its mentions are network "webhook" whatever "source" an
item claims, with external ids namespaced by the source, so a sender can neither put
posts on a contact's timeline as if X had them, nor claim an (x, id) pair before the
real post arrives, nor collide with another sender. Only a webhook an admin set to speak
for one network (x, mastodon or bluesky) stores its mentions under that network, with
their ids as sent. No Flask here: the view passes the raw body and header values in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from typing import Any

from social.mention import TOO_DEEP, Mention, MentionError, from_json

SIGNATURE_HEADER = "X-CRM-Signature"
TIMESTAMP_HEADER = "X-CRM-Timestamp"
SCHEME = "sha256"
TOLERANCE = 300
MAX_BODY = 1_000_000
MAX_ITEMS = 500
MAX_REPORTED = 20
# The networks an admin may let a webhook speak for.
SPEAKS_FOR = ("x", "mastodon", "bluesky")
_ID_LIMIT = 512

Secret = bytes | str


class WebhookError(ValueError):
    """A request that must be refused; the message says why (never the secret).

    `problems` lists (number, message) for malformed items: the item's place in an
    array, or its line in JSON lines, counted from 1.
    """

    def __init__(self, message: str, problems: list[tuple[int, str]] | None = None):
        super().__init__(message)
        self.problems = problems or []


def _key(secret: Secret) -> bytes:
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if not key:
        # An empty key would let anyone who guesses that sign valid requests.
        raise WebhookError("This source has no webhook secret configured.")
    return key


def sign(secret: Secret, body: bytes, timestamp: int) -> str:
    """The X-CRM-Signature value for body sent at timestamp (unix seconds)."""
    mac = hmac.new(_key(secret), f"{int(timestamp)}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def verify(
    secret: Secret | Iterable[Secret],
    body: bytes,
    signature_header: str | None,
    timestamp_header: str | None,
    now: float,
    tolerance: int = TOLERANCE,
) -> None:
    """Check that body was signed with (one of) secret within tolerance seconds of now.

    :raise WebhookError: saying what is missing, stale or wrong.
    """
    secrets = [secret] if isinstance(secret, bytes | str) else list(secret)
    keys = [_key(s) for s in secrets]
    if not keys:
        raise WebhookError("This source has no webhook secret configured.")
    if not timestamp_header:
        raise WebhookError(f"The {TIMESTAMP_HEADER} header is missing.")
    stamp = timestamp_header.strip()
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise WebhookError(f"{TIMESTAMP_HEADER} must be a time in whole unix seconds.")
    timestamp = int(stamp)
    if timestamp < now - tolerance:
        raise WebhookError(f"The request is too old ({int(now - timestamp)} s); resend it.")
    if timestamp > now + tolerance:
        raise WebhookError("The request is dated in the future; check the sender's clock.")
    if not signature_header:
        raise WebhookError(f"The {SIGNATURE_HEADER} header is missing.")
    offered = []
    for part in signature_header.split(","):
        scheme, sep, value = part.strip().partition("=")
        if sep and scheme == SCHEME:
            offered.append(value.strip().lower().encode())
    if not offered:
        raise WebhookError(f"{SIGNATURE_HEADER} must look like {SCHEME}=<hex digest>.")
    expected = [sign(key, body, timestamp).partition("=")[2].encode() for key in keys]
    # Compare every pair, so the time taken says nothing about which one matched.
    matched = False
    for value in offered:
        for digest in expected:
            matched |= hmac.compare_digest(value, digest)
    if not matched:
        raise WebhookError("The signature does not match this source's secret.")


def parse(
    body: bytes, *, namespace: str | None = None, network: str | None = None
) -> list[Mention]:
    """Mentions from a webhook body: one normalized mention object, a JSON array of
    them, or one per line.

    network is the one network the webhook speaks for (see SPEAKS_FOR): its mentions
    keep that network and their ids, and an item naming another is refused. Without it
    every mention is network "webhook" (a "source" the item claims is kept in extra as
    claimed_source), its external id prefixed with "<namespace>:" (the source's id).

    :raise WebhookError: naming each malformed item by its number (from 1); nothing is
        returned then, so the sender can fix and resend the lot (ids make that safe).
    """
    if len(body) > MAX_BODY:
        raise WebhookError(
            f"The body is larger than {MAX_BODY // 1_000_000} MB; send less at once."
        )
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise WebhookError("The body is not UTF-8 text.") from None
    if not text.strip():
        raise WebhookError("The body is empty.")
    items, problems, unit = _items(text)
    if len(items) + len(problems) > MAX_ITEMS:
        raise WebhookError(f"At most {MAX_ITEMS} mentions per request.")
    mentions: list[Mention] = []
    for number, item in items:
        try:
            mention = from_json(item, default_network=network or "webhook")
            mentions.append(_owned(mention, namespace, network))
        except MentionError as exc:
            problems.append((number, str(exc)))
    if problems:
        problems.sort()
        listed = "; ".join(f"{unit} {n}: {message}" for n, message in problems[:MAX_REPORTED])
        more = len(problems) - MAX_REPORTED
        tail = f"; and {more} more" if more > 0 else ""
        raise WebhookError(f"Nothing was stored. {listed}{tail}.", problems)
    return mentions


def _owned(mention: Mention, namespace: str | None, network: str | None) -> Mention:
    """mention in the webhook's own namespace, or in the network it speaks for.

    :raise MentionError: for an item naming another network than the one spoken for, or
        an id too long once namespaced.
    """
    if network:
        if mention.network != network:
            raise MentionError(
                f"source must be {network} (or left out): this webhook is for {network}"
            )
        return mention
    if mention.network != "webhook":
        mention.extra = {**mention.extra, "claimed_source": mention.network}
        mention.network = "webhook"
    if namespace:
        external_id = f"{namespace}:{mention.external_id}"
        if len(external_id) > _ID_LIMIT:
            limit = _ID_LIMIT - len(namespace) - 1
            raise MentionError(f"external_id is longer than {limit} characters")
        mention.external_id = external_id
    return mention


def _items(text: str) -> tuple[list[tuple[int, Any]], list[tuple[int, str]], str]:
    """Numbered items and JSON errors, and what the numbers count ("item" or "line"):
    items of one JSON value, or lines when the whole body is not one value."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        pass
    except RecursionError:
        if text.lstrip().startswith("["):
            return (*_array_items(text), "item")
    else:
        if isinstance(document, list):
            return list(enumerate(document, 1)), [], "item"
        return [(1, document)], [], "item"
    items: list[tuple[int, Any]] = []
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append((number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
        except RecursionError:
            problems.append((number, TOO_DEEP))
    return items, problems, "line"


_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


def _array_items(text: str) -> tuple[list[tuple[int, Any]], list[tuple[int, str]]]:
    """The items of a JSON array read one by one, for an array too deep to read at once:
    the item nested too deeply is named by its number, and reading stops there (nothing
    is stored from such a body anyway)."""
    items: list[tuple[int, Any]] = []
    position = _SPACE.match(text, text.index("[") + 1).end()
    if text.startswith("]", position):
        return items, []
    for number in range(1, MAX_ITEMS + 2):
        try:
            value, position = _DECODER.raw_decode(text, position)
        except RecursionError:
            return items, [(number, TOO_DEEP)]
        except json.JSONDecodeError as exc:
            return items, [(number, f"not valid JSON ({exc.msg} at column {exc.colno})")]
        items.append((number, value))
        position = _SPACE.match(text, position).end()
        if text.startswith("]", position):
            return items, []
        if not text.startswith(",", position):
            return items, [(number + 1, "not valid JSON (expected , or ] between items)")]
        position = _SPACE.match(text, position + 1).end()
    return items, []
