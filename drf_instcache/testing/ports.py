"""Find free loopback ports for throw-away test servers."""

from __future__ import annotations

import socket


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Return True when nothing listens on ``host:port``."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", *, also_free_at_offset: int | None = None) -> int:
    """Return a port the OS reports free on ``host``.

    ``also_free_at_offset`` asks that ``port + offset`` be free too: Redis Cluster
    listens on its bus port, the client port plus 10000.
    """
    for _ in range(500):
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if also_free_at_offset is None:
            return port
        other = port + also_free_at_offset
        if other < 65536 and is_free(other, host):
            return port
    raise RuntimeError(f"no free port found on {host}")
