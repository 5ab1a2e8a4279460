"""Redis adapter: one server or a Redis Cluster, through redis-py.

Install: ``pip install 'drf-instcache[redis]'`` (redis-py and hiredis; redis-py parses
replies with hiredis automatically when it is installed).

Selecting it::

    DRF_INSTCACHE_BACKEND = "redis://127.0.0.1:6379/0"              # db 0
    DRF_INSTCACHE_BACKEND = "redis://:secret@cache.internal:6379/2"   # password, db 2
    DRF_INSTCACHE_BACKEND = "rediss://cache.internal:6380/0"          # TLS
    DRF_INSTCACHE_BACKEND = "redis+cluster://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000"
    DRF_INSTCACHE_BACKEND = {
        "BACKEND": "drf_instcache.backends.redis.RedisBackend",
        "LOCATION": ["10.0.0.1:7000", "10.0.0.2:7000"],   # cluster startup nodes
        "OPTIONS": {"cluster": True, "socket_timeout": 0.25},
        "KEY_PREFIX": "api",
        "TIMEOUT": 3600,
    }

A cluster location is any subset of the nodes; the rest are discovered. Credentials in
the first cluster node (``redis+cluster://:secret@h1:7000,h2:7000``) apply to all nodes.

Options (URL query parameters or ``OPTIONS``), with their defaults:

``cluster`` (False)
    Use :class:`redis.cluster.RedisCluster`; the location lists startup nodes.
``socket_timeout`` (0.5 s) and ``socket_connect_timeout`` (0.5 s)
    How long one read/write or one connect may take. Short on purpose: a cache that
    answers slowly is worse than no cache, since the core then serves from the database.
``retries`` (0)
    Extra attempts after a connection error or timeout, without back-off. With the
    default an outage is reported (as ``BackendUnavailable``) within one timeout;
    stale pooled connections are still replaced transparently by redis-py's pool.
``max_connections`` (None: redis-py's default, unbounded)
    Connections per pool (per node in a cluster). Exceeding it raises
    ``BackendUnavailable`` instead of waiting.
``health_check_interval`` (0: off)
    Seconds a pooled connection may idle before redis-py PINGs it before use.
``max_value_size`` (None: Redis's own 512 MB limit)
    Refuse larger values with ``ValueTooLarge`` without sending them.
``clear_batch_size`` (1000)
    Keys per SCAN step and per UNLINK when :meth:`RedisBackend.clear` runs.
``client_options`` ({})
    Passed verbatim to ``redis.Redis.from_url`` / ``RedisCluster`` (e.g. ``ssl_ca_certs``,
    ``username``); our own settings above win on conflict.

What each call costs: ``get_many`` is one MGET, ``set_many`` one transaction-less
pipeline of ``SET key value PX ms``, ``delete_many`` one UNLINK. The conditional writes
the core's leases use are one Lua script each, one command for the whole batch:
``add_many`` runs ``SET ... NX PX`` per key, ``compare_and_set_many`` GET, compare, SET
per key, atomically on the server. On a cluster (a script's keys must share a slot) they
are pipelines of ``SET ... NX PX`` and of a one-key script, and the keys are grouped by
hash slot (MGET/UNLINK refuse keys of several slots); the per-slot commands for one node
travel in one pipeline, so a call costs at most one round trip per master.

Limits: ``clear`` SCANs every master for ``<prefix>:*`` and UNLINKs in batches; it never
runs FLUSHDB, so other data in the database survives, but it is O(keys in the database).
Cluster mode supports only database 0 (a Redis Cluster rule). Writes are not atomic
across keys (nothing in the core needs it).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, cast

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError
from redis.retry import Retry

from drf_instcache.backends.base import BaseBackend
from drf_instcache.backends.redis_locations import (
    cluster_startup_nodes,
    redacted,
)
from drf_instcache.backends.redis_scripts import (
    ADD_MANY_SCRIPT,
    COMPARE_AND_SET_MANY_SCRIPT,
    COMPARE_AND_SET_SCRIPT,
    FILL_MANY_SCRIPT,
    GET_MANY_CLAIMING_SCRIPT,
)
from drf_instcache.exceptions import ImproperlyConfigured

DEFAULT_LOCATION = "redis://127.0.0.1:6379/0"
DEFAULT_SOCKET_TIMEOUT = 0.5
DEFAULT_SOCKET_CONNECT_TIMEOUT = 0.5
DEFAULT_RETRIES = 0
DEFAULT_HEALTH_CHECK_INTERVAL = 0.0
DEFAULT_CLEAR_BATCH_SIZE = 1000

_OPTION_NAMES = frozenset(
    {
        "cluster",
        "socket_timeout",
        "socket_connect_timeout",
        "retries",
        "max_connections",
        "health_check_interval",
        "max_value_size",
        "clear_batch_size",
        "client_options",
    }
)

_GLOB_SPECIALS = "\\*?[]"


def _expiry(milliseconds: int | None) -> bytes:
    """A script's lifetime argument: milliseconds, or empty for no expiry."""
    return b"" if milliseconds is None else str(milliseconds).encode("ascii")


