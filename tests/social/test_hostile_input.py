"""Input one line cannot stop: times that overflow in UTC, follower counts beyond the
column, JSON nested too deeply, and posts with no text. An imported line or webhook item
is refused with its number and the reason (the rest of an import goes in; a webhook
answers 422, never 500); a polled post keeps going in, with the field that cannot be
stored dropped, capped or replaced by the fetch time."""

from __future__ import annotations

import copy
import functools
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from mastodon_mock.testing.server import MockServer
from sqlalchemy import select

from social import bluesky, mastodon, rss, webhook, x
from social.mention import FOLLOWERS_MAX
from tests.social.servers import Server, static
from tests.social.test_bluesky import FakeBluesky, post_view
from tests.social.test_mention import DEEP, EARLY, LATE, line
from tests.social.test_x import MENTIONS, TOKEN, _local_client
from webapp.extensions import db
from webapp.models import Mention, Source
from webapp.services import polls

FIXTURES = Path(__file__).parent / "fixtures"


def _hostile_lines() -> list[str]:
    return [
        line(external_id="good-1"),
        line(external_id="early", created_at=EARLY),
        line(external_id="late", created_at=LATE),
        line(external_id="followers", author_followers=10**30),
        line(external_id="int4", author_followers=2**31),
        '{"source": "x", "external_id": "deep", "more": ' + DEEP + "}",
        line(external_id="good-2", author_followers=FOLLOWERS_MAX),
    ]


def test_import_refuses_the_hostile_lines_by_number_and_stores_the_rest(app, tmp_path):
    path = tmp_path / "mentions.jsonl"
    path.write_text("\n".join(_hostile_lines()) + "\n")
    result = app.test_cli_runner().invoke(args=["mentions", "import", str(path)])
    assert result.exit_code == 1, result.output
    assert "2 stored, 0 duplicate, 5 rejected" in result.output
    assert "line 2: created_at is out of range" in result.output
    assert "line 3: created_at is out of range" in result.output
    assert "line 4: author_followers is larger than 2,147,483,647" in result.output
    assert "line 5: author_followers is larger than 2,147,483,647" in result.output
    assert "line 6: the JSON is nested more than 64 levels deep" in result.output
    with app.app_context():
        rows = db.session.execute(select(Mention.external_id, Mention.author_followers))
        stored = dict(rows.all())
    assert stored == {"good-1": None, "good-2": FOLLOWERS_MAX}


def _webhook(app) -> tuple[str, str]:
    with app.app_context():
        source = Source(name="Hook", kind="webhook", config={}, secret="hook-secret")
        db.session.add(source)
        db.session.commit()
        return f"/api/webhooks/{source.id}", "hook-secret"


def _post(client, url: str, secret: str, body: bytes):
    stamp = int(time.time())
    headers = {"X-CRM-Timestamp": str(stamp), "X-CRM-Signature": webhook.sign(secret, body, stamp)}
    return client.post(url, data=body, headers=headers)


def test_a_webhook_names_each_hostile_item_with_422_and_stores_nothing(app, client):
    url, secret = _webhook(app)
    items = "[" + ",".join(_hostile_lines()) + "]"
    response = _post(client, url, secret, items.encode())
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert "item 2: created_at is out of range" in error
    assert "item 3: created_at is out of range" in error
    assert "item 4: author_followers is larger than" in error
    assert "item 5: author_followers is larger than" in error
    assert "item 6: the JSON is nested more than 64 levels deep" in error
    assert "item 1:" not in error and "item 7:" not in error
    with app.app_context():
        assert db.session.scalar(select(Mention.id)) is None


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (DEEP, "item 1"),  # one value, too deep to read
        (line(external_id="a") + "\n" + DEEP, "line 2"),  # JSON lines
        ("[" + line(external_id="a") + ", " + DEEP + "]", "item 2"),  # an array
    ],
)
def test_a_webhook_body_nested_too_deeply_is_a_422(app, client, body, named):
    url, secret = _webhook(app)
    response = _post(client, url, secret, body.encode())
    assert response.status_code == 422
    assert f"{named}: the JSON is nested more than 64 levels deep" in response.get_json()["error"]


