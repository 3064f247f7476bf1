"""Replies posted back to X, Mastodon and Bluesky: the real tweepy, Mastodon.py and
atproto clients against local servers that answer with each service's JSON shapes
(servers.Server as X, mastodon-mock, the FakeBluesky of test_bluesky.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import requests
from mastodon_mock.testing.server import MockServer

from social import bluesky_reply, mastodon, net, replies, x_reply
from social.replies import Target
from tests.social.fake_replies import (
    OUR_ID,
    RESTRICTED,
    X_CONFIG,
    FakeX,
    api,
    bluesky_replies,
    bob_says,
    find_by_uri,
    mastodon_config,
    replies_to,
)
from tests.social.servers import Server
from tests.social.test_bluesky import BRAND, PASSWORD, FakeBluesky, _cid, post_view
from tests.social.test_x import ToLocal, _local_client

# Counting by each network's rules.

FAMILY = "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # one emoji, 7 code points
FLAG = "\U0001f1eb\U0001f1f7"
E_ACUTE = "e\u0301"  # one character, two code points


def target(network: str = "x", **fields: Any) -> Target:
    values = {
        "external_id": "1578516295611748353",
        "url": None,
        "author_handle": "quietgardener22",
        "author_id": "1446582950914723841",
        "text": "@acme my grinder broke",
        "extra": {},
    }
    return Target(network=network, **{**values, **fields})


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("a" * 280, 280),
        ("日本語" * 10, 60),  # CJK counts 2
        (FAMILY, 2),  # an emoji counts 2 however many code points make it
        (FLAG + FLAG, 4),
        ("café", 4),
        ("cafe\u0301", 4),  # normalized first, as X does
        ("see https://example.com/a/very/long/path/to/a/support/article?id=12345", 4 + 23),
        ("see example.com.", 4 + 23 + 1),  # a bare domain is a link; the stop is not
        ("e.g. notes.txt", 14),  # not a top-level domain: no link
        ("write to help@example.com", 25),  # an address is no link
        ("“quoted” — dash", 15),  # general punctuation counts 1
    ],
)
def test_x_weighted_length(text, count):
    assert replies.x_length(text) == count


def test_x_check_counts_and_limits():
    ok = replies.check("x", "日" * 140, target())
    assert (ok.count, ok.limit, ok.ok) == (280, 280, True)
    over = replies.check("x", "日" * 140 + "!", target())
    assert not over.ok
    [problem] = over.problems
    assert problem.code == "too_long"
    assert "281 / 280" in problem.words and "by 1" in problem.words
    assert replies.check("x", "   ", target()).problems[0].code == "empty"


def test_x_warnings_link_cost_and_unmentioned_account():
    quiet = replies.check("x", "Sorry about that, we will call you", target(), account="acme")
    assert quiet.warnings == ()
    linked = replies.check("x", "Try example.com/fix", target(), account="acme")
    assert [w.code for w in linked.warnings] == ["link_cost"]
    assert "US$0.20" in linked.warnings[0].words and "US$0.015" in linked.warnings[0].words
    elsewhere = target(text="my grinder from @acmestore broke")
    unmentioned = replies.check("x", "Sorry!", elsewhere, account="@Acme")
    assert [w.code for w in unmentioned.warnings] == ["not_mentioned"]
    assert (
        "@Acme" in unmentioned.warnings[0].words and "open it on X" in unmentioned.warnings[0].words
    )
    assert unmentioned.ok  # a warning, not a problem: the page offers opening it on X


def test_bluesky_counts_graphemes_with_the_author_named():
    post = target("bluesky", author_handle="fan.bsky.social", external_id="at://d/p/1")
    prefix = len("@fan.bsky.social ")
    fits = replies.check("bluesky", E_ACUTE * (300 - prefix), post)
    assert fits.text.startswith("@fan.bsky.social ")
    assert (fits.count, fits.limit, fits.ok) == (300, 300, True)
    assert not replies.check("bluesky", E_ACUTE * (301 - prefix), post).ok
    family = replies.check("bluesky", FAMILY * 3 + FLAG, post)
    assert family.count == prefix + 4
    # Named already: not named twice.
    named = replies.check("bluesky", "thanks @FAN.bsky.social!", post)
    assert named.text == "thanks @FAN.bsky.social!"
    # Within 300 graphemes but past the 3000 bytes the lexicon allows.
    heavy = replies.check("bluesky", FAMILY * 200, post)
    assert heavy.count == prefix + 200
    assert [p.code for p in heavy.problems] == ["too_long"]


def test_mastodon_counts_with_the_instance_limit():
    post = target("mastodon", author_handle="bob@mock.local", external_id="https://m/s/1")
    link = "https://example.com/" + "x" * 100
    text = f"See {link} ."
    default = replies.check("mastodon", text, post)
    assert default.text == f"@bob@mock.local {text}"
    # "@bob " (the host is not counted) + "See " + 23 for the link + " ."
    assert (default.count, default.limit) == (5 + 4 + 23 + 2, 500)
    assert replies.check("mastodon", "x" * 495, post).count == 500
    assert replies.check("mastodon", "x" * 495, post).ok
    assert not replies.check("mastodon", "x" * 496, post).ok
    assert replies.check("mastodon", "x" * 496, post, limit=1000).ok
    assert replies.check("mastodon", "x" * 30, post, limit=30).problems[0].code == "too_long"


@pytest.mark.parametrize("network", ["rss", "webhook", "myspace"])
def test_feeds_have_no_reply(network):
    post = target(network, external_id="https://shop.example/blog/1", url="https://shop.example/1")
    [problem] = replies.check(network, "hello", post).problems
    assert problem.code == "no_reply" and "open the original" in problem.words
    with pytest.raises(replies.NotAllowed, match="open the original") as caught:
        replies.post({}, post, "hello", key="reply-1")
    assert caught.value.permanent
    assert replies.open_on_network(post) == "https://shop.example/1"


def test_open_on_network():
    assert (
        replies.open_on_network(target())
        == "https://x.com/intent/post?in_reply_to=1578516295611748353"
    )
    status = target("mastodon", external_id="https://m.example/users/a/statuses/9", url=None)
    assert replies.open_on_network(status) == "https://m.example/users/a/statuses/9"
    post = target("bluesky", external_id="at://did:plc:abc/app.bsky.feed.post/3lx", url=None)
    assert replies.open_on_network(post) == "https://bsky.app/profile/did:plc:abc/post/3lx"
    with pytest.raises(replies.NotAllowed):
        replies.open_on_network(target(external_id="javascript:alert(1)"))


# X: tweepy against a local server that keeps a timeline.


class LoseAnswer(ToLocal):
    """Sends what tweepy meant for X to the local server; the first POST's answer is
    lost on the way back (the post was made)."""

    lost = False

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = super().send(request, **kwargs)
        if request.method == "POST" and not self.lost:
            self.lost = True
            response.close()
            raise requests.ConnectionError("connection reset by peer")
        return response


@pytest.fixture
def fake_x():
    with Server() as server:
        fake = FakeX(server)
        keys = {k: X_CONFIG[k] for k in X_CONFIG if k.startswith(("consumer", "access"))}
        client = _local_client(server.port, **keys, wait_on_rate_limit=False)
        yield fake, server, client
        client.session.close()


def test_x_reply_in_reply_to_the_post(fake_x):
    fake, server, client = fake_x
    posted = x_reply.reply(
        X_CONFIG, target(), "So sorry & we'll fix it", key="reply-1", client=client
    )

    [sent] = fake.posted
    assert sent["body"] == {
        "text": "So sorry & we'll fix it",
        "reply": {"in_reply_to_tweet_id": "1578516295611748353"},
    }
    assert sent["authorization"].startswith("OAuth ")  # user context, not the app's bearer
    assert 'oauth_token="783214-token"' in sent["authorization"]
    assert posted.external_id == fake.timeline[0]["id"]
    assert posted.url == f"https://x.com/acme/status/{posted.external_id}"
    lookup = [path for method, path, _ in server.requests if method == "GET"]
    assert lookup[0].startswith(f"/2/users/{OUR_ID}/tweets?")
    assert "since_id=1578516295611748353" in lookup[0]


def test_x_retry_after_a_lost_answer_posts_nothing_new(fake_x):
    fake, server, client = fake_x
    client.session.mount("https://api.twitter.com/", LoseAnswer(server.port))

    with pytest.raises(replies.Unavailable) as caught:
        x_reply.reply(X_CONFIG, target(), "We are on it", key="reply-7", client=client)
    assert not caught.value.permanent
    again = x_reply.reply(X_CONFIG, target(), "We are on it", key="reply-7", client=client)

    assert len(fake.posted) == 1
    assert again.external_id == fake.timeline[0]["id"]


def test_x_lookup_pages_through_our_posts_since(fake_x, monkeypatch):
    fake, server, client = fake_x
    monkeypatch.setattr(x_reply, "REPLY_LOOKUP", 10)
    client.session.mount("https://api.twitter.com/", LoseAnswer(server.port))
    with pytest.raises(replies.Unavailable):
        x_reply.reply(X_CONFIG, target(), "We are on it", key="reply-7", client=client)
    for n in range(15):  # we went on posting elsewhere
        other = str(1578516295611760000 + n)
        fake.timeline.insert(
            0, {"id": other, "text": f"other {n}", "edit_history_tweet_ids": [other]}
        )

    again = x_reply.reply(X_CONFIG, target(), "We are on it", key="reply-7", client=client)

    assert len(fake.posted) == 1
    assert again.external_id == fake.timeline[-1]["id"]
    pages = [path for method, path, _ in server.requests if method == "GET"][-2:]
    assert "pagination_token=10" in pages[1]


def test_x_duplicate_refusal_returns_the_reply_already_there(fake_x):
    fake, _server, client = fake_x
    first = x_reply.reply(X_CONFIG, target(), "We are on it", key="reply-7", client=client)
    fake.hide_timeline = 1  # the next lookup misses it; X then refuses the duplicate
    again = x_reply.reply(X_CONFIG, target(), "We are on it", key="reply-7", client=client)
    assert again == first
    assert len(fake.posted) == 2 and len(fake.timeline) == 1


def test_x_429_is_rate_limited_until_the_reset_without_sleeping(fake_x):
    fake, _server, client = fake_x
    reset = int(time.time()) + 900
    body = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank"}
    fake.refuse = (429, {"x-rate-limit-reset": str(reset), "x-rate-limit-remaining": "0"}, body)
    started = time.monotonic()
    with pytest.raises(replies.RateLimited) as caught:
        x_reply.reply(X_CONFIG, target(), "hello", key="reply-1", client=client)
    assert time.monotonic() - started < 5
    assert caught.value.retry_at == datetime.fromtimestamp(reset, UTC)
    assert not caught.value.permanent
    assert len(fake.posted) == 1


def test_x_403_reply_restriction_is_not_allowed_in_words(fake_x):
    fake, _server, client = fake_x
    fake.refuse = (403, {}, RESTRICTED)
    with pytest.raises(replies.NotAllowed) as caught:
        x_reply.reply(X_CONFIG, target(), "hello", key="reply-1", client=client)
    assert caught.value.permanent
    assert "did not mention or quote our account" in caught.value.reason
    assert "Open it on X" in caught.value.reason
    assert "not been mentioned" in caught.value.reason  # X's own words too


@pytest.mark.parametrize(
    ("status", "error", "permanent"),
    [(503, replies.Unavailable, False), (400, replies.Rejected, True)],
)
def test_x_other_failures(fake_x, status, error, permanent):
    fake, _server, client = fake_x
    fake.refuse = (status, {}, {"title": "Service Unavailable", "detail": "try later"})
    with pytest.raises(error) as caught:
        x_reply.reply(X_CONFIG, target(), "hello", key="reply-1", client=client)
    assert type(caught.value) is error and caught.value.permanent is permanent


def test_x_needs_the_account_credentials():
    config = {"mode": "mentions", "user_id": OUR_ID, "bearer_token": "AAAA"}
    with pytest.raises(replies.Rejected, match="bearer token only reads"):
        replies.post(config, target(), "hello", key="reply-1")


def test_x_too_long_is_refused_before_sending(fake_x):
    fake, server, client = fake_x
    with pytest.raises(replies.TooLong):
        x_reply.reply(X_CONFIG, target(), "日" * 141, key="reply-1", client=client)
    assert fake.posted == [] and server.requests == []


# Mastodon: mastodon-mock, as alice answering bob.


@pytest.fixture(scope="module")
def mock_server():
    with MockServer() as running:
        yield running


@pytest.fixture
def mock(mock_server):
    httpx.post(f"{mock_server.base_url}/api/v1/_mock/reset").raise_for_status()
    httpx.delete(f"{mock_server.base_url}/api/v1/_mock/faults").raise_for_status()
    return mock_server


def _bob_says(mock, text: str, visibility: str = "public") -> tuple[dict, Target]:
    status, mention = bob_says(mock, text, visibility)
    return status, replies.target_of(mention)


def test_mastodon_reply_names_the_author_in_reply_to_the_status(mock):
    status, mention = _bob_says(mock, "@alice the Kestrel leaks", "unlisted")

    posted = replies.post(
        mastodon_config(mock), mention, "Sorry! DM us", key="reply-1", allow_private=True
    )

    [reply] = replies_to(mock, status["id"])
    assert reply["uri"] == posted.external_id and reply["url"] == posted.url
    assert reply["account"]["username"] == "alice"
    assert reply["visibility"] == "unlisted"
    assert [m["username"] for m in reply["mentions"]] == ["bob"]  # bob is notified
    assert "Sorry! DM us" in reply["content"]


@pytest.mark.parametrize("visibility", ["public", "unlisted", "private", "direct"])
def test_mastodon_reply_is_never_more_public_than_the_post(mock, visibility):
    _status, mention = _bob_says(mock, "@alice hello", visibility)
    config = mastodon_config(mock, reply_visibility="public")
    posted = replies.post(config, mention, "hi", key=f"reply-{visibility}", allow_private=True)
    mine = api(mock, "GET", f"/api/v1/statuses/{posted.external_id.rsplit('/', 1)[-1]}", "alice")
    assert mine["visibility"] == visibility


def test_mastodon_reply_visibility_setting_narrows_further(mock):
    _status, mention = _bob_says(mock, "@alice hello", "public")
    config = mastodon_config(mock, reply_visibility="private")
    posted = replies.post(config, mention, "hi", key="reply-1", allow_private=True)
    mine = api(mock, "GET", f"/api/v1/statuses/{posted.external_id.rsplit('/', 1)[-1]}", "alice")
    assert mine["visibility"] == "private"


class LosingAdapter(net.GuardedAdapter):
    """The guarded adapter, whose first POST's answer is lost after the status was made."""

    lost = False

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = super().send(request, **kwargs)
        if request.method == "POST" and not LosingAdapter.lost:
            LosingAdapter.lost = True
            response.close()
            raise requests.ConnectionError("connection reset by peer")
        return response


