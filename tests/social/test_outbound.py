"""Sources whose server is an internal address are refused, whatever the connector (RSS,
Mastodon, Bluesky), with the reason on the source; OUTBOUND_ALLOW_PRIVATE (the app's
setting, passed down by the poll job) is what lets tests reach local servers; and the
deployment's credentials go only to the hosts their settings list."""

from __future__ import annotations

import ssl

import httpx
import pytest
from mastodon_mock.testing.server import MockServer
from sqlalchemy import func, select

from social import net
from tests.social.servers import Server, make_ca, redirect, resolving, static
from tests.social.test_bluesky import BRAND, PASSWORD, FakeBluesky, notification, post_view
from tests.social.test_rss import RSS
from webapp import config as settings
from webapp.extensions import db
from webapp.models import Mention, Source
from workers import jobs

HOST = "social.example"


@pytest.fixture
def redis(app, redis_url):
    """The poll job run in this process finds Redis (its poll lock) where a worker would."""
    app.config["REDIS_URL"] = redis_url


def _configs(base: str) -> dict[str, dict]:
    """A source of each guarded kind whose server is base (needing no credential)."""
    return {
        "rss": {"url": f"{base}/feed.xml"},
        "mastodon": {"instance": base, "mode": "hashtag", "tag": "kestrel"},
        "bluesky": {"mode": "search", "query": "kestrel", "service": base},
    }


def _poll(app, redis, kind: str, config: dict, secret: str | None = None) -> Source:
    """Add a source and poll it once through the poll job, as a worker runs it."""
    with app.app_context():
        source = Source(name=f"{kind} source", kind=kind, config=config, secret=secret)
        db.session.add(source)
        db.session.commit()
        jobs.poll_source(source.id)
        db.session.expire_all()
        source = db.session.get(Source, source.id)
        db.session.expunge(source)
        return source


def _stored(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Mention))


KINDS = pytest.mark.parametrize("kind", ["rss", "mastodon", "bluesky"])


@KINDS
@pytest.mark.parametrize(
    "base",
    [
        "https://127.0.0.1:{port}",
        "https://10.0.0.7",
        "https://[::1]:{port}",
        "https://localhost:{port}",  # a host name that resolves to loopback
    ],
)
def test_a_source_on_an_internal_address_is_refused_and_says_why(app, redis, kind, base):
    with Server() as server:
        base = base.format(port=server.port)
        source = _poll(app, redis, kind, _configs(base)[kind])
    assert "is an internal address" in source.last_error
    assert "may only reach public addresses" in source.last_error
    assert source.last_success_at is None
    assert server.requests == []


@KINDS
@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest/meta-data/", "https://10.0.0.7/", "http://[::1]/"]
)
def test_a_redirect_from_a_public_host_to_an_internal_one_is_refused(
    app, redis, tmp_path, monkeypatch, kind, target
):
    ca_file, cert, key = make_ca(tmp_path, HOST)
    monkeypatch.setattr(net, "tls_context", lambda: ssl.create_default_context(cafile=str(ca_file)))
    # The test server lives on 127.0.0.1: only that address passes as public; the
    # redirect's target is judged by the real rule.
    real = net.is_forbidden
    monkeypatch.setattr(net, "is_forbidden", lambda ip: str(ip) != "127.0.0.1" and real(ip))
    with resolving(monkeypatch, {HOST}), Server(tls=(cert, key)) as server:
        server.routes["*"] = redirect(target)
        source = _poll(app, redis, kind, _configs(f"https://{HOST}:{server.port}")[kind])
    # The public host was asked, and its redirect refused before any connection to the
    # internal address was made.
    assert server.requests
    assert "is an internal address; a" in source.last_error


@pytest.fixture
def local_servers():
    """A feed, a Mastodon instance and a Bluesky service on 127.0.0.1, each with a post."""
    with Server() as feeds, MockServer() as mastodon, FakeBluesky() as bluesky:
        feeds.routes["/feed.xml"] = static(RSS, "application/rss+xml")
        httpx.post(
            f"{mastodon.base_url}/api/v1/statuses",
            json={"status": "#kestrel rocks"},
            headers={"Authorization": "Bearer bob_token"},
        ).raise_for_status()
        bluesky.posts = [post_view(1, "kestrel is great")]
        yield {
            "rss": {"url": f"http://127.0.0.1:{feeds.port}/feed.xml"},
            "mastodon": {"instance": mastodon.base_url, "mode": "hashtag", "tag": "kestrel"},
            "bluesky": {"mode": "search", "query": "kestrel", "service": bluesky.url},
        }


