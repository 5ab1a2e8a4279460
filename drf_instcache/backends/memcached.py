"""Memcached adapter: one server or several (rendezvous-hashed), through pymemcache.

Install ``pip install 'drf-instcache[memcached]'``. Its options, the expiry rule, how
``clear`` finds this prefix's keys and how leases map onto ``add``/``cas`` are described
in docs/backends-memcached.md.
"""

from __future__ import annotations

import functools
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import methodcaller
from typing import Any, ClassVar, TypeVar

from pymemcache.client.base import Client, PooledClient
from pymemcache.client.hash import HashClient
from pymemcache.exceptions import (
    MemcacheError,
    MemcacheServerError,
    MemcacheUnexpectedCloseError,
)

from drf_instcache.backends.base import BaseBackend
from drf_instcache.backends.keys import MAX_KEY_LENGTH
from drf_instcache.backends.memcached_servers import (
    Node,
    dump_keys,
    is_too_large,
    memcached_expire,
    parse_servers,
)
from drf_instcache.exceptions import BackendUnavailable, ValueTooLarge

T = TypeVar("T")

DEFAULT_SOCKET_TIMEOUT = 0.5
DEFAULT_SOCKET_CONNECT_TIMEOUT = 0.5
DEFAULT_DEAD_RETRY = 1.0
DEFAULT_CLEAR_BATCH_SIZE = 1000

ITEM_OVERHEAD = 64
"""Bytes an item needs besides its key and value: memcached 1.6 uses 59 (header, CAS,
terminators), measured against the real server; rounded up for safety."""

ROUTE_CACHE_SIZE = 1 << 15
"""Keys whose server is remembered (a few MB at most) when there are several servers."""

CLEAR_PASSES = 10
"""Dumps of one server per ``clear()``; each deletes what the previous ones missed."""

_OPTION_NAMES = frozenset(
    {
        "socket_timeout",
        "socket_connect_timeout",
        "dead_retry",
        "max_connections",
        "pool_idle_timeout",
        "no_delay",
        "max_value_size",
        "clear_batch_size",
        "socket_module",
        "tls_context",
    }
)

_STALE_CONNECTION_ERRORS = (
    MemcacheUnexpectedCloseError,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
)
"""A pooled connection the server closed (it restarted, or dropped idle clients)."""


def _on_connection(client: Client | PooledClient, request: Callable[[Client], T]) -> T:
    """Run ``request`` on a plain ``Client``: the pooled client's borrowed one, or itself.

    The conditional writes use pymemcache's pipelining helpers (``_store_cmd`` for a
    batch of ``add``, ``_misc_cmd`` for a batch of ``cas`` with a token each), which only
    the plain client has; its public ``add``/``cas`` send one request per key.
    """
    if isinstance(client, PooledClient):
        with client.client_pool.get_and_release(destroy_on_fail=True) as borrowed:
            return request(borrowed)
    return request(client)


