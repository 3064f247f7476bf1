"""Replies sent by real `crm worker` processes to local X, Mastodon and Bluesky, once:
through the app's form and a worker, with a worker killed (SIGKILL) while the network
holds its answer, and with Redis restarted under a queued job. Each network is its
connector's real client (tweepy over TLS, Mastodon.py, atproto) against a local fake
answering in the network's own shapes (tests/social/fake_replies.py)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from mastodon_mock.testing.server import MockServer
from sqlalchemy import select

from social.mention import Mention
from tests.social.fake_replies import (
    X_CONFIG,
    FakeX,
    Forwarder,
    Held,
    bluesky_replies,
    bob_says,
    find_by_uri,
    mastodon_config,
    replies_to,
)
from tests.social.servers import Server, make_ca
from tests.social.test_bluesky import BRAND
from tests.workers.processes import ROOT, children, crm_env, output, start_crm, wait_for
from webapp.extensions import db
from webapp.models import Reply, Source
from webapp.models.base import utcnow
from webapp.services import mentions
from workers import jobs, queues

# What a worker killed mid-post leaves: a claim older than replies.SENDING_STALE.
LEFT_LONG_AGO = timedelta(minutes=6)
PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@dataclass
class Network:
    """A local network that takes replies, as a worker reaches it: the source's config,
    a post of someone's to answer, how to hold its next answer, our replies on it as
    (external id, url), and what a worker's environment and module need to reach it."""

    kind: str
    config: dict
    mention: Mention
    hold: Callable[[], Held]
    posts: Callable[[], list[tuple[str, str]]]
    env: dict[str, str] = field(default_factory=dict)
    module: str = "webapp.cli"


@pytest.fixture(scope="module")
def mastodon_mock() -> Iterator[MockServer]:
    with MockServer() as running:
        yield running


def _bluesky() -> Iterator[Network]:
    with bluesky_replies() as fake:

        def posts() -> list[tuple[str, str]]:
            return [
                (r["uri"], f"https://bsky.app/profile/{BRAND[0]}/post/{r['uri'].rsplit('/')[-1]}")
                for r in fake.replies()
            ]

        yield Network("bluesky", fake.config, fake.mention(1), fake.hold, posts)


def _mastodon(mock: MockServer) -> Iterator[Network]:
    httpx.post(f"{mock.base_url}/api/v1/_mock/reset").raise_for_status()
    httpx.delete(f"{mock.base_url}/api/v1/_mock/faults").raise_for_status()
    with Forwarder(mock.base_url) as forwarder:
        status, mention = bob_says(mock, "@alice where is my order")
        find_by_uri(mock, status, times=3)  # each attempt looks the status up on our instance

        def posts() -> list[tuple[str, str]]:
            return [(s["uri"], s["url"]) for s in replies_to(mock, status["id"])]

        yield Network("mastodon", mastodon_config(forwarder), mention, forwarder.hold, posts)


def _x(folder: Path) -> Iterator[Network]:
    ca, cert, key = make_ca(folder, "api.twitter.com")
    with Server(tls=(cert, key)) as server:
        fake = FakeX(server)
        mention = Mention(
            network="x",
            external_id="1578516295611748353",
            author_handle="quietgardener22",
            author_name="Quiet Gardener",
            author_id="1446582950914723841",
            text="@acme my grinder broke",
            url="https://x.com/quietgardener22/status/1578516295611748353",
            created_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
            language="en",
        )

        def posts() -> list[tuple[str, str]]:
            return [(t["id"], f"https://x.com/acme/status/{t['id']}") for t in fake.timeline]

        env = {"REQUESTS_CA_BUNDLE": str(ca), "CRM_TEST_X_PORT": str(server.port)}
        yield Network(
            "x", X_CONFIG, mention, lambda: fake.hold(server), posts, env, "tests.workers.local_x"
        )


@pytest.fixture
def network(request, tmp_path) -> Iterator[Network]:
    """The network named by the test's parameter (mastodon-mock started only for it)."""
    if request.param == "bluesky":
        yield from _bluesky()
    elif request.param == "mastodon":
        yield from _mastodon(request.getfixturevalue("mastodon_mock"))
    else:
        yield from _x(tmp_path)


@pytest.fixture
def high(app, redis_url):
    """The queue replies go to, on this test's Redis, empty at the start and the end."""
    app.config["REDIS_URL"] = redis_url
    queue = queues.queue("high", queues.connect(redis_url))
    queue.empty()
    yield queue
    queue.empty()


def _stored(app, network: Network) -> int:
    with app.app_context():
        source = Source(name=f"Brand on {network.kind}", kind=network.kind, config=network.config)
        db.session.add(source)
        db.session.flush()
        (mention_id,) = mentions.ingest(db.session, [network.mention], source).stored
        db.session.commit()
        return mention_id


def _ask(client, mention_id: int, body: str) -> None:
    """Support sends the reply form of the mention's page."""
    url = f"/inbox/{mention_id}"
    page = client.get(url).get_data(as_text=True)
    form = {
        name: re.search(rf'name="{name}" value="([^"]+)"', page)[1]
        for name in ("csrf_token", "key", "thread")
    }
    r = client.post(f"{url}/reply", data={**form, "body": body})
    assert r.status_code == 303, r.get_data(as_text=True)