def glob_escape(text: str) -> str:
    """Escape ``text`` so a Redis MATCH pattern treats it literally."""
    return "".join(f"\\{char}" if char in _GLOB_SPECIALS else char for char in text)


class RedisBackend(BaseBackend):
    """Store instances in Redis (one server) or a Redis Cluster, via redis-py."""

    scheme = "redis"
    option_names = _OPTION_NAMES
    option_hint = " (pass redis-py arguments in 'client_options')"
    unavailable_errors: ClassVar[tuple[type[BaseException], ...]] = (
        RedisError,
        RedisClusterException,
        OSError,
    )

    def __init__(self, location: Any = None, **kwargs: Any) -> None:
        super().__init__(location if location is not None else DEFAULT_LOCATION, **kwargs)
        options = self.options
        self.cluster = bool(options.get("cluster", False))
        # Timeouts must be bounded and positive: None would let a hung server block a
        # request forever, 0 would make redis-py's sockets non-blocking.
        self.socket_timeout = self.number_option(
            "socket_timeout", DEFAULT_SOCKET_TIMEOUT, minimum=0.001
        )
        self.socket_connect_timeout = self.number_option(
            "socket_connect_timeout", DEFAULT_SOCKET_CONNECT_TIMEOUT, minimum=0.001
        )
        self.retries = self.number_option("retries", DEFAULT_RETRIES, integer=True)
        self.max_connections = self.number_option(
            "max_connections", None, minimum=1, allow_none=True, integer=True
        )
        self.health_check_interval = self.number_option(
            "health_check_interval", DEFAULT_HEALTH_CHECK_INTERVAL
        )
        self.clear_batch_size = self.number_option(
            "clear_batch_size", DEFAULT_CLEAR_BATCH_SIZE, minimum=1, integer=True
        )
        client_options = options.get("client_options") or {}
        if not isinstance(client_options, Mapping):
            raise ImproperlyConfigured(
                f"RedisBackend option 'client_options' must be a dict, not {client_options!r}"
            )
        self._client_kwargs = {**client_options, **self._connection_kwargs()}

        self._lock = threading.Lock()
        self._client: Any = None
        if self.cluster:
            # Validate now; the client itself is built on first use, because building a
            # RedisCluster contacts the nodes and start-up must not depend on the cache.
            self._startup_nodes, credentials = cluster_startup_nodes(self.location)
            self._client_kwargs = {**credentials, **self._client_kwargs}
        else:
            self._client = self._standalone_client()

    def _standalone_client(self) -> redis.Redis:
        """The client of one server, from the URL; builds a pool but opens no connection.

        The Sentinel adapter overrides it to ask the sentinels for the master instead.
        """
        if not isinstance(self.location, str) or "://" not in self.location:
            raise ImproperlyConfigured(
                "RedisBackend LOCATION must be a redis://, rediss:// or unix:// URL "
                f"(or use the 'cluster' option with a node list), not {self.location!r}"
            )
        try:
            return redis.Redis.from_url(self.location, **self._client_kwargs)
        except ValueError as error:
            raise ImproperlyConfigured(
                f"RedisBackend LOCATION {redacted(self.location)!r}: {error}"
            ) from error

    def _connection_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            "health_check_interval": self.health_check_interval,
            "decode_responses": False,  # values are opaque bytes, returned as stored
        }
        if self.max_connections is not None:
            kwargs["max_connections"] = self.max_connections
        if not self.cluster:
            # RedisCluster takes its retry policy as a constructor argument instead.
            kwargs["retry"] = Retry(NoBackoff(), self.retries)
        return kwargs

    # -- client -----------------------------------------------------------------------
    @property
    def client(self) -> redis.Redis | RedisCluster:
        """The redis-py client (a cluster client is built, and nodes discovered, on first use)."""
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                self._client = RedisCluster(
                    startup_nodes=list(self._startup_nodes),
                    retry=Retry(NoBackoff(), self.retries),
                    **self._client_kwargs,
                )
            return self._client

    def describe(self) -> str:
        if self.cluster:
            nodes = ",".join(f"{node.host}:{node.port}" for node in self._startup_nodes)
            where = f"cluster {nodes}"
        else:
            where = redacted(str(self.location))
        return f"{where} (prefix {self.key_prefix!r})"

    # -- protocol ---------------------------------------------------------------------
    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        mapping = self.server_keys(keys)
        server_keys = list(mapping)
        with self.translate_errors("get_many"):
            client = self.client
            if self.cluster:
                values = cast(RedisCluster, client).mget_nonatomic(server_keys)
            else:
                values = client.mget(server_keys)
        return {
            mapping[server_key]: value
            for server_key, value in zip(server_keys, values, strict=True)
            if value is not None
        }

    def set_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> None:
        self.store(items, timeout, self._write)

    def _write(self, fitting: dict[str, bytes], lifetime: float | None) -> None:
        """``SET key value PX ms`` for every item, in one pipeline."""
        milliseconds = self._milliseconds(lifetime)
        pipeline = self.client.pipeline(transaction=False)
        for key, value in fitting.items():
            pipeline.set(self.server_key(key), value, px=milliseconds)
        pipeline.execute()

    def add_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> list[str]:
        """One Lua script of ``SET key value NX PX ms`` per key (one command, however many
        keys); on a cluster, ``SET ... NX PX`` per key in one pipeline."""

        def add(fitting: dict[str, bytes], lifetime: float | None) -> list[str]:
            milliseconds = self._milliseconds(lifetime)
            if not self.cluster:
                keys = list(fitting)
                won = self._run_script(
                    ADD_MANY_SCRIPT,
                    [self.server_key(key) for key in keys],
                    [_expiry(milliseconds), *fitting.values()],
                )
                return [keys[position - 1] for position in won]
            pipeline = self.client.pipeline(transaction=False)
            for key, value in fitting.items():
                pipeline.set(self.server_key(key), value, px=milliseconds, nx=True)
            replies = pipeline.execute()
            return [key for key, reply in zip(fitting, replies, strict=True) if reply]

        return self.conditional_write("add_many", items, timeout, add)

    def get_many_claiming(
        self, keys: Sequence[str], lease: bytes, timeout: float | None
    ) -> tuple[dict[str, bytes], list[str]]:
        """``get_many``, and ``lease`` put on every key found empty, in one script (one
        round trip): a cold read-through then costs two round trips (this, and the fill)
        instead of three. On a cluster (a script's keys must share a slot) it is MGET
        followed by ``add_many`` of the empty keys."""
        if not keys:
            return {}, []
        lifetime = self.resolve_timeout(timeout)
        if self.cluster or lifetime is None or lifetime <= 0:
            hits = self.get_many(keys)
            empty = [key for key in keys if key not in hits]
            return hits, self.add_many(dict.fromkeys(empty, lease), timeout) if empty else []
        if not isinstance(lease, bytes):
            raise TypeError(f"a lease must be bytes, not {type(lease).__name__}")
        mapping = self.server_keys(keys)
        server_keys = list(mapping)
        with self.translate_errors("get_many_claiming"):
            values = cast(
                "list[bytes | None]",
                self._run_script(
                    GET_MANY_CLAIMING_SCRIPT, server_keys, [lease, self._milliseconds(lifetime)]
                ),
            )
        found: dict[str, bytes] = {}
        won: list[str] = []
        for server_key, value in zip(server_keys, values, strict=True):
            if value is None:
                won.append(mapping[server_key])
            else:
                found[mapping[server_key]] = value
        return found, won

    def fill_many(
        self, lease: bytes, items: Mapping[str, bytes], timeout: float | None = None
    ) -> list[str]:
        """Store each item whose key holds exactly ``lease``: one script, the lease sent
        once (on a cluster, ``compare_and_set_many``)."""
        if self.cluster:
            return self.compare_and_set_many({k: (lease, v) for k, v in items.items()}, timeout)
        return self._fill_over(lease, items, timeout, quietly=False)

    def fill_many_quietly(
        self, lease: bytes, items: Mapping[str, bytes], timeout: float | None = None
    ) -> None:
        """:meth:`fill_many` sent behind ``CLIENT REPLY SKIP``: the server runs the same
        script, in order on the connection, and answers nothing, so a cold read does not
        wait a round trip for its write-back. On a cluster, :meth:`fill_many`."""
        if self.cluster:
            self.fill_many(lease, items, timeout)
        else:
            self._fill_over(lease, items, timeout, quietly=True)

    def _fill_over(
        self, lease: bytes, items: Mapping[str, bytes], timeout: float | None, quietly: bool
    ) -> list[str]:
        """The fill script over ``lease`` on one server: answered (the keys stored), or
        sent without its answer (nothing known: an empty list)."""
        if not isinstance(lease, bytes):
            raise TypeError(f"a lease must be bytes, not {type(lease).__name__}")

        def fill(fitting: dict[str, bytes], lifetime: float | None) -> list[str]:
            keys = list(fitting)
            server_keys = [self.server_key(key) for key in keys]
            args = [_expiry(self._milliseconds(lifetime)), lease, *fitting.values()]
            if quietly:
                command = ("EVAL", FILL_MANY_SCRIPT, len(keys), *server_keys, *args)
                self._send_without_reply(command)
                return []
            won = self._run_script(FILL_MANY_SCRIPT, server_keys, args)
            return [keys[position - 1] for position in won]

        operation = "fill_many_quietly" if quietly else "fill_many"
        return self.conditional_write(operation, items, timeout, fill)

    def _send_without_reply(self, command: tuple[Any, ...]) -> None:
        """Send ``command`` on a pooled connection with its reply (and any error) skipped.

        Nothing is left to read on the connection afterwards, so it goes back to the
        pool as clean as after an answered command. A connection that fails while
        sending is dropped, as redis-py drops it.
        """
        pool = cast(redis.Redis, self.client).connection_pool
        connection = pool.get_connection()
        try:
            connection.send_packed_command(
                connection.pack_commands([("CLIENT", "REPLY", "SKIP"), command])
            )
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

    def _run_script(self, script: str, keys: list[str], args: list[Any]) -> list[int]:
        """EVAL of one of our batch scripts: one command for the whole batch.

        redis-py then packs one command instead of one per key, which is most of what a
        pipeline of 100 small commands costs the client. EVAL (not EVALSHA) keeps it one
        round trip always; the server caches the compiled script by its text.
        """
        client = cast(redis.Redis, self.client)
        return client.eval(script, len(keys), *keys, *args)  # type: ignore[no-any-return]

    def compare_and_set_many(
        self, items: Mapping[str, tuple[bytes, bytes]], timeout: float | None = None
    ) -> list[str]:
        """One Lua script (GET, compare, SET per key) for the batch; on a cluster one small
        script per item, in one pipeline per master.

        A script runs atomically on the server, so nothing can write a key between its
        comparison and its SET.
        """

        def swap(fitting: dict[str, tuple[bytes, bytes]], lifetime: float | None) -> list[str]:
            milliseconds = self._milliseconds(lifetime)
            expiry = _expiry(milliseconds)
            if not self.cluster:
                keys = list(fitting)
                pairs = [value for pair in fitting.values() for value in pair]
                won = self._run_script(
                    COMPARE_AND_SET_MANY_SCRIPT,
                    [self.server_key(key) for key in keys],
                    [expiry, *pairs],
                )
                return [keys[position - 1] for position in won]
            calls = {self.server_key(key): key for key in fitting}
            stored: list[str] = []
            for node_client, server_keys in self._clients_for(list(calls)).items():
                pipeline = node_client.pipeline(transaction=False)
                for server_key in server_keys:
                    expected, new = fitting[calls[server_key]]
                    pipeline.eval(COMPARE_AND_SET_SCRIPT, 1, server_key, expected, new, expiry)
                replies = pipeline.execute()
                stored += [
                    calls[server_key]
                    for server_key, reply in zip(server_keys, replies, strict=True)
                    if reply == 1
                ]
            return stored

        return self.conditional_write("compare_and_set_many", items, timeout, swap, swaps=True)

    @staticmethod
    def _milliseconds(lifetime: float | None) -> int | None:
        # Redis counts milliseconds; round up so a short lifetime never becomes zero.
        return None if lifetime is None else max(1, math.ceil(lifetime * 1000))

    def _clients_for(self, server_keys: list[str]) -> dict[Any, list[str]]:
        """Group keys by the client of the server holding them (one server: one group).

        redis-py's cluster pipeline refuses EVAL, so on a cluster each master's keys
        go through that master's own client; a key that moved meanwhile fails the call
        (MOVED), which the core treats like any outage of that one call.
        """
        client = self.client
        if not isinstance(client, RedisCluster):
            return {client: server_keys}
        groups: dict[str, tuple[Any, list[str]]] = {}
        for server_key in server_keys:
            node = client.get_node_from_key(server_key)
            groups.setdefault(node.name, (client.get_redis_connection(node), []))[1].append(
                server_key
            )
        return dict(groups.values())

    def delete_many(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        server_keys = list(self.server_keys(keys))
        with self.translate_errors("delete_many"):
            # On a cluster redis-py sends one UNLINK per slot, pipelined per node.
            self.client.unlink(*server_keys)

    def clear(self) -> None:
        """UNLINK every ``<prefix>:*`` key on every master, found with SCAN (no FLUSHDB)."""
        pattern = f"{glob_escape(self.key_prefix)}:*"
        with self.translate_errors("clear"):
            for node_client in self._scan_targets():
                batch: list[bytes] = []
                for server_key in node_client.scan_iter(match=pattern, count=self.clear_batch_size):
                    batch.append(server_key)
                    if len(batch) >= self.clear_batch_size:
                        self.client.unlink(*batch)
                        batch = []
                if batch:
                    self.client.unlink(*batch)

    def _scan_targets(self) -> list[redis.Redis]:
        """One client per server holding keys: the server itself, or each cluster master."""
        client = self.client
        if isinstance(client, RedisCluster):
            return [client.get_redis_connection(node) for node in client.get_primaries()]
        return [client]

    def close(self) -> None:
        """Close pooled connections; the next call reconnects (and rediscovers a cluster)."""
        with self._lock:
            client = self._client
            if self.cluster:
                self._client = None
        if client is None:
            return
        if isinstance(client, RedisCluster):
            client.close()
        else:
            client.connection_pool.disconnect()
