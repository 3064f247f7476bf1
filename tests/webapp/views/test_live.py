"""The inbox without reloads: the queue's poll answers 304 while nothing changed and the
fresh list and counts when something did (only a notice while items are selected);
a mention's page says who else is on it, and whether they are writing a reply, through
a real Redis, and that the thread changed since it was opened."""

import html
import re

from redis import Redis

from tests.conftest import sign_in
from tests.webapp.incoming import incoming
from webapp.extensions import db
from webapp.models import Mention, User
from webapp.services import mentions, presence, triage


def _ingest(app, *numbers) -> list[int]:
    with app.app_context():
        stored = mentions.ingest(
            db.session, [incoming(str(n), handle=f"fan{n}") for n in numbers]
        ).stored
        db.session.commit()
        return stored


def _poll_url(page: str, element: str) -> str:
    tag = re.search(rf'<div id="{element}"[^>]*>', page)[0]
    return html.unescape(re.search(r'hx-get="([^"]+)"', tag)[1])


def test_the_queue_poll_is_304_until_something_changes(app, client, login, make_user):
    (first,) = _ingest(app, 1)
    login(make_user("support"))
    page = client.get("/inbox/").get_data(as_text=True)
    url = _poll_url(page, "inbox-live") + "&status=open"
    quiet = client.get(url, headers={"HX-Request": "true"})
    assert quiet.status_code == 304 and quiet.data == b""
    assert quiet.headers["ETag"]
    (second,) = _ingest(app, 2)
    fresh = client.get(url, headers={"HX-Request": "true"})
    body = fresh.get_data(as_text=True)
    assert fresh.status_code == 200
    # The list and the counts come to be swapped in by id; the poller gets a new version.
    assert '<div id="mention-list" hx-swap-oob="true">' in body
    assert f'data-id="{second}"' in body and f'data-id="{first}"' in body
    assert re.search(r'id="inbox-nav"[^>]*hx-swap-oob="true"', body)
    assert re.search(r'Open<span class="count">2<', body)
    again = _poll_url(body, "inbox-live") + "&status=open"
    assert client.get(again, headers={"HX-Request": "true"}).status_code == 304
    # A plain conditional request works the same way.
    etag = fresh.headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304


def test_while_items_are_selected_the_poll_only_says_the_queue_changed(
    app, client, login, make_user
):
    (first,) = _ingest(app, 1)
    login(make_user("support"))
    url = _poll_url(client.get("/inbox/").get_data(as_text=True), "inbox-live")
    _ingest(app, 2)
    body = client.get(f"{url}&status=open&ids={first}").get_data(as_text=True)
    assert "The queue changed." in body and 'id="mention-list"' not in body


def test_the_poll_follows_the_filters_it_is_sent(app, client, login, make_user):
    _ingest(app, 1)
    login(make_user("support"))
    url = _poll_url(client.get("/inbox/").get_data(as_text=True), "inbox-live")
    body = client.get(f"{url}&status=resolved").get_data(as_text=True)
    assert "No resolved mentions" in body


def test_presence_says_who_else_is_here_and_what_they_do(app, make_user, redis_url):
    app.config["REDIS_URL"] = redis_url
    (mention_id,) = _ingest(app, 1)
    Redis.from_url(redis_url).delete(f"crm:presence:mention:{mention_id}")
    ann, bob = make_user("support", name="Ann"), make_user("support", name="Bob")
    ann_client, bob_client = app.test_client(), app.test_client()
    sign_in(ann_client, ann)
    sign_in(bob_client, bob)
    ann_page = ann_client.get(f"/inbox/{mention_id}").get_data(as_text=True)
    ann_poll = _poll_url(ann_page, "presence")
    first = ann_client.get(ann_poll + "&doing=viewing").get_data(as_text=True)
    assert "looking at this too" not in first
    bob_poll = _poll_url(bob_client.get(f"/inbox/{mention_id}").get_data(as_text=True), "presence")
    seen_by_bob = bob_client.get(bob_poll + "&doing=replying").get_data(as_text=True)
    assert "Ann is looking at this too." in seen_by_bob
    seen_by_ann = ann_client.get(ann_poll + "&doing=viewing")
    assert "Bob is writing a reply to this." in seen_by_ann.get_data(as_text=True)
    # Nothing changed for Ann: the next poll with her version is a 304.
    ann_next = _poll_url(seen_by_ann.get_data(as_text=True), "presence")
    assert ann_client.get(ann_next + "&doing=viewing").status_code == 304
    # Bob adds a note and takes the item: Ann's page hears of both.
    with app.app_context():
        mention = db.session.get(Mention, mention_id)
        who = db.session.get(User, bob.id)
        triage.add_note(db.session, who, mention, "Calling them now.")
        triage.assign(db.session, who, mention, bob.id)
        db.session.commit()
    told = ann_client.get(ann_next + "&doing=viewing").get_data(as_text=True)
    assert "Something was added to the thread since you opened it." in told
    assert "It is now open, with Bob." in told


def test_presence_forgets_the_silent_and_needs_no_redis(app, client, login, make_user, redis_url):
    key = "crm:presence:mention:424242"
    Redis.from_url(redis_url).delete(key)
    assert presence.here(redis_url, 424242, 1, "Ann", "viewing", now=1000.0) == []
    seen = presence.here(redis_url, 424242, 2, "Bob", "viewing", now=1010.0)
    assert seen == [presence.Present("Ann", "viewing")]
    later = 1010.0 + presence.PRESENCE_TTL + 1
    assert presence.here(redis_url, 424242, 2, "Bob", "viewing", now=later) == []
    assert presence.here(None, 424242, 2, "Bob", "viewing") is None
    # A Redis that is not there: the page still works and names nobody.
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    (mention_id,) = _ingest(app, 1)
    login(make_user("support"))
    poll = _poll_url(client.get(f"/inbox/{mention_id}").get_data(as_text=True), "presence")
    r = client.get(poll)
    assert r.status_code == 200 and "looking at this" not in r.get_data(as_text=True)
