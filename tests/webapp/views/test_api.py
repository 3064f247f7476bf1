"""The API's webhook endpoint: signed mentions stored once; unsigned, replayed or
malformed requests refused, storing nothing."""

import json
import time

import pytest
from sqlalchemy import select

from social import webhook
from tests.webapp.incoming import count
from webapp.extensions import db
from webapp.models import Mention, Source

ONE = {"external_id": "x", "author_handle": "a", "text": "t", "created_at": "2026-11-20T10:00:00Z"}


def _signed(secret, body, when=None):
    stamp = int(when or time.time())
    return {"X-CRM-Timestamp": str(stamp), "X-CRM-Signature": webhook.sign(secret, body, stamp)}


def test_webhook_stores_signed_mentions_once(app, client):
    with app.app_context():
        src = Source(name="Hook", kind="webhook", config={}, secret="s3cret-value")
        db.session.add(src)
        db.session.commit()
        url = f"/api/webhooks/{src.id}"
    body = json.dumps(
        [
            {
                "external_id": "w1",
                "author_handle": "fan",
                "text": "Nice!",
                "created_at": "2026-11-20T10:00:00Z",
                "campaign": "winter",
            },
            {
                "external_id": "w2",
                "author_handle": "fan",
                "text": "Bad.",
                "created_at": "2026-11-20T10:01:00Z",
            },
        ]
    ).encode()
    r = client.post(url, data=body, headers=_signed("s3cret-value", body))
    assert r.status_code == 202 and r.get_json() == {"stored": 2, "duplicates": 0}
    r = client.post(url, data=body, headers=_signed("s3cret-value", body))
    assert r.get_json() == {"stored": 0, "duplicates": 2}
    with app.app_context():
        stored = db.session.scalar(select(Mention).where(Mention.external_id == f"{src.id}:w1"))
        assert stored.network == "webhook" and stored.extra == {"campaign": "winter"}


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "X-CRM-Timestamp header is missing"),
        ("wrong-secret", 401, "does not match"),
        ("stale", 401, "too old"),
    ],
)
def test_webhook_refuses_unsigned_or_replayed_requests(app, client, headers, status, message):
    with app.app_context():
        src = Source(name="Hook", kind="webhook", config={}, secret="s3cret-value")
        db.session.add(src)
        db.session.commit()
        url = f"/api/webhooks/{src.id}"
    body = json.dumps(ONE).encode()
    if headers == "wrong-secret":
        headers = _signed("other", body)
    elif headers == "stale":
        headers = _signed("s3cret-value", body, time.time() - 3600)
    r = client.post(url, data=body, headers=headers)
    assert r.status_code == status
    assert message in r.get_json()["error"]
    with app.app_context():
        assert count(Mention) == 0


def test_webhook_rejects_malformed_items_and_stores_nothing(app, client):
    with app.app_context():
        src = Source(name="Hook", kind="webhook", config={}, secret="k")
        db.session.add(src)
        db.session.commit()
        url = f"/api/webhooks/{src.id}"
    body = json.dumps([ONE, {"external_id": "bad"}]).encode()
    r = client.post(url, data=body, headers=_signed("k", body))
    assert r.status_code == 422
    assert "2" in r.get_json()["error"]
    with app.app_context():
        assert count(Mention) == 0
    assert (
        client.post("/api/webhooks/999", data=body, headers=_signed("k", body)).status_code == 404
    )