def test_mastodon_retry_after_a_lost_answer_posts_nothing_new(mock):
    status, mention = _bob_says(mock, "@alice where is my order")
    client = mastodon._client(mock.base_url, "alice_token", allow_private=True)
    adapter = LosingAdapter(net.Guard("a Mastodon source", allow_private=True))
    client.session.mount("http://", adapter)
    config = mastodon_config(mock)

    with pytest.raises(replies.Unavailable) as caught:
        mastodon.reply(
            config, mention, "On its way", key="reply-3", client=client, allow_private=True
        )
    assert not caught.value.permanent
    assert len(replies_to(mock, status["id"])) == 1  # it went through
    find_by_uri(mock, status)
    again = mastodon.reply(
        config, mention, "On its way", key="reply-3", client=client, allow_private=True
    )

    [reply] = replies_to(mock, status["id"])
    assert again.external_id == reply["uri"]
    client.session.close()


def test_mastodon_429_is_rate_limited_until_the_reset(mock):
    status, mention = _bob_says(mock, "@alice hi")
    rule = {
        "match": {"path": "/api/v1/statuses", "methods": ["POST"]},
        "effect": {"type": "ratelimit"},
    }
    httpx.post(f"{mock.base_url}/api/v1/_mock/faults", json={**rule, "count": 1}).raise_for_status()
    with pytest.raises(replies.RateLimited) as caught:
        replies.post(mastodon_config(mock), mention, "hi", key="reply-1", allow_private=True)
    wait = (caught.value.retry_at - datetime.now(UTC)).total_seconds()
    assert 240 < wait < 360
    assert replies_to(mock, status["id"]) == []


