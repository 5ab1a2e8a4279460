"""Real cache servers for the tests, started on free loopback ports.

Each server is a real process (memcached, redis-server) run by mirakuru, never the
machine's shared instance on a standard port. When a binary is missing the tests that
need it are skipped, unless ``DRF_INSTCACHE_REQUIRE_SERVERS=1`` (set by CI), which
turns a missing server into a failure so nothing is silently left untested.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

REQUIRE_SERVERS = os.environ.get("DRF_INSTCACHE_REQUIRE_SERVERS") == "1"


def require_binary(name: str) -> str:
    """Return the path of ``name``, or skip (fail under REQUIRE_SERVERS) when absent."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path:
        return path
    message = f"{name} is not installed (apt-get install {name.replace('-server', '-server')})"
    if REQUIRE_SERVERS:
        pytest.fail(f"DRF_INSTCACHE_REQUIRE_SERVERS=1 but {message}", pytrace=False)
    pytest.skip(message)


def free_port(exclude_bus_offset: int | None = None) -> int:
    """Return a free TCP port on 127.0.0.1.

    With ``exclude_bus_offset`` (Redis Cluster's bus is port + 10000) the port is only
    returned when ``port + offset`` is free too.
    """
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if exclude_bus_offset is None:
            return port
        if port + exclude_bus_offset < 65536 and _is_free(port + exclude_bus_offset):
            return port
    raise RuntimeError("no free port found")


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
