"""Outbound requests to servers an admin names: the guard every connector's fetches go through.

What belongs here: which addresses a server-side fetch must never reach (SSRF), resolving
a host and checking every address it has, when a credential may go over plain HTTP, and
ready-made guarded clients: an httpx transport (for feeds, and for atproto's Bluesky
client) and a requests session (for Mastodon.py).

Both clients check each connection as it is opened, not each URL as it is asked for, so
every redirect hop, and any host a library moves to on its own (a Bluesky PDS named in a
DID document), is checked the same way. The socket goes to the very address that was
checked, while the URL, the Host header and the TLS server name stay the host's, so
certificates are still verified against the host name; pooled connections are kept per
host name, never shared by two names on one address. No proxy from the environment is
used, since a proxy would make the check meaningless. Each answer is capped in size (after
decompression, which is done here a bounded slice at a time) and in time.

allow_private switches the address check off, for tests and local development against
servers on 127.0.0.1; the caller decides it from the app's settings, never from here.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import certifi
import httpcore
import httpx
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from social.mention import SourceError

MAX_BYTES = 5 * 1024 * 1024
TIMEOUT = 20.0
MAX_REDIRECTS = 5
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# Inflated a slice at a time, so a small compressed bomb never becomes gigabytes at once.
_INFLATE_SLICE = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(SourceError):
    """An outbound request the guard stopped; the message says why, in words."""


class TooSlow(Refused):
    """An answer that took longer than the guard allows: unlike the other refusals, one
    that may not happen again."""


def is_forbidden(ip: IPAddress) -> bool:
    """Whether ip is one a server-side fetch must never reach: loopback, private,
    link-local, multicast, reserved, unspecified or otherwise not global, including
    IPv4 addresses wrapped in IPv6 (mapped, NAT64, 6to4, Teredo)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: list[ipaddress.IPv4Address] = []
        if ip.ipv4_mapped:
            embedded.append(ip.ipv4_mapped)
        if any(ip in net for net in _NAT64):
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour:
            embedded.append(ip.sixtofour)
        if ip.teredo:
            embedded.extend(ip.teredo)
        if any(is_forbidden(v4) for v4 in embedded):
            return True
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def may_send_credentials(url: str, allow_private: bool) -> bool:
    """Whether a token or password may be sent to url: over https, or over plain http
    (which can be read on the way) only to a local test server, and only while private
    addresses are allowed."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    return (
        parts.scheme == "http"
        and allow_private
        and (parts.hostname or "").strip("[]").lower() in LOOPBACK_HOSTS
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS settings of every guarded client: certificates verified against the host
    name, with certifi's roots (as requests and httpx use by default). Made once and
    shared (a context is safe to share, and loading the roots is most of a new client's
    cost); never change it."""
    return ssl.create_default_context(cafile=certifi.where())


@dataclass(frozen=True)
class Guard:
    """What one connector may reach, and how its refusals read.

    who names the fetcher in messages ("a feed source", "a Mastodon source").
    """

    who: str
    allow_private: bool = False
    max_bytes: int = MAX_BYTES
    timeout: float = TIMEOUT

    def address(self, host: str, port: int) -> IPAddress:
        """The address to connect to for host, after checking every address it has.

        :raise Refused: when the host cannot be found or has an internal address.
        """
        name = host.strip("[]")
        try:
            infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise Refused(f"The host {name!r} could not be found.") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
        if not addresses:
            raise Refused(f"The host {name!r} could not be found.")
        if not self.allow_private:
            # One internal address is enough to refuse: DNS answers can be mixed on purpose.
            for ip in addresses:
                if is_forbidden(ip):
                    shown = "" if str(ip) == name else f" ({ip})"
                    raise Refused(
                        f"{name!r}{shown} is an internal address; {self.who} may only reach"
                        " public addresses."
                    )
        return addresses[0]

    def too_large(self, host: str) -> Refused:
        """The error for an answer over max_bytes."""
        return Refused(f"The answer from {host!r} is larger than {self.max_bytes // 2**20} MB.")

    def too_slow(self, host: str) -> Refused:
        """The error for an answer that took longer than timeout."""
        return TooSlow(f"{host!r} took longer than {self.timeout:g} s to answer.")


def _declared_too_large(headers: Any, limit: int) -> bool:
    """Whether the Content-Length header already says more than limit."""
    length = str(headers.get("content-length") or "").strip()
    return length.isdigit() and int(length) > limit


def _capped(
    chunks: Iterator[bytes], encoding: str, guard: Guard, host: str, deadline: float
) -> Iterator[bytes]:
    """The body's chunks, inflated here when compressed, stopped past the size or time cap."""
    total = 0
    for chunk in _inflated(chunks, encoding, host):
        total += len(chunk)
        if total > guard.max_bytes:
            raise guard.too_large(host)
        if time.monotonic() > deadline:
            raise guard.too_slow(host)
        yield chunk


def _inflated(chunks: Iterator[bytes], encoding: str, host: str) -> Iterator[bytes]:
    """Raw chunks as they are, or gunzipped a bounded slice at a time."""
    if encoding in ("", "identity"):
        yield from chunks
        return
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise Refused(f"{host!r} used a content encoding we do not read ({encoding}).")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
    try:
        for chunk in chunks:
            data = chunk
            while data:
                yield inflater.decompress(data, _INFLATE_SLICE)
                data = inflater.unconsumed_tail
        yield inflater.flush()
    except zlib.error:
        raise Refused(f"The compressed answer from {host!r} is corrupt.") from None


# httpx: a network backend that connects only to checked addresses, and a transport
# that decodes and caps what comes back.


