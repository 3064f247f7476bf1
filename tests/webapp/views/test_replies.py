"""Replies from the mention page, posted to the network once: through the real atproto
client to a local Bluesky, by the job a worker runs; a double tap, a lost answer and a
lost job each still give one post; a reply is held back when the thread changed; ready
replies; what cannot be answered says why."""

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.social.fake_replies import bluesky_replies
from tests.webapp.incoming import count, incoming
from webapp.extensions import db
from webapp.models import Mention, Reply, Source
from webapp.models.base import utcnow
from webapp.services import mentions
from workers import jobs


@pytest.fixture
def fake(app, redis_url):
    """A local Bluesky, and the app set to reach it as a worker would."""
    app.config["REDIS_URL"] = redis_url
    app.config["OUTBOUND_ALLOW_PRIVATE"] = True
    with bluesky_replies() as running:
        yield running


def _stored(app, fake, n=1, text="@brand my order never came") -> int:
    with app.app_context():
        source = Source(name="Brand on Bluesky", kind="bluesky", config=fake.config)
        db.session.add(source)
        db.session.flush()
        (mention_id,) = mentions.ingest(db.session, [fake.mention(n, text)], source).stored
        db.session.commit()
        return mention_id


def _form(client, url) -> dict:
    page = client.get(url).get_data(as_text=True)
    return {
        "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page)[1],
        "key": re.search(r'name="key" value="([^"]+)"', page)[1],
        "thread": re.search(r'name="thread" value="([^"]+)"', page)[1],
    }


def _send_all(app):
    """What a worker does with the queued replies: run each one's job."""
    with app.app_context():
        ids = db.session.scalars(select(Reply.id).order_by(Reply.id)).all()
        db.session.rollback()
        return [jobs.send_reply(reply_id) for reply_id in ids]


def _reply(app) -> Reply:
    with app.app_context():
        reply = db.session.scalars(select(Reply)).one()
        db.session.expunge(reply)
        return reply


def test_support_replies_and_it_is_posted_once_as_a_reply_to_the_post(
    app, client, login, make_user, fake
):
    mention_id = _stored(app, fake)
    login(make_user("support", name="Sam Support"))
    url = f"/inbox/{mention_id}"
    form = _form(client, url)
    r = client.post(f"{url}/reply", data={**form, "body": "Sorry! It ships today."})
    assert r.status_code == 303
    page = client.get(url).get_data(as_text=True)
    assert "Reply queued" in page and "Queued" in page
    # A double tap (the same form sent again) is the same reply.
    client.post(f"{url}/reply", data={**form, "body": "Sorry! It ships today."})
    with app.app_context():
        assert count(Reply) == 1

    (outcome,) = _send_all(app)
    assert outcome["state"] == "sent"
    (posted,) = fake.replies()
    record = posted["value"]
    assert record["text"] == "@fan1.bsky.social Sorry! It ships today."
    with app.app_context():
        stored = db.session.get(Mention, mention_id)
        assert record["reply"]["parent"]["uri"] == stored.external_id
        assert record["reply"]["root"]["uri"] == stored.external_id
        assert stored.first_response_at is not None
        assert stored.priority_parts["waiting"] == 0
    reply = _reply(app)
    assert reply.state == "sent" and reply.url.startswith("https://bsky.app/profile/")
    page = client.get(url).get_data(as_text=True)
    assert "<strong>Sent</strong>" in page and reply.url in page
    # The job run again (a retried job) posts nothing more.
    assert _send_all(app) == [None]
    assert len(fake.replies()) == 1


def test_a_lost_answer_is_retried_and_still_posted_once(app, client, login, make_user, fake):
    mention_id = _stored(app, fake)
    login(make_user("support"))
    url = f"/inbox/{mention_id}"
    client.post(f"{url}/reply", data={**_form(client, url), "body": "On its way!"})
    fake.lose_next_answer()
    (outcome,) = _send_all(app)
    assert outcome["state"] == "queued"  # the network may have it: try again later
    reply = _reply(app)
    assert reply.attempts == 1 and reply.not_before > utcnow() and reply.error
    # Not before its time, even if its job comes early.
    assert _send_all(app) == [None]
    with app.app_context():
        db.session.get(Reply, reply.id).not_before = utcnow() - timedelta(seconds=1)
        db.session.commit()
    (outcome,) = _send_all(app)
    assert outcome["state"] == "sent"
    assert len(fake.replies()) == 1  # written once, by the first attempt