class MemcachedBackend(BaseBackend):
    """Store instances in one memcached server, or shard them over several."""

    scheme = "memcached"
    option_names = _OPTION_NAMES
    unavailable_errors: ClassVar[tuple[type[BaseException], ...]] = (MemcacheError, OSError)

    def __init__(self, location: Any = None, **kwargs: Any) -> None:
        super().__init__(location, **kwargs)
        options = self.options
        self.socket_timeout = self.number_option("socket_timeout", DEFAULT_SOCKET_TIMEOUT)
        self.socket_connect_timeout = self.number_option(
            "socket_connect_timeout", DEFAULT_SOCKET_CONNECT_TIMEOUT
        )
        self.dead_retry = self.number_option("dead_retry", DEFAULT_DEAD_RETRY)
        self.clear_batch_size = self.number_option(
            "clear_batch_size", DEFAULT_CLEAR_BATCH_SIZE, minimum=1, integer=True
        )
        self._client_kwargs: dict[str, Any] = {
            "connect_timeout": self.socket_connect_timeout,
            "timeout": self.socket_timeout,
            "no_delay": bool(options.get("no_delay", True)),
            "socket_module": options.get("socket_module", socket),
            "tls_context": options.get("tls_context"),
            # Wait for every reply: a fire-and-forget write would hide failures.
            "default_noreply": False,
        }
        pool_kwargs = {
            "max_pool_size": self.number_option(
                "max_connections", None, minimum=1, allow_none=True, integer=True
            ),
            "pool_idle_timeout": self.number_option("pool_idle_timeout", 0),
        }

        servers = parse_servers(self.location)
        self.servers = [f"{host}:{port}" for host, port in servers]
        self._route: Callable[[str], str] | None = None
        if len(servers) == 1:
            clients = {
                self.servers[0]: PooledClient(servers[0], **self._client_kwargs, **pool_kwargs)
            }
        else:
            # HashClient builds one pool per server and the rendezvous hash; we route
            # each call's keys ourselves so a call costs one request per server (its
            # delete_many sends one request per key) and a dead server's keys fail
            # loudly instead of silently moving to another server.
            hash_client = HashClient(
                servers, use_pooling=True, ignore_exc=False, **self._client_kwargs, **pool_kwargs
            )
            clients = dict(hash_client.clients)
            # The rendezvous hash is pure Python (about 7 µs per key and server) and every
            # call routes all its keys, so recent answers are remembered.
            self._route = functools.lru_cache(maxsize=ROUTE_CACHE_SIZE)(hash_client.hasher.get_node)
        self._nodes = {
            name: Node(name=name, host=host, port=port, client=clients[name])
            for name, (host, port) in zip(self.servers, servers, strict=True)
        }

    def describe(self) -> str:
        return f"memcached {','.join(self.servers)} (prefix {self.key_prefix!r})"

    # -- routing ----------------------------------------------------------------------
    def server_for(self, key: str) -> str:
        """The ``host:port`` of the server that holds ``key`` (a caller's key)."""
        return self._node_for(self.server_key(key)).name

    def _node_for(self, server_key: str) -> Node:
        if self._route is None:
            return next(iter(self._nodes.values()))
        return self._nodes[self._route(server_key)]

    def _by_node(self, server_keys: Iterable[str]) -> dict[Node, list[str]]:
        if self._route is None:  # one server: one batch, no per-key routing
            return {next(iter(self._nodes.values())): list(server_keys)}
        batches: dict[Node, list[str]] = {}
        for server_key in server_keys:
            batches.setdefault(self._node_for(server_key), []).append(server_key)
        return batches

    # -- calling a server -------------------------------------------------------------
    def _call(self, node: Node, operation: str, request: Callable[[Any], T]) -> T:
        """Run ``request(client)`` against ``node``, translating failures.

        A connection the server had closed is retried once on a fresh connection, so a
        restarted server costs no failed request. A timeout starts a dead spell of
        ``dead_retry`` seconds during which calls fail at once, so an unreachable server
        costs one timeout per spell rather than one per call.
        ``SERVER_ERROR object too large`` is re-raised untouched for the caller.
        """
        now = time.monotonic()
        if node.down_until > now:
            raise BackendUnavailable(
                f"memcached {node.name} is considered down for {node.down_until - now:.1f}s "
                f"more after: {node.last_error}"
            )
        try:
            try:
                return request(node.client)
            except _STALE_CONNECTION_ERRORS:
                fresh = Client((node.host, node.port), **self._client_kwargs)
                try:
                    return request(fresh)
                finally:
                    fresh.close()
        except MemcacheServerError as error:
            if is_too_large(error):
                raise
            raise self._unavailable(node, operation, error) from error
        except RuntimeError as error:
            if "Too many objects" not in str(error):  # pymemcache's full pool
                raise
            raise self._unavailable(node, operation, error) from error
        except self.unavailable_errors as error:
            if isinstance(error, TimeoutError):
                node.down_until = time.monotonic() + self.dead_retry
            raise self._unavailable(node, operation, error) from error

    def _unavailable(self, node: Node, operation: str, error: BaseException) -> BackendUnavailable:
        detail = f"{type(error).__name__}: {error}"
        node.last_error = detail
        return BackendUnavailable(
            f"MemcachedBackend {operation} failed on {node.name} "
            f"(prefix {self.key_prefix!r}): {detail}"
        )

    @staticmethod
    def _raise_first(errors: Sequence[BackendUnavailable]) -> None:
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise BackendUnavailable("; ".join(str(error) for error in errors)) from errors[0]

    # -- item size limit --------------------------------------------------------------
    @property
    def max_value_size(self) -> int | None:
        """The explicit limit, else the one learned from the servers (None until known)."""
        if self._max_value_size is not None:
            return self._max_value_size
        known = [node.item_size_max for node in self._nodes.values() if node.item_size_max]
        if not known:
            return None
        return min(known) - MAX_KEY_LENGTH - ITEM_OVERHEAD

    def _learn_item_limits(self) -> None:
        """Read ``item_size_max`` from every server not asked yet (once per server).

        Done on a backend's first call of any kind, so later calls cost exactly one
        request per server. A server that does not answer is asked again next time.
        """
        if self._max_value_size is not None:
            return
        for node in self._nodes.values():
            if node.item_size_max is not None:
                continue
            try:
                stats = self._call(node, "stats settings", methodcaller("stats", "settings"))
            except BackendUnavailable:
                continue
            size = stats.get(b"item_size_max")
            if isinstance(size, int) and size > 0:
                node.item_size_max = size

    # -- protocol ---------------------------------------------------------------------
    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        mapping = self.server_keys(keys)
        self._learn_item_limits()
        found: dict[str, bytes] = {}
        for node, batch in self._by_node(mapping).items():
            values = self._call(node, "get_many", methodcaller("get_many", batch))
            found.update({mapping[server_key]: value for server_key, value in values.items()})
        return found

    def set_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> None:
        if items:
            self._learn_item_limits()  # before the values are measured against the limit
        self.store(items, timeout, self._write)

    def _write(self, fitting: dict[str, bytes], lifetime: float | None) -> ValueTooLarge | None:
        """One ``set_many`` per server; the values a server refused as too large."""
        expire = memcached_expire(lifetime, time.time())
        payload = {self.server_key(key): bytes(value) for key, value in fitting.items()}
        caller_keys = {self.server_key(key): key for key in fitting}
        refused: list[str] = []
        errors: list[BackendUnavailable] = []
        for node, batch_keys in self._by_node(payload).items():
            batch = {server_key: payload[server_key] for server_key in batch_keys}
            try:
                refused += self._store(node, batch, expire)
            except BackendUnavailable as error:
                errors.append(error)
        self._raise_first(errors)
        if not refused:
            return None
        sizes = [len(payload[key]) for key in refused]
        return ValueTooLarge(
            [caller_keys[key] for key in refused], self.max_value_size or min(sizes) - 1, sizes
        )

    def _store(self, node: Node, batch: dict[str, bytes], expire: int) -> list[str]:
        """Store ``batch`` on ``node`` in one request; return the keys refused as too large."""
        try:
            not_stored = self._call(node, "set_many", methodcaller("set_many", batch, expire))
        except MemcacheServerError:
            # The reply stream stopped at the refusal, so which items were stored is
            # unknown: store them one by one to find the refused ones (a rare path).
            return self._store_one_by_one(node, batch, expire)
        if not_stored:
            raise self._unavailable(
                node, "set_many", MemcacheServerError(f"{len(not_stored)} item(s) NOT_STORED")
            )
        return []

    def _store_one_by_one(self, node: Node, batch: dict[str, bytes], expire: int) -> list[str]:
        refused = []
        for server_key, value in batch.items():
            try:
                self._call(node, "set", methodcaller("set", server_key, value, expire))
            except MemcacheServerError:
                refused.append(server_key)
        return refused

    # -- conditional writes (leases) ---------------------------------------------------
    def add_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> list[str]:
        """Memcached's ``add`` for every item: one pipelined request per server."""
        if not items:
            return []
        return self._conditional(items, timeout, "add_many", self._add_batch)

    def compare_and_set_many(
        self, items: Mapping[str, tuple[bytes, bytes]], timeout: float | None = None
    ) -> list[str]:
        """``gets`` the keys, then a pipelined ``cas`` of those holding ``expected``.

        Memcached compares its cas token, which changes on every write: a key written
        between the ``gets`` and the ``cas`` (even with the same bytes) is not stored.
        Two requests per server.
        """
        if not items:
            return []
        for key, pair in items.items():
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise TypeError(
                    f"compare_and_set_many takes (expected, new) pairs, not {pair!r} (key {key!r})"
                )
        expected = {key: pair[0] for key, pair in items.items()}
        self.split_oversized(expected)  # checks that they are bytes
        return self._conditional(
            {key: new for key, (_, new) in items.items()},
            timeout,
            "compare_and_set_many",
            lambda node, batch, expire: self._swap_batch(node, batch, expire, expected),
        )

    def _conditional(
        self,
        items: Mapping[str, bytes],
        timeout: float | None,
        operation: str,
        write: Callable[[Node, dict[str, tuple[str, bytes]], int], list[str]],
    ) -> list[str]:
        """Split by server, run ``write`` per server, gather stored keys and size refusals."""
        lifetime = self.resolve_timeout(timeout)
        self._learn_item_limits()
        fitting, too_large = self.split_oversized(items)
        stored: list[str] = []
        refused: list[str] = []
        if fitting and (lifetime is None or lifetime > 0):
            expire = memcached_expire(lifetime, time.time())
            by_server_key = {
                self.server_key(key): (key, bytes(value)) for key, value in fitting.items()
            }
            errors: list[BackendUnavailable] = []
            for node, batch_keys in self._by_node(by_server_key).items():
                batch = {server_key: by_server_key[server_key] for server_key in batch_keys}
                try:
                    stored += write(node, batch, expire)
                except MemcacheServerError:
                    # Refused for its size mid-pipeline (a limit smaller than learned):
                    # the remaining replies are lost, so find out key by key.
                    done, too_big = self._conditional_one_by_one(node, batch, expire, write)
                    stored += done
                    refused += too_big
                except BackendUnavailable as error:
                    errors.append(error)
            self._raise_first(errors)
        if refused:
            keys = (too_large.keys if too_large else []) + refused
            sizes = (too_large.sizes if too_large else []) + [len(items[k]) for k in refused]
            raise ValueTooLarge(keys, self.max_value_size or min(sizes) - 1, sizes)
        if too_large:
            raise too_large
        return stored

    def _conditional_one_by_one(
        self,
        node: Node,
        batch: dict[str, tuple[str, bytes]],
        expire: int,
        write: Callable[[Node, dict[str, tuple[str, bytes]], int], list[str]],
    ) -> tuple[list[str], list[str]]:
        stored: list[str] = []
        refused: list[str] = []
        for server_key, entry in batch.items():
            try:
                stored += write(node, {server_key: entry}, expire)
            except MemcacheServerError:
                refused.append(entry[0])
        return stored, refused

    def _add_batch(self, node: Node, batch: dict[str, tuple[str, bytes]], expire: int) -> list[str]:
        """One pipelined request of ``add`` commands; returns the caller keys stored."""
        values = {server_key: value for server_key, (_, value) in batch.items()}
        replies = self._call(
            node,
            "add_many",
            lambda client: _on_connection(
                client, lambda base: base._store_cmd(b"add", values, expire, False)
            ),
        )
        return [batch[server_key][0] for server_key, ok in replies.items() if ok]

    def _swap_batch(
        self,
        node: Node,
        batch: dict[str, tuple[str, bytes]],
        expire: int,
        expected: Mapping[str, bytes],
    ) -> list[str]:
        """``gets`` then one pipelined request of ``cas`` for the keys that match."""
        tokens = self._call(node, "gets", methodcaller("gets_many", list(batch)))
        commands: list[bytes] = []
        candidates: list[str] = []
        for server_key, (key, new) in batch.items():
            value, token = tokens.get(server_key, (None, None))
            if token is None or value != expected[key]:
                continue
            header = b"cas %s 0 %d %d %s\r\n" % (
                server_key.encode("ascii"),
                expire,
                len(new),
                token,
            )
            commands.append(header + new + b"\r\n")
            candidates.append(key)
        if not commands:
            return []
        replies = self._call(
            node,
            "cas",
            lambda client: _on_connection(
                client, lambda base: base._misc_cmd(commands, b"cas", False)
            ),
        )
        return [key for key, reply in zip(candidates, replies, strict=True) if reply == b"STORED"]

    def delete_many(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        mapping = self.server_keys(keys)
        self._learn_item_limits()
        errors: list[BackendUnavailable] = []
        for node, batch in self._by_node(mapping).items():
            try:
                self._call(node, "delete_many", methodcaller("delete_many", batch))
            except BackendUnavailable as error:
                errors.append(error)
        self._raise_first(errors)

    def clear(self) -> None:
        """Delete this prefix's keys on every server, found with ``lru_crawler metadump``.

        A dump is a live walk of the LRUs, not a snapshot: entries that were read recently
        are moved between LRU segments by the server while it walks, and some are missed.
        So each server is dumped again after its deletes, until a dump finds none of our
        keys (at most :data:`CLEAR_PASSES` dumps; more than that means another process is
        writing to the namespace while it is cleared, and the call fails).
        """
        head = f"{self.key_prefix}:".encode("ascii")
        errors: list[BackendUnavailable] = []
        for node in self._nodes.values():
            try:
                self._clear_node(node, head)
            except BackendUnavailable as error:
                errors.append(error)
        self._raise_first(errors)

    def _clear_node(self, node: Node, head: bytes) -> None:
        for _ in range(CLEAR_PASSES):
            keys = self._call(
                node,
                "clear",
                lambda _client, n=node: dump_keys(  # type: ignore[misc]
                    n, head, self.socket_connect_timeout, self.socket_timeout
                ),
            )
            if not keys:
                return
            for start in range(0, len(keys), self.clear_batch_size):
                batch = keys[start : start + self.clear_batch_size]
                self._call(node, "clear", methodcaller("delete_many", batch))
        raise BackendUnavailable(
            f"memcached {node.name}: keys of prefix {self.key_prefix!r} were still found "
            f"after {CLEAR_PASSES} dumps; is another process writing while it is cleared?"
        )

    def close(self) -> None:
        for node in self._nodes.values():
            node.client.close()