def _env(app, redis_url: str, tmp_path: Path, network: Network) -> dict[str, str]:
    env = {**crm_env(app, redis_url, tmp_path), "OUTBOUND_ALLOW_PRIVATE": "1", **network.env}
    for name in PROXIES:  # the fakes are on 127.0.0.1; nothing goes through a proxy
        env.pop(name, None)
    return env


def _burst(env: dict[str, str], network: Network) -> None:
    """A worker that sends what is queued on high, then stops."""
    done = subprocess.run(
        [sys.executable, "-m", network.module, "worker", "--burst", "high"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def _reply(app) -> Reply:
    with app.app_context():
        reply = db.session.scalars(select(Reply)).one()
        db.session.expunge(reply)
        return reply


def _requeue_lost(app, claimed_ago: timedelta) -> int:
    """The minute's sweep, run once the reply's claim or queueing is claimed_ago old."""
    with app.app_context():
        reply = db.session.scalars(select(Reply)).one()
        reply.updated_at = utcnow() - claimed_ago
        db.session.commit()
        return jobs.triage_sweep()["requeued"]


def _shows_sent(client, mention_id: int, url: str) -> None:
    page = client.get(f"/inbox/{mention_id}").get_data(as_text=True)
    assert "<strong>Sent</strong>" in page and f'href="{url}"' in page


@pytest.mark.parametrize("network", ["x", "mastodon"], indirect=True)
def test_support_replies_and_a_real_worker_posts_it(
    app, client, login, make_user, high, redis_url, tmp_path, network
):
    mention_id = _stored(app, network)
    login(make_user("support"))
    _ask(client, mention_id, "So sorry! A new one is on its way.")
    assert len(high.jobs) == 1

    _burst(_env(app, redis_url, tmp_path, network), network)

    ((external_id, url),) = network.posts()
    reply = _reply(app)
    assert (reply.state, reply.external_id, reply.url) == ("sent", external_id, url)
    _shows_sent(client, mention_id, url)


@pytest.mark.parametrize("network", ["x", "mastodon", "bluesky"], indirect=True)
def test_a_worker_killed_mid_post_leaves_one_reply(
    app, client, login, make_user, high, redis_url, tmp_path, network
):
    mention_id = _stored(app, network)
    login(make_user("support"))
    _ask(client, mention_id, "Sorry, it ships today.")
    env = _env(app, redis_url, tmp_path, network)
    held = network.hold()
    log = tmp_path / "killed.log"
    worker = start_crm(env, log, "worker", "high", new_session=True, module=network.module)
    try:
        wait_for(held.taken.is_set, "the reply to reach the network", 30, log.with_suffix(".err"))
        # The network has the reply; the worker dies before its answer comes back: its
        # work-horse too, which RQ puts in a session of its own.
        _kill(worker)
    finally:
        held.release()
        _kill(worker)
    assert len(network.posts()) == 1
    assert (_reply(app).state, _reply(app).attempts) == ("sending", 1), output(log)

    assert _requeue_lost(app, LEFT_LONG_AGO) == 1
    _burst(env, network)

    ((external_id, url),) = network.posts()
    reply = _reply(app)
    assert (reply.state, reply.external_id, reply.url) == ("sent", external_id, url)
    assert reply.attempts == 2
    _shows_sent(client, mention_id, url)


def _kill(worker: subprocess.Popen) -> None:
    """SIGKILL a worker we started and the work-horse it forked, if they still run."""
    if worker.poll() is None:
        for pid in [*children(worker.pid), worker.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server of this test's own on 127.0.0.1, keeping nothing on disk, so that
    a restart starts it empty (what a Redis that lost its data comes back as)."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.folder = folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        settings = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        settings += ["--appendonly", "no", "--dir", str(self.folder)]
        self.process = subprocess.Popen(
            ["redis-server", *settings], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        connection = queues.connect(self.url)
        wait_for(lambda: _answers(connection), "redis-server to answer", 10)

    def crash(self) -> None:
        """SIGKILL it, as a crash or a restarted machine would end it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _answers(connection) -> bool:
    try:
        return bool(connection.ping())
    except Exception:
        return False


@pytest.fixture
def restartable_redis(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.crash()


@pytest.mark.parametrize("network", ["bluesky"], indirect=True)
def test_a_reply_queued_before_redis_restarted_is_posted_once(
    app, client, login, make_user, restartable_redis, tmp_path, network
):
    app.config["REDIS_URL"] = restartable_redis.url
    mention_id = _stored(app, network)
    login(make_user("support"))
    _ask(client, mention_id, "Looking into it now.")
    assert len(queues.queue("high", queues.connect(restartable_redis.url)).jobs) == 1

    restartable_redis.crash()
    restartable_redis.start()
    high = queues.queue("high", queues.connect(restartable_redis.url))
    assert high.jobs == []  # the job went with Redis; the row is still queued
    assert _reply(app).state == "queued"

    assert _requeue_lost(app, timedelta(minutes=3)) == 1
    _burst(_env(app, restartable_redis.url, tmp_path, network), network)

    ((external_id, url),) = network.posts()
    reply = _reply(app)
    assert (reply.state, reply.external_id, reply.url, reply.attempts) == (
        "sent",
        external_id,
        url,
        1,
    )
    _shows_sent(client, mention_id, url)
    # The sweep again, and a worker: nothing more is sent.
    assert _requeue_lost(app, timedelta(minutes=3)) == 0
    assert len(network.posts()) == 1
