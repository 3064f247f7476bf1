"""RSS/Atom connector against a local HTTP server; internal addresses refused before any
connection is made (every socket connect in these tests is checked: 127.0.0.1 only)."""

from __future__ import annotations

import gzip
import ipaddress
import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from social import net, rss, sentiment
from social.mention import SourceError

FIXTURES = Path(__file__).parent / "fixtures"
RSS = (FIXTURES / "rss_feed.xml").read_bytes()
ATOM = (FIXTURES / "atom_feed.xml").read_bytes()
ETAG = '"5f2a-61d3"'
MODIFIED = "Tue, 12 Mar 2024 09:30:00 GMT"

Route = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch) -> Iterator[list[Any]]:
    """Fail the test if anything tries to connect anywhere but 127.0.0.1."""
    real = socket.socket.connect
    attempts: list[Any] = []

    def connect(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        if address[0] != "127.0.0.1":
            raise AssertionError(f"tried to connect to {address!r}")
        real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts
    assert all(address[0] == "127.0.0.1" for address in attempts)


class FeedServer:
    """Routes by path; remembers each request's path and headers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.routes: dict[str, Route] = {}
        self.release = threading.Event()


def _static(body: bytes, content_type: str, **headers: str) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": content_type, **headers}, body

    return route


def _conditional(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
    headers = {"ETag": ETAG, "Last-Modified": MODIFIED}
    if handler.headers.get("If-None-Match") == ETAG:
        return 304, headers, b""
    return 200, {"Content-Type": "application/rss+xml; charset=UTF-8", **headers}, RSS


@pytest.fixture
def server() -> Iterator[FeedServer]:
    state: FeedServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, dict(self.headers)))
            route = state.routes.get(self.path)
            if route is None:
                status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
            else:
                status, headers, body = route(self)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Content-Length" not in headers and status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = FeedServer(httpd.server_address[1])
    state.routes.update(
        {
            "/rss.xml": _conditional,
            "/atom.xml": _static(ATOM, "application/atom+xml"),
            "/plain.xml": _static(RSS, "text/xml"),
        }
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _redirect(location: str, status: int = 302) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        return status, {"Location": location}, b""

    return route


def test_rss_entries_become_mentions(server) -> None:
    url = f"{server.base}/rss.xml"
    result = rss.fetch({"url": url}, None, allow_private=True)

    assert [m.external_id for m in result.mentions] == [
        "https://reviews.example.com/2024/03/link-roundup-march/",  # no guid: its link
        f"{url}#4498",  # a guid that is no URI is only unique within its feed
        "https://reviews.example.com/?p=4512",
        "tag:reviews.example.com,2024:unsafe-1",  # no date: fetch time, so last
    ]
    roundup, stopped, review, unsafe = result.mentions
    assert review.network == "rss"
    assert review.author_name == "Priya Natarajan"
    assert review.author_handle == "reviews.example.com"
    assert review.url == "https://reviews.example.com/2024/03/acme-route-planner-review/"
    assert review.created_at == datetime(2024, 3, 12, 9, 30, tzinfo=UTC)
    assert review.language == "en-us"
    assert review.text == (
        "Acme Route Planner review: finally, offline maps that work\n\n"
        "We drove 400 miles with the new Acme planner \u2013 and it never lost the route.\n\n"
        "The sync is fast, the battery drain is small.\n"
        "Support answered within the hour.\n\n"
        "The post Acme Route Planner review appeared first on Field Notes."
    )
    assert "alert" not in review.text
    assert review.extra == {"feed_url": url, "feed_title": "Field Notes & Reviews"}
    assert stopped.text == (
        "Why we stopped using Acme Tasks\n\n"
        "Sync conflicts ate our visit notes twice last month. Disappointing & frustrating."
    )
    assert roundup.author_name == "Field Notes & Reviews"  # no author: the feed's title
    assert unsafe.url is None  # a javascript: link is dropped
    assert unsafe.created_at.tzinfo is UTC
    assert result.reads == 0

    cursor = json.loads(result.cursor)
    assert cursor["etag"] == ETAG
    assert cursor["modified"] == MODIFIED
    assert sorted(cursor["seen"]) == sorted(m.external_id for m in result.mentions)
    path, headers = server.requests[0]
    assert path == "/rss.xml"
    assert "If-None-Match" not in headers
    assert "rss" in headers["Accept"]


def test_not_modified_returns_nothing(server) -> None:
    url = f"{server.base}/rss.xml"
    first = rss.fetch({"url": url}, None, allow_private=True)
    again = rss.fetch({"url": url}, first.cursor, allow_private=True)
    assert again.mentions == []
    assert again.cursor == first.cursor
    _path, headers = server.requests[1]
    assert headers["If-None-Match"] == ETAG
    assert headers["If-Modified-Since"] == MODIFIED


def test_only_unseen_entries_are_new(server) -> None:
    url = f"{server.base}/plain.xml"  # no validators: every poll reads the whole feed
    first = rss.fetch({"url": url}, None, allow_private=True)
    assert len(first.mentions) == 4
    assert rss.fetch({"url": url}, first.cursor, allow_private=True).mentions == []

    item = (
        b"<item><title>Acme support rocks</title>"
        b"<guid>https://reviews.example.com/?p=4600</guid>"
        b"<pubDate>Wed, 13 Mar 2024 08:00:00 +0000</pubDate></item>"
    )
    server.routes["/plain.xml"] = _static(RSS.replace(b"<item>", item + b"<item>", 1), "text/xml")
    third = rss.fetch({"url": url}, first.cursor, allow_private=True)
    assert [m.text for m in third.mentions] == ["Acme support rocks"]
    assert "https://reviews.example.com/?p=4600" in json.loads(third.cursor)["seen"]
    assert json.loads(third.cursor)["etag"] is None


def test_atom(server) -> None:
    result = rss.fetch({"url": f"{server.base}/atom.xml"}, "not json", allow_private=True)
    german, english = result.mentions
    assert english.external_id == "tag:jo.example.org,2024-03-10:/three-weeks-with-acme"
    assert english.text == (
        "Three weeks with Acme CRM\n\n"
        "Logging a visit takes two taps. I love it.\n\nFast search\nWorks offline"
    )
    assert english.created_at == datetime(2024, 3, 10, 17, 20, tzinfo=UTC)  # published
    assert english.author_name == "Jo Okafor"
    assert english.author_handle == "jo.example.org"
    assert english.language == "en"
    assert german.created_at == datetime(2024, 3, 9, 8, 0, tzinfo=UTC)  # updated only
    assert german.author_name == "Gast"
    assert german.language == "de"
    # A relative link is resolved against the address the feed came from.
    assert german.url == f"{server.base}/2024/03/acme-auf-deutsch"
    assert german.text.endswith("Das Produkt ist gut und der Support ist schnell.")

    scores = sentiment.score(
        [m.text for m in result.mentions], [m.language for m in result.mentions]
    )
    assert [s.status for s in scores] == ["not_english", "scored"]


def test_redirects_are_followed_up_to_five(server) -> None:
    for hop in range(5):
        server.routes[f"/r{hop}"] = _redirect(f"/r{hop + 1}")
    server.routes["/r5"] = _redirect(f"{server.base}/atom.xml", 301)
    result = rss.fetch({"url": f"{server.base}/r1"}, None, allow_private=True)
    assert len(result.mentions) == 2
    with pytest.raises(SourceError, match="more than 5 times"):
        rss.fetch({"url": f"{server.base}/r0"}, None, allow_private=True)


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2:{port}/rss.xml",
        "http://[::1]:{port}/rss.xml",
        "http://0.0.0.0:{port}/rss.xml",
        "http://[::ffff:127.0.0.2]:{port}/rss.xml",
    ],
)
def test_redirect_to_loopback_is_refused(server, monkeypatch, target) -> None:
    # The test server itself lives on 127.0.0.1, so only that one address is let through;
    # the redirect's target is judged by the real rule.
    real = net.is_forbidden
    monkeypatch.setattr(net, "is_forbidden", lambda ip: str(ip) != "127.0.0.1" and real(ip))
    server.routes["/moved"] = _redirect(target.format(port=server.port))
    with pytest.raises(SourceError, match="internal address"):
        rss.fetch({"url": f"{server.base}/moved"}, None)
    assert [path for path, _headers in server.requests] == ["/moved"]


def test_redirect_to_metadata_service_is_refused(server, loopback_only) -> None:
    server.routes["/moved"] = _redirect("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(SourceError, match="internal address"):
        rss.fetch({"url": f"{server.base}/moved"}, None, allow_private=False)
    assert loopback_only == []  # even the first hop, on 127.0.0.1, was refused


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/feed.xml",
        "http://10.0.0.1/feed.xml",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/feed.xml",
        "https://[::ffff:127.0.0.1]/feed.xml",
        "http://0.0.0.0:8080/",
        "http://2130706433/",
        "http://192.168.1.1/rss",
        "http://[fd00::1]/rss",
        "http://localhost/rss",
    ],
)
def test_internal_addresses_are_refused_before_connecting(url, loopback_only) -> None:
    with pytest.raises(SourceError, match="internal address"):
        rss.fetch({"url": url}, None)
    assert loopback_only == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "http:// or https://"),
        ("ftp://example.com/feed", "http:// or https://"),
        ("gopher://127.0.0.1/", "http:// or https://"),
        ("", "needs a URL"),
        ("http://", "no host"),
    ],
)
def test_only_web_urls(url, message, loopback_only) -> None:
    with pytest.raises(SourceError, match=message):
        rss.fetch({"url": url}, None)
    assert loopback_only == []


def test_names_resolving_inside_are_refused(monkeypatch, loopback_only) -> None:
    answers = {
        "intranet.example.com": ["10.1.2.3"],
        "mixed.example.com": ["93.184.216.34", "192.168.0.10"],
    }

    def fake_getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    monkeypatch.setattr(net.socket, "getaddrinfo", fake_getaddrinfo)
    for host in answers:
        with pytest.raises(SourceError, match="internal address"):
            rss.fetch({"url": f"https://{host}/feed"}, None)
    assert loopback_only == []


def test_connects_to_the_checked_address_with_the_right_host(server, monkeypatch) -> None:
    """The name is resolved once, by us; the request goes to that IP with the name in Host."""
    lookups: list[str] = []

    real = socket.getaddrinfo

    def fake_getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if host == "127.0.0.1":  # httpx's own connect, to the address we gave it
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(net.socket, "getaddrinfo", fake_getaddrinfo)
    url = f"http://feeds.example.test:{server.port}/atom.xml"
    result = rss.fetch({"url": url}, None, allow_private=True)
    assert len(result.mentions) == 2
    assert lookups == ["feeds.example.test"]
    _path, headers = server.requests[0]
    assert headers["Host"] == f"feeds.example.test:{server.port}"


def test_odd_feed(server) -> None:
    """A broken site link, and entries with neither id nor link, still make mentions."""
    feed = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Odd</title>'
        b"<link>https://[not-ipv6]/</link>"
        b"<item><title>Only a title</title><pubDate>Mon, 11 Mar 2024 10:00:00 GMT</pubDate></item>"
        b"<item><description>&lt;b&gt;Only&lt;/b&gt; a body</description></item>"
        b"</channel></rss>"
    )
    server.routes["/odd.xml"] = _static(feed, "application/rss+xml")
    url = f"{server.base}/odd.xml"
    titled, body_only = rss.fetch({"url": url}, None, allow_private=True).mentions
    assert titled.external_id.startswith(f"{url}#sha256:")
    assert body_only.external_id.startswith(f"{url}#sha256:")
    assert titled.external_id != body_only.external_id
    assert (titled.text, body_only.text) == ("Only a title", "Only a body")
    assert titled.author_handle == "127.0.0.1"
    assert titled.author_name == "Odd"
    assert titled.url is None

    server.routes["/empty"] = lambda handler: (204, {}, b"")
    with pytest.raises(SourceError, match="did not return an RSS or Atom feed"):
        rss.fetch({"url": f"{server.base}/empty"}, None, allow_private=True)


def test_non_feed_body(server) -> None:
    page = b"<!doctype html><html><head><title>Shop</title></head><body><p>Hi</p></body></html>"
    server.routes["/page"] = _static(page, "text/html; charset=utf-8")
    server.routes["/json"] = _static(b'{"items": []}', "application/json")
    for path in ("/page", "/json"):
        with pytest.raises(SourceError, match="did not return an RSS or Atom feed"):
            rss.fetch({"url": server.base + path}, None, allow_private=True)


def test_oversized_bodies(server) -> None:
    big = b"<rss>" + b" " * (rss.MAX_BYTES + 10)
    server.routes["/big"] = _static(big, "application/rss+xml")

    def no_length(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        # Claims to be small: the reader must count for itself.
        return 200, {"Content-Type": "application/rss+xml", "Content-Length": str(len(big))}, big

    server.routes["/lying"] = no_length
    bomb = gzip.compress(b"<rss>" + b"\0" * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100_000
    server.routes["/bomb"] = _static(bomb, "application/rss+xml", **{"Content-Encoding": "gzip"})
    for path in ("/big", "/lying", "/bomb"):
        with pytest.raises(SourceError, match="larger than 5 MB"):
            rss.fetch({"url": server.base + path}, None, allow_private=True)


def test_gzip_feed(server) -> None:
    server.routes["/gz"] = _static(
        gzip.compress(ATOM), "application/atom+xml", **{"Content-Encoding": "gzip"}
    )
    assert len(rss.fetch({"url": f"{server.base}/gz"}, None, allow_private=True).mentions) == 2


def test_http_errors_and_timeouts(server) -> None:
    with pytest.raises(SourceError, match="answered 404"):
        rss.fetch({"url": f"{server.base}/missing.xml"}, None, allow_private=True)

    def stall(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        server.release.wait(5)
        return 200, {"Content-Type": "application/rss+xml"}, RSS

    server.routes["/slow"] = stall
    with pytest.raises(SourceError, match=r"longer than 0\.2 s"):
        rss.fetch({"url": f"{server.base}/slow"}, None, allow_private=True, timeout=0.2)
    server.release.set()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceError, match="Could not reach the feed"):
        rss.fetch({"url": f"http://127.0.0.1:{port}/"}, None, allow_private=True)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 (an address to refuse, not one to bind)
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:a00:1::",  # 6to4 of 10.0.0.1
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
    ],
)
def test_forbidden_addresses(address: str) -> None:
    assert net.is_forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert not net.is_forbidden(ipaddress.ip_address(address))


CATEGORY_FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Shop {cat}</title>
<link>https://shop.example/</link><description>Reviews</description>
<item><title>{text}</title><guid>42</guid><pubDate>Mon, 11 Mar 2024 10:00:00 GMT</pubDate></item>
<item><title>Linked {cat}</title><link>/reviews/{cat}</link></item>
</channel></rss>"""


def test_two_feeds_at_one_path_keep_their_entries_apart(server) -> None:
    """feedparser would resolve the plain guid "42" against each feed's URL, dropping the
    query, so the two feeds' posts would share one id and the second would be lost."""
    for cat, text in (("1", "Grinder is great"), ("2", "Kettle leaks")):
        body = CATEGORY_FEED.format(cat=cat, text=text).encode()
        server.routes[f"/feed?cat={cat}"] = _static(body, "application/rss+xml")
    first = rss.fetch({"url": f"{server.base}/feed?cat=1"}, None, allow_private=True)
    second = rss.fetch({"url": f"{server.base}/feed?cat=2"}, None, allow_private=True)
    one, two = first.mentions[0], second.mentions[0]
    assert (one.text, two.text) == ("Grinder is great", "Kettle leaks")
    assert one.external_id == f"{server.base}/feed?cat=1#42"
    assert two.external_id == f"{server.base}/feed?cat=2#42"
    # The guid is a permalink all the same: the post's address is the resolved guid.
    assert one.url == two.url == f"{server.base}/42"
    # A link without a guid names the post itself, resolved as before.
    assert first.mentions[1].external_id == f"{server.base}/reviews/1"


def test_entries_seen_under_their_earlier_ids_are_not_new_again(server) -> None:
    server.routes["/feed?cat=1"] = _static(
        CATEGORY_FEED.format(cat="1", text="Grinder is great").encode(), "application/rss+xml"
    )
    url = f"{server.base}/feed?cat=1"
    earlier = json.dumps({"seen": [f"{server.base}/42", f"{server.base}/reviews/1"]})
    result = rss.fetch({"url": url}, earlier, allow_private=True)
    assert result.mentions == []
    assert json.loads(result.cursor)["seen"][:2] == [f"{url}#42", f"{server.base}/reviews/1"]