def test_mastodon_status_our_instance_cannot_find(mock):
    _status, mention = _bob_says(mock, "@alice hi")
    httpx.delete(f"{mock.base_url}/api/v1/_mock/faults").raise_for_status()  # search finds nothing
    with pytest.raises(replies.Rejected, match="cannot find this status"):
        replies.post(mastodon_config(mock), mention, "hi", key="reply-1", allow_private=True)


def test_mastodon_internal_address_refused_without_allow_private(mock):
    _status, mention = _bob_says(mock, "@alice hi")
    with pytest.raises(replies.Rejected, match="https://"):
        replies.post(mastodon_config(mock), mention, "hi", key="reply-1")


# Bluesky: the FakeBluesky, as the brand account answering fans.


def _ref(ref: dict) -> dict:
    return {"uri": ref["uri"], "cid": ref["cid"]}


def test_bluesky_reply_refs_facet_and_langs():
    with bluesky_replies() as fake:
        mention = fake.mention(1, "@kestrel.bsky.social ¿dónde está mi pedido?")
        mention.language = "es"
        posted = replies.post(
            fake.config,
            replies.target_of(mention),
            "¡Ya sale! 📦",
            key="reply-1",
            allow_private=True,
        )

        [record] = fake.replies()
    parent = {"uri": mention.external_id, "cid": _cid(mention.external_id)}
    value = record["value"]
    assert value["$type"] == "app.bsky.feed.post"
    assert _ref(value["reply"]["parent"]) == parent
    assert _ref(value["reply"]["root"]) == parent  # the parent starts the thread
    assert value["text"] == "@fan1.bsky.social ¡Ya sale! 📦"
    [facet] = value["facets"]
    assert (facet["index"]["byteStart"], facet["index"]["byteEnd"]) == (0, len("@fan1.bsky.social"))
    [feature] = facet["features"]
    assert feature == {"$type": "app.bsky.richtext.facet#mention", "did": mention.author_id}
    assert value["langs"] == ["en"]  # the post's own languages (post_view's record says en)
    rkey = record["uri"].rsplit("/", 1)[-1]
    assert rkey == bluesky_reply.reply_rkey("reply-1", mention.external_id, BRAND[1])
    assert len(rkey) == 13 and rkey[0] in "234567abcdefghij"
    assert posted.external_id == record["uri"]
    assert posted.url == f"https://bsky.app/profile/{BRAND[0]}/post/{rkey}"


