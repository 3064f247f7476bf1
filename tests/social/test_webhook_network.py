"""A signed webhook speaks for itself: an item claiming to be an X post by a contact is
stored as a webhook mention on no one's timeline and claims nothing of X's, so the real
post is stored when it arrives; only a webhook an admin set to speak for a network
stores that network's posts, with their ids as sent."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from social import webhook
from social.mention import FetchResult
from social.mention import Mention as Incoming
from webapp.extensions import db
from webapp.models import Activity, Mention, Source
from webapp.services import polls, sources

POST_ID = "1786123456789012345"
CLAIM = {
    "source": "x",
    "external_id": POST_ID,
    "author_handle": "barista_bob",
    "author_name": "Bob",
    "text": "@KestrelHome your grinder is a scam",
    "created_at": "2026-11-20T10:00:00Z",
}


def _webhook(app, **config) -> int:
    with app.app_context():
        source = Source(name="Hook", kind="webhook", config=config, secret="hook-secret")
        db.session.add(source)
        db.session.commit()
        return source.id


def _send(client, source_id: int, *items: dict):
    body = json.dumps(list(items)).encode()
    stamp = int(time.time())
    headers = {
        "X-CRM-Timestamp": str(stamp),
        "X-CRM-Signature": webhook.sign("hook-secret", body, stamp),
    }
    return client.post(f"/api/webhooks/{source_id}", data=body, headers=headers)


def _real_x_post(app) -> dict[str, int]:
    """The real post, as an X source's poll brings it."""

    def fetch(config, cursor):
        post = Incoming(
            "x",
            POST_ID,
            "barista_bob",
            "Bob",
            "@KestrelHome best grinder I've owned",
            datetime(2026, 11, 20, 10, 5, tzinfo=UTC),
        )
        return FetchResult([post], POST_ID)

    with app.app_context():
        source = Source(name="X", kind="x", config={"mode": "mentions", "user_id": "1"})
        db.session.add(source)
        db.session.flush()
        outcome = polls.poll(db.session, source, fetch)
        db.session.commit()
        return outcome.counts()


def _timeline(app, contact_id: int) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(Mention.text)
                .join(Activity, Activity.mention_id == Mention.id)
                .where(Activity.contact_id == contact_id)
            )
        )


@pytest.fixture
def bob(make_user, make_contact):
    return make_contact(make_user("rep"), name="Bob Barista", handle_x="barista_bob")


def test_a_webhook_claiming_an_x_post_stores_its_own_mention_on_no_timeline(app, client, bob):
    hook = _webhook(app)
    response = _send(client, hook, CLAIM)
    assert response.status_code == 202 and response.get_json()["stored"] == 1
    with app.app_context():
        [stored] = db.session.scalars(select(Mention)).all()
        assert (stored.network, stored.external_id) == ("webhook", f"{hook}:{POST_ID}")
        assert stored.contact_id is None
        assert stored.extra == {"claimed_source": "x"}
    assert _timeline(app, bob.id) == []

    # The real post is not taken for a duplicate of the claim.
    assert _real_x_post(app) == {"stored": 1, "duplicates": 0, "attached": 1}
    assert _timeline(app, bob.id) == ["@KestrelHome best grinder I've owned"]


def test_two_webhooks_sending_the_same_id_never_collide(app, client):
    first, second = _webhook(app), _webhook(app)
    item = {**CLAIM, "source": "webhook", "external_id": "ticket-1"}
    assert _send(client, first, item).get_json()["stored"] == 1
    assert _send(client, second, item).get_json()["stored"] == 1
    assert _send(client, second, item).get_json() == {"stored": 0, "duplicates": 1}
    with app.app_context():
        ids = set(db.session.scalars(select(Mention.external_id)))
    assert ids == {f"{first}:ticket-1", f"{second}:ticket-1"}


def test_a_webhook_set_to_speak_for_x_stores_x_posts_as_sent(app, client, bob):
    hook = _webhook(app, network="x")
    assert _send(client, hook, CLAIM).get_json()["stored"] == 1
    with app.app_context():
        [stored] = db.session.scalars(select(Mention)).all()
        assert (stored.network, stored.external_id) == ("x", POST_ID)
    assert _timeline(app, bob.id) == [CLAIM["text"]]
    assert _real_x_post(app) == {"stored": 0, "duplicates": 1, "attached": 0}

    response = _send(client, hook, {**CLAIM, "source": "mastodon", "external_id": "m1"})
    assert response.status_code == 422
    assert "item 1: source must be x" in response.get_json()["error"]


def test_the_source_form_sets_whose_posts_a_webhook_sends(app, client, login, make_user):
    login(make_user("admin"))
    form = client.get("/sources/new?kind=webhook").get_data(as_text=True)
    assert 'name="network"' in form and "Its own: stored as webhook mentions" in form
    created = client.post(
        "/sources/",
        data={"uuid": str(uuid.uuid4()), "kind": "webhook", "name": "Relay", "network": "x"},
    )
    assert created.status_code == 303
    with app.app_context():
        source = db.session.scalar(select(Source))
        assert source.config == {"network": "x"}
        assert sources.webhook_network(source) == "x"
        source_id = source.id
    edit = client.get(f"/sources/{source_id}/edit").get_data(as_text=True)
    assert '<option value="x" selected>' in edit

    client.post(f"/sources/{source_id}/edit", data={"name": "Relay", "network": ""})
    with app.app_context():
        assert db.session.get(Source, source_id).config == {}

    refused = client.post(
        "/sources/",
        data={"uuid": str(uuid.uuid4()), "kind": "webhook", "name": "Odd", "network": "rss"},
    )
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert 'id="e-network"' in html and "Choose one of the networks listed" in html