@KINDS
def test_the_outbound_allow_private_setting_lets_local_servers_through(
    app, redis, kind, local_servers
):
    refused = _poll(app, redis, kind, local_servers[kind])
    # Plain http (which the local servers speak) carries no credential to a host that is
    # not a local test server; a feed is refused for its address.
    assert refused.mentions_stored == 0
    assert "internal address" in refused.last_error or "https://" in refused.last_error

    app.config["OUTBOUND_ALLOW_PRIVATE"] = True
    allowed = _poll(app, redis, kind, local_servers[kind])
    assert allowed.last_error is None
    assert allowed.mentions_stored >= 1


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, False),
        ({"OUTBOUND_ALLOW_PRIVATE": "1"}, True),
        ({"OUTBOUND_ALLOW_PRIVATE": "true"}, True),
        ({"CRM_RSS_ALLOW_PRIVATE": "1"}, True),  # the older name
        ({"CRM_RSS_ALLOW_PRIVATE": "0"}, False),
    ],
)
def test_outbound_allow_private_is_read_from_the_environment(
    monkeypatch, tmp_path, environment, expected
):
    for name in ("OUTBOUND_ALLOW_PRIVATE", "CRM_RSS_ALLOW_PRIVATE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert settings.from_environment(str(tmp_path))["OUTBOUND_ALLOW_PRIVATE"] is expected


def test_credential_hosts_are_read_from_the_environment(monkeypatch, tmp_path):
    for name in ("MASTODON_TOKEN_HOSTS", "BLUESKY_PASSWORD_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    defaults = settings.from_environment(str(tmp_path))
    assert defaults["MASTODON_TOKEN_HOSTS"] == frozenset()
    assert defaults["BLUESKY_PASSWORD_HOSTS"] == frozenset({"bsky.social"})
    monkeypatch.setenv("MASTODON_TOKEN_HOSTS", " Mastodon.Example, social.example. ,")
    monkeypatch.setenv("BLUESKY_PASSWORD_HOSTS", "")
    mine = settings.from_environment(str(tmp_path))
    assert mine["MASTODON_TOKEN_HOSTS"] == frozenset({"mastodon.example", "social.example"})
    assert mine["BLUESKY_PASSWORD_HOSTS"] == frozenset()


@pytest.fixture
def mastodon():
    with MockServer() as server:
        httpx.post(
            f"{server.base_url}/api/v1/statuses",
            json={"status": "@alice the grinder is back in stock"},
            headers={"Authorization": "Bearer bob_token"},
        ).raise_for_status()
        yield server


def test_the_deployments_mastodon_token_goes_only_to_listed_hosts(app, redis, mastodon):
    app.config.update(OUTBOUND_ALLOW_PRIVATE=True, MASTODON_ACCESS_TOKEN="alice_token")
    config = {"instance": mastodon.base_url, "mode": "mentions"}

    refused = _poll(app, redis, "mastodon", config)
    assert refused.last_error == (
        "MASTODON_ACCESS_TOKEN is only sent to the hosts listed in MASTODON_TOKEN_HOSTS, and"
        " 127.0.0.1 is not one: add it to MASTODON_TOKEN_HOSTS, or store this source's own"
        " credential."
    )
    assert _stored(app) == 0

    app.config["MASTODON_TOKEN_HOSTS"] = frozenset({"127.0.0.1"})
    allowed = _poll(app, redis, "mastodon", config)
    assert allowed.last_error is None
    assert allowed.mentions_stored == 1


def test_a_mastodon_sources_own_token_needs_no_listed_host(app, redis, mastodon):
    app.config.update(OUTBOUND_ALLOW_PRIVATE=True, MASTODON_ACCESS_TOKEN="wrong-token")
    config = {"instance": mastodon.base_url, "mode": "mentions"}
    source = _poll(app, redis, "mastodon", config, secret="alice_token")
    assert source.last_error is None
    assert source.mentions_stored == 1


def test_the_deployments_bluesky_password_goes_only_to_listed_hosts(app, redis):
    app.config.update(OUTBOUND_ALLOW_PRIVATE=True, BLUESKY_APP_PASSWORD=PASSWORD)
    with FakeBluesky() as fake:
        fake.add_notifications(notification(1))
        config = {"mode": "notifications", "handle": BRAND[0], "service": fake.url}

        refused = _poll(app, redis, "bluesky", config)
        assert "BLUESKY_PASSWORD_HOSTS" in refused.last_error
        assert "127.0.0.1 is not one" in refused.last_error
        assert fake.calls == []  # not even a sign-in was tried

        app.config["BLUESKY_PASSWORD_HOSTS"] = frozenset({"bsky.social", "127.0.0.1"})
        allowed = _poll(app, redis, "bluesky", config)
        assert allowed.last_error is None
        assert allowed.mentions_stored == 1
        assert fake.count("com.atproto.server.createSession") == 1


def test_a_bluesky_sources_own_password_needs_no_listed_host(app, redis):
    app.config.update(OUTBOUND_ALLOW_PRIVATE=True, BLUESKY_APP_PASSWORD="not-this-one")
    with FakeBluesky() as fake:
        fake.add_notifications(notification(1))
        config = {"mode": "notifications", "handle": BRAND[0], "service": fake.url}
        source = _poll(app, redis, "bluesky", config, secret=PASSWORD)
    assert source.last_error is None
    assert source.mentions_stored == 1