def _poll(app, kind: str, config: dict, fetch) -> Mention:
    """Poll a source once with fetch; the one mention it stored."""
    with app.app_context():
        source = Source(name=f"{kind} source", kind=kind, config=config)
        db.session.add(source)
        db.session.commit()
        polls.poll(db.session, source, fetch)
        db.session.commit()
        assert source.last_error is None
        [stored] = db.session.scalars(select(Mention)).all()
        db.session.expunge(stored)
        return stored


def _mastodon_status(mock, **changes) -> None:
    """The hashtag timeline answers with the recorded status, changed."""
    status = json.loads((FIXTURES / "mastodon_status_nasty.json").read_text())
    for key, value in changes.items():
        if key == "followers_count":
            status["account"][key] = value
        else:
            status[key] = value
    rule = {
        "match": {"path": "/api/v1/timelines/tag/kestrel"},
        "effect": {"type": "status", "status": 200, "body": [status]},
        "count": 1,
    }
    httpx.post(f"{mock.base_url}/api/v1/_mock/faults", json=rule).raise_for_status()


MASTODON_FETCH = functools.partial(mastodon.fetch, allow_private=True)


@pytest.mark.parametrize(("when", "followers"), [(EARLY, 10**30), (LATE, 2**31), (LATE, -5)])
def test_a_mastodon_post_out_of_range_is_stored_with_what_fits(app, when, followers):
    before = datetime.now(UTC)
    with MockServer() as mock:
        _mastodon_status(mock, created_at=when, followers_count=followers)
        config = {"instance": mock.base_url, "mode": "hashtag", "tag": "kestrel"}
        stored = _poll(app, "mastodon", config, MASTODON_FETCH)
    assert stored.external_id.endswith("/statuses/113456789012345678")
    assert before - timedelta(seconds=1) <= stored.posted_at <= datetime.now(UTC)
    assert stored.author_followers == (FOLLOWERS_MAX if followers > 0 else None)


def test_an_x_post_out_of_range_is_stored_with_what_fits(app):
    body = {
        "data": [
            {
                "id": "1578516295611748353",
                "edit_history_tweet_ids": ["1578516295611748353"],
                "text": "@KestrelHome grinder jammed again",
                "author_id": "42",
                "created_at": "9999-12-31T23:59:59.000Z",
            }
        ],
        "includes": {
            "users": [
                {
                    "id": "42",
                    "name": "Loud Voice",
                    "username": "loudvoice",
                    "public_metrics": {"followers_count": 10**30, "following_count": 1},
                }
            ]
        },
        "meta": {"result_count": 1, "newest_id": "1578516295611748353"},
    }
    before = datetime.now(UTC)
    with Server() as server:
        server.routes[MENTIONS] = static(json.dumps(body).encode())
        client = _local_client(server.port, bearer_token=TOKEN, wait_on_rate_limit=False)
        config = {"mode": "mentions", "user_id": "783214", "bearer_token": TOKEN}
        stored = _poll(app, "x", config, functools.partial(x.fetch, client=client))
    assert stored.author_followers == FOLLOWERS_MAX
    assert before - timedelta(seconds=1) <= stored.posted_at <= datetime.now(UTC)


@pytest.mark.parametrize(("indexed", "created"), [(LATE, EARLY), (EARLY, LATE), (LATE, LATE)])
def test_a_bluesky_post_out_of_range_is_stored_with_what_fits(app, indexed, created):
    before = datetime.now(UTC)
    with FakeBluesky() as fake:
        post = post_view(1, "kestrel duo is loud")
        post["indexedAt"] = indexed
        post["record"]["createdAt"] = created
        fake.posts = [post]
        config = {"mode": "search", "service": fake.url, "query": "kestrel"}
        fetch = functools.partial(bluesky.fetch, allow_private=True, sessions={})
        stored = _poll(app, "bluesky", config, fetch)
    assert stored.text == "kestrel duo is loud"
    assert before - timedelta(seconds=1) <= stored.posted_at <= datetime.now(UTC)


RSS_ITEM = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Podcast</title>'
    "<link>https://pod.example/</link><description>Episodes</description>{item}</channel></rss>"
)


