"""`crm` with X's API host answered by a local fake: api.twitter.com resolves to
127.0.0.1 at the port CRM_TEST_X_PORT names, whose certificate the test CA in
REQUESTS_CA_BUNDLE signed, so tweepy, requests and TLS run in a worker as they would
against X. Every other name resolves as usual.

    python -m tests.workers.local_x worker --burst high
"""

from __future__ import annotations

import os
import socket
from typing import Any

from webapp.cli import main

X_HOST = "api.twitter.com"
_resolve = socket.getaddrinfo


def _getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
    if host in (X_HOST, X_HOST.encode()):
        local = ("127.0.0.1", int(os.environ["CRM_TEST_X_PORT"]))
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", local)]
    return _resolve(host, port, *args, **kwargs)


if __name__ == "__main__":
    socket.getaddrinfo = _getaddrinfo
    main()
