"""The demo source's sample posts: each demo mention links to the app's page for its
sample, which shows it as its network would, escaped, to signed-in users only."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from markupsafe import escape
from sqlalchemy import select

from social import demo
from social.mention import Mention as Incoming
from webapp.extensions import db
from webapp.models import Mention, Source
from webapp.services import mentions, polls

ORIGINAL = re.compile(r'<a href="([^"]*)"[^>]*>Open the original post</a>')
NOTE = "A sample post of the demo source"


def _poll_demo(app, batch: int = 3) -> list[tuple[int, str]]:
    """Poll a demo source once, as the worker does; (mention id, sample id) in order."""
    with app.app_context():
        source = Source(name="Demo mentions", kind="demo", config={"batch": batch})
        db.session.add(source)
        db.session.flush()
        polls.poll(db.session, source, demo.fetch)
        db.session.commit()
        rows = db.session.scalars(select(Mention).order_by(Mention.id)).all()
        return [(m.id, demo.samples()[int(m.external_id.split("-")[1])]["id"]) for m in rows]


def test_a_demo_mention_links_to_its_sample_post(app, client, login, make_user):
    stored = _poll_demo(app)
    assert len(stored) == 3
    login(make_user("support"))
    for mention_id, sample_id in stored:
        page = client.get(f"/inbox/{mention_id}").get_data(as_text=True)
        [href] = ORIGINAL.findall(page)
        assert href.startswith(f"/demo/posts/{sample_id}?at=")
        with app.app_context():
            posted_at = db.session.get(Mention, mention_id).posted_at
        post = client.get(href)
        assert post.status_code == 200
        html = post.get_data(as_text=True)
        sample = demo.find_sample(sample_id)
        assert str(escape(sample["text"])) in html
        assert str(escape(sample["author_name"])) in html
        assert f"@{escape(sample['author_handle'])} on " in html
        assert NOTE in html
        # The post is dated like the mention, to the minute both pages show.
        shown = posted_at.astimezone(UTC).strftime("%-d %b %Y, %H:%M")
        assert f"{shown} UTC</time>" in html and f"{shown} UTC</time>" in page


def test_a_sample_post_shows_its_network_and_escapes_everything(client, login, make_user):
    login(make_user("rep"))
    [hostile] = [s for s in demo.samples() if s["author_name"].startswith('">')]
    html = client.get(f"/demo/posts/{hostile['id']}").get_data(as_text=True)
    post = html.partition('<main id="main">')[2]  # the header's icons are our own <svg>s
    assert "<svg" not in post and "<img" not in post
    assert str(escape(hostile["author_name"])) in html
    assert str(escape(hostile["text"])) in html
    assert f"@{hostile['author_handle']} on Bluesky" in html
    # With no time in the address, none is made up.
    assert "<time" not in html
    mastodon = next(s for s in demo.samples() if s["network"] == "mastodon")
    html = client.get(f"/demo/posts/{mastodon['id']}?at=2025-05-01T12:00:00Z").get_data(
        as_text=True
    )
    assert f"@{mastodon['author_handle']} on Mastodon" in html
    assert '<time datetime="2025-05-01T12:00:00+00:00">1 May 2025, 12:00 UTC</time>' in html


@pytest.mark.parametrize("sample_id", ["no-such-sample", "DRIP-TRAY-LEAK", "%3Cscript%3E", "0"])
def test_an_unknown_sample_is_404(client, login, make_user, sample_id):
    login(make_user("marketer"))
    response = client.get(f"/demo/posts/{sample_id}")
    assert response.status_code == 404
    assert NOTE not in response.get_data(as_text=True)


@pytest.mark.parametrize("at", ["yesterday", "2025-05-01", "2025-05-01T12:00:00+02:00", "9" * 40])
def test_a_bad_time_is_a_clear_400(client, login, make_user, at):
    login(make_user("rep"))
    sample_id = demo.samples()[0]["id"]
    response = client.get(f"/demo/posts/{sample_id}", query_string={"at": at})
    assert response.status_code == 400
    assert "“at” must be a UTC time like 2025-05-01T12:00:00Z." in response.get_data(as_text=True)


def test_signed_out_is_sent_to_sign_in(client):
    sample_id = demo.samples()[0]["id"]
    response = client.get(f"/demo/posts/{sample_id}")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert NOTE not in response.get_data(as_text=True)


def test_the_original_post_link_takes_web_addresses_and_sample_posts_only(
    app, client, login, make_user
):
    urls = {
        "1": "https://x.com/someone/status/1",
        "2": "/demo/posts/drip-tray-leak?at=2025-05-01T12:00:00Z",
        "3": "javascript:alert(1)",
        "4": "//evil.example/post",
        "5": "data:text/html,<script>alert(1)</script>",
        "6": "/logout",
    }
    with app.app_context():
        mentions.ingest(
            db.session,
            [
                Incoming(
                    network="x",
                    external_id=key,
                    author_handle="someone",
                    author_name="Some One",
                    text="I love this product!",
                    created_at=datetime(2025, 5, 1, 12, 0, tzinfo=UTC),
                    url=url,
                )
                for key, url in urls.items()
            ],
        )
        db.session.commit()
        ids = {m.external_id: m.id for m in db.session.scalars(select(Mention))}
    login(make_user("rep"))
    links = {
        key: ORIGINAL.findall(client.get(f"/inbox/{ids[key]}").get_data(as_text=True))
        for key in urls
    }
    assert links == {"1": [urls["1"]], "2": [urls["2"]], "3": [], "4": [], "5": [], "6": []}
