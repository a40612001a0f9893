"""Client-side helpers for tests that start servers on 127.0.0.1."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

# No proxies from the environment: tests talk to 127.0.0.1 only.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    """GET ``url``: (status, body), error statuses included."""
    try:
        with _opener.open(url, timeout=30) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code), exc.read()
