"""Memcached servers: the LOCATION parsed, the expiry field, one record per server, and
its keys dumped.

``clear()`` needs the keys of a namespace, which memcached can only list by streaming
``lru_crawler metadump`` on a connection of its own; that is done here, apart from the
adapter's request path.
"""

from __future__ import annotations

import math
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from pymemcache.client.base import PooledClient
from pymemcache.exceptions import MemcacheError, MemcacheServerError, MemcacheUnexpectedCloseError

from drf_instcache.exceptions import ImproperlyConfigured

DEFAULT_PORT = 11211

RELATIVE_EXPIRY_LIMIT = 30 * 24 * 3600
"""Memcached reads a larger expiry as an absolute Unix timestamp."""

CRAWLER_BUSY_WAIT = 5.0
"""Seconds ``clear`` waits for memcached's LRU crawler to finish another job."""


def parse_servers(location: Any) -> list[tuple[str, int]]:
    """Turn a location into ``[(host, port), ...]``.

    Accepts a list of ``host[:port]`` strings or one string of comma-separated servers,
    optionally written as a ``memcached://`` URL.
    """
    if isinstance(location, str):
        text = location.split("?", 1)[0]
        if "://" in text:
            text = text.split("://", 1)[1]
        entries = text.split(",")
    elif isinstance(location, list | tuple) and location:
        entries = [str(entry) for entry in location]
    else:
        raise ImproperlyConfigured(
            "MemcachedBackend LOCATION must be 'host:port', 'host:port,host:port' or a "
            f"list of 'host:port' strings, not {location!r}"
        )
    servers = []
    for entry in entries:
        entry = entry.strip()
        host, sep, port = entry.rpartition(":")
        if not sep:
            host, port = entry, str(DEFAULT_PORT)
        if not host or "/" in host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(
                f"MemcachedBackend server {entry!r} is not host:port with a port 1-65535"
            )
        servers.append((host, int(port)))
    if len(set(servers)) != len(servers):
        raise ImproperlyConfigured(f"MemcachedBackend LOCATION {location!r} repeats a server")
    return servers


def memcached_expire(lifetime: float | None, now: float) -> int:
    """The exptime field for a lifetime in seconds (``None``: never expires).

    Whole seconds, rounded up; beyond 30 days memcached expects an absolute Unix time.
    """
    if lifetime is None:
        return 0
    seconds = max(1, math.ceil(lifetime))
    if seconds <= RELATIVE_EXPIRY_LIMIT:
        return seconds
    return int(now) + seconds


def is_too_large(error: BaseException) -> bool:
    """True for memcached's ``SERVER_ERROR object too large for cache`` reply."""
    return isinstance(error, MemcacheServerError) and "too large" in str(error)


class CrawlerBusy(MemcacheError):
    """The server's LRU crawler is running another job; try again shortly."""


class DumpModeRefused(MemcacheError):
    """The server does not know this ``metadump`` mode (older than memcached 1.6.10)."""


@dataclass(eq=False)
class Node:
    """One server: its connection pool, its item limit, and whether it is in a dead spell."""

    name: str
    host: str
    port: int
    client: PooledClient
    item_size_max: int | None = None
    down_until: float = 0.0
    last_error: str = ""
    dump_mode: bytes | None = None
    """``metadump`` mode this server accepts (found on the first ``clear``)."""


def dump_keys(node: Node, head: bytes, connect_timeout: float, read_timeout: float) -> list[str]:
    """Keys on ``node`` starting with ``head``, waiting out a busy LRU crawler.

    ``metadump hash`` walks the hash table (memcached 1.6.10 and later): unlike a
    walk of the LRUs (``metadump all``, the fallback for older servers), it does not
    miss entries that the server moves between LRU segments while it walks.
    """
    deadline = time.monotonic() + CRAWLER_BUSY_WAIT
    while True:
        try:
            if node.dump_mode is None:
                try:
                    found = metadump(node, head, connect_timeout, read_timeout, b"hash")
                    node.dump_mode = b"hash"
                    return found
                except DumpModeRefused:
                    node.dump_mode = b"all"
            return metadump(node, head, connect_timeout, read_timeout, node.dump_mode)
        except CrawlerBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def metadump(
    node: Node, head: bytes, connect_timeout: float, read_timeout: float, mode: bytes = b"all"
) -> list[str]:
    """Stream ``lru_crawler metadump <mode>`` on its own connection, keeping our keys.

    The dump lists every key on the server (URL-encoded, one per line) and can be
    large, so it is filtered as it arrives rather than read into memory whole.
    """
    found: list[str] = []
    with socket.create_connection((node.host, node.port), timeout=connect_timeout) as sock:
        # The crawler walks the whole cache; give it more than one request's time.
        sock.settimeout(max(read_timeout, CRAWLER_BUSY_WAIT))
        sock.sendall(b"lru_crawler metadump " + mode + b"\r\n")
        pending = b""
        first = True
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise MemcacheUnexpectedCloseError()
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                line = line.rstrip(b"\r")
                if line.startswith(b"key="):
                    key = unquote_to_bytes(line[4:].split(b" ", 1)[0])
                    if key.startswith(head):
                        found.append(key.decode("ascii"))
                elif line == b"END":
                    return found
                elif line.startswith(b"BUSY"):
                    raise CrawlerBusy(line.decode("ascii", "replace"))
                elif first and mode != b"all" and line.startswith((b"CLIENT_ERROR", b"ERROR")):
                    raise DumpModeRefused(line.decode("ascii", "replace"))
                elif line:
                    raise MemcacheServerError(
                        "lru_crawler metadump is not available: " + line.decode("ascii", "replace")
                    )
                first = False