class _CheckedBackend(httpcore.SyncBackend):
    """httpcore's sockets, opened only to the address the guard checked."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        """Resolve and check host, then connect to that address (TLS still names host)."""
        ip = self.guard.address(host, port)
        return super().connect_tcp(str(ip), port, timeout, local_address, socket_options)


class _Body(httpx.SyncByteStream):
    """A response body read through the guard's caps."""

    def __init__(self, stream: httpx.SyncByteStream, chunks: Iterator[bytes]) -> None:
        self._stream = stream
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        """The capped, decoded chunks."""
        yield from self._chunks

    def close(self) -> None:
        """Close the underlying connection's stream."""
        self._stream.close()


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport whose every connection goes through guard (redirect hops
    included), with answers decoded here and capped in size and time."""

    def __init__(self, guard: Guard, limits: httpx.Limits | None = None) -> None:
        # The shared context, so that httpx does not load the roots again for a pool that
        # is replaced below.
        super().__init__(trust_env=False, verify=tls_context())
        self.guard = guard
        limits = limits or httpx.Limits(max_connections=10, max_keepalive_connections=5)
        # httpx takes no network backend, so the pool it built is replaced by one that has
        # ours; the rest of the transport (request and error mapping) stays httpx's.
        self._pool = httpcore.ConnectionPool(
            ssl_context=tls_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_CheckedBackend(guard),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send request; the answer's body is decoded here, boundedly, and capped."""
        deadline = time.monotonic() + self.guard.timeout
        host = request.url.host
        # Only encodings this transport inflates within bounds (no brotli, no zstd).
        request.headers["Accept-Encoding"] = "gzip, deflate"
        response = super().handle_request(request)
        if _declared_too_large(response.headers, self.guard.max_bytes):
            response.close()
            raise self.guard.too_large(host)
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if encoding in ("", "identity")
            or name.lower() not in ("content-encoding", "content-length")
        ]
        assert isinstance(response.stream, httpx.SyncByteStream)
        chunks = _capped(iter(response.stream), encoding, self.guard, host, deadline)
        return httpx.Response(
            status_code=response.status_code,
            headers=headers,
            stream=_Body(response.stream, chunks),
            extensions=response.extensions,
        )


def httpx_transport(guard: Guard) -> GuardedTransport:
    """A guarded transport, for an httpx.Client a library builds (pass trust_env=False too)."""
    return GuardedTransport(guard)


def httpx_client(guard: Guard, **kwargs: Any) -> httpx.Client:
    """An httpx.Client that reaches only what guard allows; kwargs go to httpx.Client."""
    kwargs.setdefault("timeout", guard.timeout)
    kwargs.setdefault("max_redirects", MAX_REDIRECTS)
    return httpx.Client(transport=httpx_transport(guard), trust_env=False, **kwargs)


# requests: urllib3 connections that connect only to checked addresses, mounted on a
# session whose answers are capped.


class _CheckedConnection(HTTPConnection):
    """A urllib3 connection opened only to the address the guard checked."""

    guard: Guard

    def _new_conn(self) -> socket.socket:
        """Resolve and check the host, then connect to that address."""
        ip = self.guard.address(self.host, self.port)
        try:
            return urllib3_connection.create_connection(
                (str(ip), self.port),
                self.timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out.") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to connect: {exc}") from exc


class _CheckedTLSConnection(_CheckedConnection, HTTPSConnection):
    """The TLS kind: the socket goes to the checked address, the certificate is verified
    against the host name (urllib3 names self.host as the server)."""


def _pool_classes(guard: Guard) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes whose connections go through guard."""
    plain = type("GuardedConnection", (_CheckedConnection,), {"guard": guard})
    tls = type("GuardedTLSConnection", (_CheckedTLSConnection,), {"guard": guard})
    return {
        "http": type("GuardedPool", (HTTPConnectionPool,), {"ConnectionCls": plain}),
        "https": type("GuardedTLSPool", (HTTPSConnectionPool,), {"ConnectionCls": tls}),
    }


class _CappedRaw:
    """A urllib3 response as requests reads it, stopped past the guard's caps."""

    def __init__(self, raw: Any, guard: Guard, host: str) -> None:
        self._raw = raw
        self._guard = guard
        self._host = host
        self._deadline = time.monotonic() + guard.timeout

    def stream(self, amt: int = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        """The body's chunks (urllib3 inflates them a bounded slice at a time)."""
        total = 0
        for chunk in self._raw.stream(amt, decode_content=decode_content):
            total += len(chunk)
            if total > self._guard.max_bytes:
                raise self._guard.too_large(self._host)
            if time.monotonic() > self._deadline:
                raise self._guard.too_slow(self._host)
            yield chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose every connection goes through guard (redirect hops
    included), with TLS verified by tls_context() and answers capped."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self._tls = tls_context()
        super().__init__()

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        """requests' pool manager, with our connection classes."""
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.guard)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """requests' pool key, with our TLS context wherever certificates are verified."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if verify is not False:
            pool_kwargs["ssl_context"] = self._tls
            pool_kwargs.pop("ca_certs", None)
            pool_kwargs.pop("ca_cert_dir", None)
        return host_params, pool_kwargs

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        """requests' response, refused when it declares too much, capped as it is read."""
        response = super().build_response(req, resp)
        host = httpx.URL(response.url).host
        if _declared_too_large(response.headers, self.guard.max_bytes):
            resp.close()
            raise self.guard.too_large(host)
        response.raw = _CappedRaw(resp, self.guard, host)
        return response


def requests_session(guard: Guard) -> requests.Session:
    """A requests.Session that reaches only what guard allows (no proxies from the
    environment, no .netrc), following at most MAX_REDIRECTS redirects."""
    session = requests.Session()
    session.trust_env = False
    session.max_redirects = MAX_REDIRECTS
    adapter = GuardedAdapter(guard)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
