"""The outbound guard's clients (httpx and requests): connections pinned to the checked
address with TLS verified against the host name, every redirect hop checked, proxies
from the environment ignored, answers capped in size."""

from __future__ import annotations

import gzip
import ssl

import httpx
import pytest
import requests

from social import net
from tests.social.servers import Server, make_ca, redirect, resolving, static

HOST = "social.example"


@pytest.fixture
def ca(tmp_path, monkeypatch):
    """A test CA trusted by the guarded clients, and a certificate for HOST signed by it."""
    ca_file, cert, key = make_ca(tmp_path, HOST)

    def trusting() -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(ca_file))

    monkeypatch.setattr(net, "tls_context", trusting)
    return cert, key


@pytest.fixture
def public(monkeypatch):
    """HOST resolves to 127.0.0.1, and that one address counts as public (the test server
    lives there); every other address is judged by the real rule."""
    real = net.is_forbidden
    monkeypatch.setattr(net, "is_forbidden", lambda ip: str(ip) != "127.0.0.1" and real(ip))
    with resolving(monkeypatch, {HOST}) as looked_up:
        yield looked_up


def _get_httpx(url: str, guard: net.Guard) -> httpx.Response:
    with net.httpx_client(guard, follow_redirects=True) as client:
        response = client.get(url)
        response.read()
        return response


def _get_requests(url: str, guard: net.Guard) -> requests.Response:
    with net.requests_session(guard) as session:
        return session.get(url, timeout=5)


GETS = pytest.mark.parametrize("get", [_get_httpx, _get_requests], ids=["httpx", "requests"])


@GETS
def test_tls_to_the_checked_address_is_verified_against_the_host_name(get, ca, public):
    with Server(tls=ca) as server:
        server.routes["/ok"] = static(b'{"ok": true}')
        response = get(f"https://{HOST}:{server.port}/ok", net.Guard("a test source"))
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert public == [HOST]
    [(_method, _path, headers)] = server.requests
    assert headers["Host"] == f"{HOST}:{server.port}"


@GETS
def test_a_certificate_for_another_name_is_refused(get, tmp_path, monkeypatch, public):
    _ca, cert, key = make_ca(tmp_path, "other.example")
    monkeypatch.setattr(net, "tls_context", lambda: ssl.create_default_context(cafile=str(_ca)))
    with (
        Server(tls=(cert, key)) as server,
        pytest.raises((httpx.ConnectError, requests.exceptions.SSLError)),
    ):
        get(f"https://{HOST}:{server.port}/", net.Guard("a test source"))
    assert server.requests == []


@GETS
@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.7/api",
        "http://169.254.169.254/latest/meta-data/",
        "https://[::1]:{port}/",
        "http://127.0.0.53:{port}/",
        "https://127.0.0.2:{port}/",
    ],
)
def test_a_redirect_to_an_internal_address_is_refused(get, ca, public, target):
    with Server(tls=ca) as server:
        server.routes["/moved"] = redirect(target.format(port=server.port))
        with pytest.raises(net.Refused, match="internal address; a test source may only"):
            get(f"https://{HOST}:{server.port}/moved", net.Guard("a test source"))
    assert [path for _method, path, _headers in server.requests] == ["/moved"]


@GETS
def test_proxies_from_the_environment_are_not_used(get, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://10.9.9.9:3128")
    with Server() as server:
        server.routes["/ok"] = static(b"{}")
        response = get(f"http://127.0.0.1:{server.port}/ok", net.Guard("a test", True))
    assert response.status_code == 200
    assert [path for _method, path, _headers in server.requests] == ["/ok"]


@GETS
@pytest.mark.parametrize("kind", ["big", "lying", "bomb"])
def test_answers_are_capped_in_size(get, kind):
    guard = net.Guard("a test source", allow_private=True, max_bytes=1024 * 1024)
    big = b"[" + b" " * (2 * 1024 * 1024) + b"]"
    routes = {
        "big": static(big),
        # Claims to be small: the reader must count for itself.
        "lying": static(big, **{"Content-Length": str(len(big))}),
        "bomb": static(
            gzip.compress(b"[" + b" " * (64 * 1024 * 1024) + b"]", 9),
            **{"Content-Encoding": "gzip"},
        ),
    }
    with Server() as server:
        server.routes["/body"] = routes[kind]
        with pytest.raises(net.Refused, match="larger than 1 MB"):
            get(f"http://127.0.0.1:{server.port}/body", guard)


@pytest.mark.parametrize(
    ("url", "allow_private", "allowed"),
    [
        ("https://mastodon.example", False, True),
        ("https://127.0.0.1:8443", False, True),
        ("http://127.0.0.1:8080", True, True),
        ("http://localhost", True, True),
        ("http://LOCALHOST:3000/", True, True),
        ("http://[::1]:8080", True, True),
        ("http://127.0.0.1:8080", False, False),
        ("http://mastodon.example", True, False),
        ("http://10.0.0.1", True, False),
        ("ftp://127.0.0.1", True, False),
        ("127.0.0.1", True, False),
    ],
)
def test_credentials_go_over_http_to_local_test_servers_only(url, allow_private, allowed):
    assert net.may_send_credentials(url, allow_private) is allowed