def test_bluesky_reply_to_a_reply_keeps_the_thread_root():
    with bluesky_replies() as fake:
        mention = fake.mention(2, "still broken")
        root = "at://did:plc:brandbrandbrandbrandbran/app.bsky.feed.post/3lroot"
        view = fake.fake.views[mention.external_id]
        view["record"]["reply"] = {
            "root": {"uri": root, "cid": _cid(root)},
            "parent": {"uri": root, "cid": _cid(root)},
        }
        config = {**fake.config, "langs": ["en", "es"]}
        replies.post(
            config, replies.target_of(mention), "Looking", key="reply-2", allow_private=True
        )
        [record] = fake.replies()
    assert _ref(record["value"]["reply"]["root"]) == {"uri": root, "cid": _cid(root)}
    assert record["value"]["reply"]["parent"]["uri"] == mention.external_id
    assert record["value"]["langs"] == ["en", "es"]


def test_bluesky_retry_after_a_lost_answer_posts_nothing_new():
    sessions: dict[str, str] = {}
    with bluesky_replies() as fake:
        mention = replies.target_of(fake.mention(3))
        fake.lose_next_answer()
        with pytest.raises(replies.Unavailable) as caught:
            replies.post(
                fake.config, mention, "On it", key="reply-3", allow_private=True, sessions=sessions
            )
        assert not caught.value.permanent
        assert len(fake.replies()) == 1  # it went through
        again = replies.post(
            fake.config, mention, "On it", key="reply-3", allow_private=True, sessions=sessions
        )
        assert len(fake.replies()) == 1
        assert again.external_id == fake.replies()[0]["uri"]
        other = replies.post(
            fake.config, mention, "And more", key="reply-4", allow_private=True, sessions=sessions
        )
        assert other.external_id != again.external_id and len(fake.replies()) == 2
        assert fake.sign_ins() == 1  # the session is reused, not a sign-in per reply


