"""Redis behind Sentinel: the Redis adapter, with the master found by asking the sentinels.

Selecting it::

    DRF_INSTCACHE_BACKEND = "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0"
    DRF_INSTCACHE_BACKEND = "redis+sentinel://:secret@10.0.0.1:26379/mymaster/0"  # master password
    DRF_INSTCACHE_BACKEND = {
        "BACKEND": "drf_instcache.backends.sentinel.RedisSentinelBackend",
        "LOCATION": ["10.0.0.1:26379", "10.0.0.2:26379"],
        "OPTIONS": {"service_name": "mymaster", "db": 0, "sentinel_password": "s3"},
    }

Reads and writes both go to the master (``Sentinel.master_for``): a replica may lag, and
a cache read that misses a just-written invalidation would serve stale data. Every new
connection asks the sentinels where the master is, so after a failover the next call
(after one ``BackendUnavailable`` per pooled connection to the old master) reaches the
new one; the circuit breaker bounds what the failover costs the requests in between.

Options, besides every option of :class:`~drf_instcache.backends.redis.RedisBackend`
except ``cluster``:

``service_name`` (required; the URL's first path segment)
    The name the sentinels monitor the master under (``sentinel monitor <name> ...``).
``db`` (0; the URL's second path segment)
    Database number on the master.
``sentinel_username`` / ``sentinel_password`` (none)
    Credentials of the sentinels themselves (``requirepass`` in sentinel.conf); the
    master's come from the URL (``redis+sentinel://user:pass@...``) or ``client_options``.
``sentinel_socket_timeout`` (``socket_timeout``)
    Longest wait for one sentinel's answer; the next sentinel is asked after it.
``min_other_sentinels`` (0)
    Trust a sentinel's answer only if it sees at least this many other sentinels.
"""

from __future__ import annotations

from typing import Any, ClassVar

import redis
from redis.sentinel import Sentinel

from drf_instcache.backends.redis import RedisBackend, cluster_startup_nodes
from drf_instcache.exceptions import ImproperlyConfigured

DEFAULT_SENTINEL_PORT = 26379

_SENTINEL_OPTIONS = frozenset(
    {
        "service_name",
        "db",
        "sentinel_username",
        "sentinel_password",
        "sentinel_socket_timeout",
        "min_other_sentinels",
    }
)


def _with_port(entry: str) -> str:
    """``host`` -> ``host:26379``; an entry with a port is kept."""
    host = entry.rpartition("@")[2]
    has_port = ":" in host and not host.endswith("]") and host.rpartition(":")[2].isdigit()
    return entry if has_port else f"{entry}:{DEFAULT_SENTINEL_PORT}"


def sentinel_nodes(location: Any) -> tuple[list[tuple[str, int]], dict[str, str]]:
    """Sentinel addresses from a location, and the master credentials written in it.

    Accepts a list of ``host:port`` strings or one string ``h1:p1,h2:p2`` (a port left
    out means 26379); a ``redis+sentinel://`` URL's path and query are ignored here.
    """
    if isinstance(location, str):
        if "://" in location:
            location = location.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
        location = location.split(",")
    if not isinstance(location, list | tuple) or not location:
        raise ImproperlyConfigured(
            "RedisSentinelBackend LOCATION must list the sentinels as 'host:port' strings, "
            f"not {location!r}"
        )
    nodes, credentials = cluster_startup_nodes([_with_port(str(entry)) for entry in location])
    return [(node.host, int(node.port)) for node in nodes], credentials


class RedisSentinelBackend(RedisBackend):
    """Store instances on the Redis master that a set of sentinels currently names."""

    scheme = "redis+sentinel"
    option_names: ClassVar[frozenset[str]] = (
        RedisBackend.option_names - {"cluster"}
    ) | _SENTINEL_OPTIONS

    def __init__(self, location: Any = None, **kwargs: Any) -> None:
        if location is None:
            raise ImproperlyConfigured(
                "RedisSentinelBackend LOCATION must list the sentinels, e.g. "
                "'redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster/0'"
            )
        super().__init__(location, **kwargs)

    def _standalone_client(self) -> redis.Redis:
        """A ``master_for`` client: each new connection asks the sentinels for the master."""
        options = self.options
        service_name = options.get("service_name")
        if not isinstance(service_name, str) or not service_name:
            raise ImproperlyConfigured(
                "RedisSentinelBackend needs the master's service name: "
                "'redis+sentinel://host:26379/<service_name>/<db>' or OPTIONS "
                f"{{'service_name': 'mymaster'}}; got {service_name!r}"
            )
        self.service_name = service_name
        self.db = self.number_option("db", 0, integer=True)
        self.min_other_sentinels = self.number_option("min_other_sentinels", 0, integer=True)
        sentinel_timeout = self.number_option(
            "sentinel_socket_timeout", self.socket_timeout, minimum=0.001
        )
        self.sentinels, credentials = sentinel_nodes(self.location)
        sentinel_kwargs: dict[str, Any] = {
            "socket_timeout": sentinel_timeout,
            "socket_connect_timeout": min(sentinel_timeout, self.socket_connect_timeout),
        }
        for name in ("username", "password"):
            value = options.get(f"sentinel_{name}")
            if value is not None:
                sentinel_kwargs[name] = str(value)
        master_kwargs = {**credentials, **self._client_kwargs, "db": self.db}
        self._sentinel = Sentinel(
            self.sentinels,
            min_other_sentinels=self.min_other_sentinels,
            sentinel_kwargs=sentinel_kwargs,
        )
        # Builds a pool; no sentinel nor master is contacted until the first call.
        return self._sentinel.master_for(service_name, **master_kwargs)

    def describe(self) -> str:
        where = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return (
            f"sentinel {where} master {self.service_name!r} db {self.db} "
            f"(prefix {self.key_prefix!r})"
        )

    def close(self) -> None:
        """Close the master's pooled connections and those to the sentinels."""
        super().close()
        for sentinel in self._sentinel.sentinels:
            sentinel.connection_pool.disconnect()
