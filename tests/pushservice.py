"""A local Web Push service for tests and benches: it checks each request as a real push
service does (a VAPID JWT signed ES256 by the key in the header, aud = this origin, an
exp within a day, a mailto: or https: sub; a TTL; an aes128gcm body) and decrypts the
payload (RFC 8291) with the private key of the subscription it made, then answers
with the status each endpoint is set to (201 unless told: 404 or 410 for a gone one)."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Delivery:
    """One accepted (or refused) push, as the service read it."""

    path: str
    status: int
    claims: dict[str, Any]
    ttl: int
    payload: dict[str, Any] | None
    problem: str | None = None


@dataclass
class PushService:
    """Start with start(); make subscriptions with subscribe(); read deliveries."""

    deliveries: list[Delivery] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    keys: dict[str, tuple[ec.EllipticCurvePrivateKey, bytes]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def start(self) -> PushService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                delivery = service._receive(self.path, self.headers, body)
                self.send_response(delivery.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def subscribe(self, name: str | None = None, status: int = 201) -> dict[str, Any]:
        """A subscription as a browser's PushSubscription.toJSON() gives it."""
        path = f"/push/{name or b64e(os.urandom(9))}"
        private = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        public = private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.keys[path] = (private, auth)
        self.statuses[path] = status
        return {
            "endpoint": self.origin + path,
            "keys": {"p256dh": b64e(public), "auth": b64e(auth)},
        }

    def accepted(self) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if 200 <= d.status < 300]

    def _receive(self, path: str, headers: Any, body: bytes) -> Delivery:
        status = self.statuses.get(path, 404)
        claims: dict[str, Any] = {}
        payload = None
        problem = None
        try:
            claims = self._check_vapid(headers.get("Authorization", ""))
            if "TTL" not in headers:
                raise ValueError("no TTL header")
            if headers.get("Content-Encoding") != "aes128gcm":
                raise ValueError("not aes128gcm")
            if path in self.keys and status < 300:
                private, auth = self.keys[path]
                plain = http_ece.decrypt(
                    body, private_key=private, auth_secret=auth, version="aes128gcm"
                )
                payload = json.loads(plain)
        except (ValueError, KeyError, InvalidSignature) as exc:
            problem = f"{type(exc).__name__}: {exc}"
            status = 400 if "exp" not in str(exc) else 403
        delivery = Delivery(path, status, claims, int(headers.get("TTL") or 0), payload, problem)
        with self.lock:
            self.deliveries.append(delivery)
        return delivery

    def _check_vapid(self, authorization: str) -> dict[str, Any]:
        """The claims of a valid `vapid t=JWT,k=KEY` header. :raise ValueError: why not."""
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError(f"not a vapid authorization: {authorization[:20]!r}")
        parts = dict(p.strip().split("=", 1) for p in rest.split(","))
        token, key = parts["t"], b64d(parts["k"])
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
        head, claims_part, signature = token.split(".")
        header = json.loads(b64d(head))
        if header.get("alg") != "ES256":
            raise ValueError(f"alg {header.get('alg')!r}")
        raw = b64d(signature)
        if len(raw) != 64:
            raise ValueError("an ES256 signature is 64 bytes")
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public.verify(der, f"{head}.{claims_part}".encode(), ec.ECDSA(hashes.SHA256()))
        claims = json.loads(b64d(claims_part))
        if claims.get("aud") != self.origin:
            raise ValueError(f"aud {claims.get('aud')!r} is not {self.origin}")
        now = time.time()
        if not now < int(claims.get("exp", 0)) <= now + 86400:
            raise ValueError(f"exp {claims.get('exp')!r} is not within a day")
        sub = str(claims.get("sub", ""))
        if not (sub.startswith("mailto:") or sub.startswith("https://")):
            raise ValueError(f"sub {sub!r}")
        return claims