def test_a_reply_whose_job_was_lost_is_queued_again_by_the_sweep(
    app, client, login, make_user, fake, redis_url
):
    from workers import queues

    mention_id = _stored(app, fake)
    login(make_user("support"))
    url = f"/inbox/{mention_id}"
    client.post(f"{url}/reply", data={**_form(client, url), "body": "Looking into it."})
    queue = queues.queue("high", queues.connect(redis_url))
    queue.empty()  # Redis lost the job
    with app.app_context():
        db.session.scalars(select(Reply)).one().updated_at = utcnow() - timedelta(minutes=3)
        db.session.commit()
        assert jobs.triage_sweep()["requeued"] == 1
    (job,) = queue.jobs
    assert job.func_name == "workers.jobs.send_reply"
    queue.empty()


def test_a_reply_is_held_back_when_the_thread_changed(app, make_user, fake):
    from tests.conftest import sign_in

    mention_id = _stored(app, fake)
    alice, bob = app.test_client(), app.test_client()
    sign_in(alice, make_user("support", name="Alice Agent"))
    sign_in(bob, make_user("support", name="Bob Agent"))
    url = f"/inbox/{mention_id}"
    stale = _form(alice, url)
    bob_form = _form(bob, url)
    bob.post(f"{url}/notes", data={"csrf_token": bob_form["csrf_token"], "note": "I rang them"})
    r = alice.post(f"{url}/reply", data={**stale, "body": "We are on it"})
    assert r.status_code == 409
    page = r.get_data(as_text=True)
    assert "Not sent: the thread changed since you opened it." in page
    assert "Bob Agent added a note: I rang them" in page and ">We are on it</textarea>" in page
    with app.app_context():
        assert count(Reply) == 0
    # Sent again from the page that showed what is new, it goes.
    fresh = re.search(r'name="thread" value="([^"]+)"', page)[1]
    r = alice.post(f"{url}/reply", data={**stale, "thread": fresh, "body": "We are on it"})
    assert r.status_code == 303
    with app.app_context():
        assert count(Reply) == 1


def test_too_long_or_empty_is_refused_with_the_networks_count(app, client, login, make_user, fake):
    mention_id = _stored(app, fake)
    login(make_user("support"))
    url = f"/inbox/{mention_id}"
    r = client.post(f"{url}/reply", data={**_form(client, url), "body": "👍🏽" * 301})
    assert r.status_code == 422
    assert "Bluesky" in r.get_data(as_text=True) and "300" in r.get_data(as_text=True)
    r = client.post(f"{url}/reply", data={**_form(client, url), "body": "   "})
    assert r.status_code == 422
    r = client.post(f"{url}/reply", data={**_form(client, url), "key": "x", "body": "Hi"})
    assert r.status_code == 422
    with app.app_context():
        assert count(Reply) == 0


def test_what_cannot_be_answered_says_why_and_links_the_original(app, client, login, make_user):
    with app.app_context():
        (rss_id,) = mentions.ingest(
            db.session,
            [incoming("https://blog.example/p/1", network="rss", url="https://blog.example/p/1")],
        ).stored
        (loose_id,) = mentions.ingest(db.session, [incoming("99", network="x")]).stored
        db.session.commit()
    login(make_user("support"))
    page = client.get(f"/inbox/{rss_id}").get_data(as_text=True)
    assert "have no reply" in page and 'name="body"' not in page
    page = client.get(f"/inbox/{loose_id}").get_data(as_text=True)
    assert "no account to answer from" in page
    assert "https://x.com/intent/post?in_reply_to=99" in page
    # A webhook that speaks for X holds no X account: nothing to answer from either.
    with app.app_context():
        hook = Source(name="Hook", kind="webhook", config={})
        db.session.add(hook)
        db.session.flush()
        (hooked_id,) = mentions.ingest(db.session, [incoming("77", network="x")], hook).stored
        db.session.commit()
    page = client.get(f"/inbox/{hooked_id}").get_data(as_text=True)
    assert "Its source holds no account on this network to answer from." in page
    assert 'name="body"' not in page