def test_bluesky_pds_that_refuses_record_keys_still_posts_once():
    sessions: dict[str, str] = {}
    with bluesky_replies() as fake:
        fake.fake.refuse_rkeys = True
        earlier = replies.target_of(fake.mention(4))
        replies.post(
            fake.config,
            earlier,
            "Same words",
            key="reply-40",
            allow_private=True,
            sessions=sessions,
        )
        mention = replies.target_of(fake.mention(5))
        fake.lose_next_answer()
        with pytest.raises(replies.Unavailable):
            replies.post(
                fake.config,
                mention,
                "Same words",
                key="reply-5",
                allow_private=True,
                sessions=sessions,
            )
        again = replies.post(
            fake.config, mention, "Same words", key="reply-5", allow_private=True, sessions=sessions
        )
        _earlier, second = fake.replies()  # one for each post: the retry found its own
        assert again.external_id == second["uri"]
        assert second["value"]["reply"]["parent"]["uri"] == mention.external_id
        assert again.url.endswith("/post/" + second["uri"].rsplit("/", 1)[-1])


def test_bluesky_reply_disabled_is_not_allowed_in_words():
    with FakeBluesky() as fake:
        view = post_view(5, "gated post", handle="gated.bsky.social")
        view["viewer"]["replyDisabled"] = True
        view["threadgate"] = {
            "uri": view["uri"].replace("app.bsky.feed.post", "app.bsky.feed.threadgate"),
            "cid": _cid("gate"),
            "record": {
                "$type": "app.bsky.feed.threadgate",
                "post": view["uri"],
                "allow": [{"$type": "app.bsky.feed.threadgate#followingRule"}],
                "createdAt": "2025-05-01T12:00:00.000Z",
            },
            "lists": [],
        }
        fake.views[view["uri"]] = view
        config = {"service": fake.url, "handle": BRAND[0], "password": PASSWORD}
        post = target("bluesky", external_id=view["uri"], author_handle="gated.bsky.social")
        with pytest.raises(replies.NotAllowed) as caught:
            replies.post(config, post, "hi", key="reply-5", allow_private=True, sessions={})
        assert fake.records == {}
    assert "people the author follows" in caught.value.reason
    assert caught.value.permanent