def test_an_rss_entry_dated_past_the_year_9999_is_stored_at_the_fetch_time(app):
    item = (
        "<item><title>Episode 12: the grinder</title><guid>https://pod.example/12</guid>"
        "<pubDate>Fri, 31 Dec 9999 23:59:59 -2359</pubDate></item>"
    )
    before = datetime.now(UTC)
    with Server() as server:
        server.routes["/feed.xml"] = static(RSS_ITEM.format(item=item).encode(), "text/xml")
        config = {"url": f"http://127.0.0.1:{server.port}/feed.xml"}
        stored = _poll(app, "rss", config, functools.partial(rss.fetch, allow_private=True))
    assert before - timedelta(seconds=1) <= stored.posted_at <= datetime.now(UTC)


PLACEHOLDER = "(no text: media only)"


def _shown_without_text(app, client, login, make_user, make_contact, stored: Mention, handle):
    """The mention is unscored as no_text, and each page that shows it says so."""
    assert stored.text == ""
    assert stored.sentiment_status == "no_text"
    assert stored.label is None and stored.compound is None
    login(make_user("support"))
    assert PLACEHOLDER in client.get("/inbox/").get_data(as_text=True)
    assert PLACEHOLDER in client.get(f"/inbox/{stored.id}").get_data(as_text=True)
    contact = make_contact(make_user("rep"), name="Media Poster", **handle)
    page = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "Mention" in page and PLACEHOLDER in page


def test_a_mastodon_post_of_media_only_is_stored_and_shown_as_such(
    app, client, login, make_user, make_contact
):
    image = {
        "id": "22345792",
        "type": "image",
        "url": "https://files.remote.example/media_attachments/files/022/original/photo.jpg",
        "preview_url": "https://files.remote.example/media_attachments/files/022/small/photo.jpg",
        "remote_url": None,
        "description": None,
        "blurhash": "UFBWY:8_0Jxv4mx]t8t64.%M-:IUWGWAt6M}",
    }
    with MockServer() as mock:
        _mastodon_status(mock, content="", media_attachments=[image])
        config = {"instance": mock.base_url, "mode": "hashtag", "tag": "kestrel"}
        stored = _poll(app, "mastodon", config, MASTODON_FETCH)
    _shown_without_text(
        app,
        client,
        login,
        make_user,
        make_contact,
        stored,
        {"handle_mastodon": "zoe@remote.example"},
    )


def test_a_bluesky_post_of_images_only_is_stored_and_shown_as_such(
    app, client, login, make_user, make_contact
):
    with FakeBluesky() as fake:
        post = post_view(1, "")
        post["record"]["embed"] = {
            "$type": "app.bsky.embed.images",
            "images": [
                {
                    "alt": "",
                    "image": {
                        "$type": "blob",
                        "ref": {
                            "$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"
                        },
                        "mimeType": "image/jpeg",
                        "size": 204800,
                    },
                }
            ],
        }
        # Search finds it by other means than its (empty) text.
        original = copy.deepcopy(post)
        fake.handle = lambda *args, **kwargs: (200, {"posts": [original], "cursor": None}, {})
        config = {"mode": "search", "service": fake.url, "query": "kestrel"}
        fetch = functools.partial(bluesky.fetch, allow_private=True, sessions={})
        stored = _poll(app, "bluesky", config, fetch)
    _shown_without_text(
        app,
        client,
        login,
        make_user,
        make_contact,
        stored,
        {"handle_bluesky": "searcher.bsky.social"},
    )


def test_an_rss_entry_with_only_an_enclosure_is_stored_without_text(app):
    item = (
        "<item><guid>https://pod.example/13</guid>"
        '<enclosure url="https://pod.example/13.mp3" length="1000" type="audio/mpeg"/>'
        "<pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate></item>"
    )
    with Server() as server:
        server.routes["/feed.xml"] = static(RSS_ITEM.format(item=item).encode(), "text/xml")
        config = {"url": f"http://127.0.0.1:{server.port}/feed.xml"}
        stored = _poll(app, "rss", config, functools.partial(rss.fetch, allow_private=True))
    assert stored.text == ""
    assert stored.sentiment_status == "no_text"
