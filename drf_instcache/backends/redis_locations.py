"""Redis locations: cluster startup nodes (and their credentials), redacted URLs.

Kept apart from the adapter (:mod:`drf_instcache.backends.redis`) so that module holds
the client and the protocol; the Sentinel adapter parses its nodes with the same rule.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from redis.cluster import ClusterNode

from drf_instcache.exceptions import ImproperlyConfigured

__all__ = ["DEFAULT_CLUSTER_PORT", "cluster_startup_nodes", "redacted"]

DEFAULT_CLUSTER_PORT = 6379


def _parse_node(entry: str) -> tuple[str, int, str | None, str | None]:
    """Split ``[user:password@]host[:port]`` into host, port, username, password."""
    username = password = None
    if "@" in entry:
        credentials, _, entry = entry.rpartition("@")
        user, sep, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if sep else None
    host, sep, port = entry.rpartition(":")
    if not sep or entry.endswith("]"):
        host, port = entry, str(DEFAULT_CLUSTER_PORT)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ImproperlyConfigured(
            f"RedisBackend cluster node {entry!r} is not host:port with a port 1-65535"
        )
    return host, int(port), username, password


def cluster_startup_nodes(location: Any) -> tuple[list[ClusterNode], dict[str, str]]:
    """Turn a cluster location into startup nodes and the credentials found in it.

    Accepts a list of ``host:port`` strings, or one string of comma-separated nodes,
    optionally written as a ``redis://`` or ``redis+cluster://`` URL.
    """
    if isinstance(location, str):
        text = location.split("?", 1)[0]
        if "://" in text:
            text = text.split("://", 1)[1]
        text = text.split("/", 1)[0]
        entries = text.split(",")
    elif isinstance(location, list | tuple):
        entries = [str(entry) for entry in location]
    else:
        raise ImproperlyConfigured(
            "RedisBackend cluster LOCATION must be a list of 'host:port' strings or "
            f"'host:port,host:port', not {location!r}"
        )
    nodes: list[ClusterNode] = []
    credentials: dict[str, str] = {}
    for entry in entries:
        entry = entry.strip()
        if "://" in entry:
            entry = entry.split("://", 1)[1].split("/", 1)[0]
        if not entry:
            raise ImproperlyConfigured(
                f"RedisBackend cluster LOCATION {location!r} has an empty node"
            )
        host, port, username, password = _parse_node(entry)
        if username and "username" not in credentials:
            credentials["username"] = username
        if password and "password" not in credentials:
            credentials["password"] = password
        nodes.append(ClusterNode(host, port))
    return nodes, credentials


def redacted(url: str) -> str:
    """The URL without its password, for messages and ``repr``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{host}").geturl()