def test_bluesky_429_is_rate_limited_until_the_reset():
    with bluesky_replies() as fake:
        mention = replies.target_of(fake.mention(6))
        reset = int(time.time()) + 600
        headers = {"ratelimit-remaining": "0", "ratelimit-reset": str(reset)}
        fake.fake.fail(
            "com.atproto.repo.createRecord", 429, {"error": "RateLimitExceeded"}, headers
        )
        with pytest.raises(replies.RateLimited) as caught:
            replies.post(fake.config, mention, "hi", key="reply-6", allow_private=True, sessions={})
        assert fake.replies() == []
    assert caught.value.retry_at == datetime.fromtimestamp(reset, UTC)


def test_bluesky_deleted_post_is_rejected():
    with bluesky_replies() as fake:
        gone = target("bluesky", external_id=f"at://{BRAND[1]}/app.bsky.feed.post/3lgone")
        with pytest.raises(replies.Rejected, match="The post is gone"):
            replies.post(fake.config, gone, "hi", key="reply-7", allow_private=True, sessions={})


def test_bluesky_server_error_is_unavailable():
    with bluesky_replies() as fake:
        mention = replies.target_of(fake.mention(8))
        fake.fake.fail("app.bsky.feed.getPosts", 502, {"error": "UpstreamFailure"})
        with pytest.raises(replies.Unavailable):
            replies.post(fake.config, mention, "hi", key="reply-8", allow_private=True, sessions={})