def test_x_posts_that_do_not_mention_us_offer_reply_on_x_instead(app, client, login, make_user):
    with app.app_context():
        search = Source(name="X search", kind="x", config={"mode": "search", "query": "kestrel"})
        named = Source(
            name="X search, named",
            kind="x",
            config={"mode": "search", "query": "kestrel", "username": "KestrelHome"},
        )
        timeline = Source(name="X mentions", kind="x", config={"mode": "mentions", "user_id": "1"})
        db.session.add_all([search, named, timeline])
        db.session.flush()
        (unnamed_id,) = mentions.ingest(db.session, [incoming("1", network="x")], search).stored
        (aside_id, addressed_id) = mentions.ingest(
            db.session,
            [
                incoming("2", network="x", text="kestrel grinders are loud"),
                incoming("3", network="x", text="@kestrelhome my grinder is loud"),
            ],
            named,
        ).stored
        (ours_id,) = mentions.ingest(db.session, [incoming("4", network="x")], timeline).stored
        db.session.commit()
    login(make_user("support"))
    page = client.get(f"/inbox/{aside_id}").get_data(as_text=True)
    assert "does not mention @KestrelHome, so X would refuse" in page
    assert 'name="body"' not in page and "Reply on X instead" in page
    assert "x.com/intent/post?in_reply_to=2" in page
    # Sending anyway is refused before any call is spent.
    form = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page)[1]}
    r = client.post(
        f"/inbox/{aside_id}/reply", data={**form, "key": str(uuid.uuid4()), "body": "Hi"}
    )
    assert r.status_code == 422 and "would refuse" in r.get_data(as_text=True)
    assert "an admin can add its @name" in client.get(f"/inbox/{unnamed_id}").get_data(as_text=True)
    for answerable in (addressed_id, ours_id):
        assert 'name="body"' in client.get(f"/inbox/{answerable}").get_data(as_text=True)


def test_ready_replies_are_filled_in_for_the_mention_and_the_agent(
    app, client, login, make_user, fake
):
    mention_id = _stored(app, fake)
    agent = make_user("support", name="Sam Support")
    login(agent)
    token = _form(client, f"/inbox/{mention_id}")["csrf_token"]
    r = client.post(
        "/inbox/canned",
        data={
            "csrf_token": token,
            "short_code": "/Sorry",
            "body": "Hi {first_name}, {agent_name} here.",
        },
    )
    assert r.status_code == 303
    r = client.post(
        "/inbox/canned", data={"csrf_token": token, "short_code": "bad code", "body": "{nope}"}
    )
    assert r.status_code == 422 and "Unknown {nope}" in r.get_data(as_text=True)
    page = client.get(f"/inbox/{mention_id}").get_data(as_text=True)
    with app.app_context():
        first = db.session.get(Mention, mention_id).author_name.split()[0]
    assert f'data-insert="Hi {first}, Sam here."' in page and 'data-code="sorry"' in page
    canned_id = re.search(r"canned=(\d+)#reply", page)[1]
    filled = client.get(f"/inbox/{mention_id}?canned={canned_id}").get_data(as_text=True)
    assert f">Hi {first}, Sam here.</textarea>" in filled


@pytest.mark.parametrize("role", ["rep", "marketer"])
def test_readers_cannot_reply(app, client, login, make_user, fake, role):
    mention_id = _stored(app, fake)
    login(make_user(role))
    url = f"/inbox/{mention_id}"
    page = client.get(url).get_data(as_text=True)
    assert 'name="body"' not in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    data = {"csrf_token": token[1] if token else "", "key": str(uuid.uuid4()), "body": "hi"}
    assert client.post(f"{url}/reply", data=data).status_code in (400, 403)
    assert client.get("/inbox/canned").status_code == 403
    with app.app_context():
        assert count(Reply) == 0
