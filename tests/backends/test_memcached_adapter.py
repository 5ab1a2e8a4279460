"""Memcached-specific behaviour beyond the conformance suite, against real servers.

Covers what only memcached has: URL configuration of several servers, the 30-day rule
for expiry times, the item size limit measured against the server, key placement
shared with pymemcache's HashClient, one dead server out of three, restarts behind a
connection pool, and ``clear`` by ``lru_crawler metadump``.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient

from drf_instcache.backends.memcached import ITEM_OVERHEAD, MemcachedBackend
from drf_instcache.backends.memcached_servers import RELATIVE_EXPIRY_LIMIT
from drf_instcache.exceptions import BackendUnavailable, ImproperlyConfigured, ValueTooLarge
from drf_instcache.keys import MAX_KEY_LENGTH
from drf_instcache.settings import build_backend
from drf_instcache.testing.memcached_server import MemcachedServer
from drf_instcache.testing.ports import free_port
from tests.servers import require_binary

DAY = 24 * 3600


def _prefix() -> str:
    return f"m{uuid.uuid4().hex[:12]}"


def _raw_client(server: MemcachedServer) -> Client:
    return Client((server.host, server.port), default_noreply=False, timeout=2)


def _ttl(server: MemcachedServer, server_key: str) -> int | None:
    """Seconds left before ``server_key`` expires on ``server`` (-1: never; None: absent)."""
    reply = _raw_client(server).raw_command(f"mg {server_key} t")
    if reply == b"EN":
        return None
    return int(reply.split(b" t", 1)[1])


@pytest.fixture
def single(memcached_server: MemcachedServer) -> Iterator[MemcachedBackend]:
    """A backend on the session's single server, in a namespace of its own."""
    memcached_server.start()
    backend = MemcachedBackend(memcached_server.address, key_prefix=_prefix())
    yield backend
    backend.clear()
    backend.close()


# -- configuration --------------------------------------------------------------------
def test_url_with_several_servers_builds_a_sharded_backend(memcached_servers_3):
    first, second, _ = memcached_servers_3
    prefix = _prefix()
    backend = build_backend(
        f"memcached://{first.address},{second.address}"
        f"?socket_timeout=0.25&socket_connect_timeout=0.1&dead_retry=2&prefix={prefix}&timeout=60"
    )
    try:
        assert isinstance(backend, MemcachedBackend)
        assert backend.servers == [first.address, second.address]
        assert (backend.socket_timeout, backend.socket_connect_timeout) == (0.25, 0.1)
        assert backend.dead_retry == 2
        assert (backend.key_prefix, backend.default_timeout) == (prefix, 60)

        items = {f"k{i}": str(i).encode() for i in range(50)}
        backend.set_many(items)
        assert backend.get_many(list(items)) == items
        on_first = _raw_client(first).get_many([f"{prefix}:{key}" for key in items])
        on_second = _raw_client(second).get_many([f"{prefix}:{key}" for key in items])
        assert on_first and on_second, "both servers hold part of the keys"
        assert len(on_first) + len(on_second) == len(items)
        # The default lifetime from the URL reached the server.
        assert 55 <= _ttl(first, next(iter(on_first))) <= 60
    finally:
        backend.clear()
        backend.close()


def test_url_with_one_server_and_default_port():
    backend = build_backend("memcached://cache.internal")
    assert backend.servers == ["cache.internal:11211"]


@pytest.mark.parametrize(
    ("location", "options", "message"),
    [
        ("127.0.0.1:11211", {"no_such_option": 1}, "no_such_option"),
        ("127.0.0.1:11211", {"socket_timeout": "fast"}, "socket_timeout"),
        ("127.0.0.1:11211", {"max_connections": 0}, "max_connections"),
        ("127.0.0.1:notaport", {}, "notaport"),
        ("/var/run/memcached.sock", {}, "memcached.sock"),
        (["127.0.0.1:1", "127.0.0.1:1"], {}, "repeats"),
        ([], {}, "LOCATION"),
    ],
)
def test_bad_configuration_is_refused_up_front(location, options, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        MemcachedBackend(location, options=options)


# -- expiry ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lifetime", "expected"),
    [
        (59.2, 60),  # rounded up to whole seconds
        (RELATIVE_EXPIRY_LIMIT, RELATIVE_EXPIRY_LIMIT),  # the last relative value
        (RELATIVE_EXPIRY_LIMIT + 1, RELATIVE_EXPIRY_LIMIT + 1),  # sent as a timestamp
        (400 * DAY, 400 * DAY),
    ],
    ids=["fraction", "thirty-days", "thirty-days-and-a-second", "four-hundred-days"],
)
def test_long_lifetimes_are_stored_with_the_right_expiry(
    single, memcached_server, lifetime, expected
):
    backend = single
    backend.set_many({"k": b"v"}, timeout=lifetime)
    assert backend.get_many(["k"]) == {"k": b"v"}, "a long lifetime must not expire at once"
    ttl = _ttl(memcached_server, backend.server_key("k"))
    # memcached's clock ticks once a second, so a TTL derived from an absolute expiry
    # time may read one second long.
    assert expected - 3 <= ttl <= expected + 1


def test_no_default_timeout_stores_without_expiry(memcached_server):
    backend = MemcachedBackend(memcached_server.address, key_prefix=_prefix(), timeout=None)
    try:
        backend.set_many({"k": b"v"})
        assert _ttl(memcached_server, backend.server_key("k")) == -1
    finally:
        backend.clear()


# -- item size limit ------------------------------------------------------------------
def test_learned_limit_fits_the_longest_key_and_refuses_one_byte_more(single, memcached_server):
    backend = single
    backend.get_many(["learn"])
    limit = backend.max_value_size
    assert limit == memcached_server.item_size_bytes - MAX_KEY_LENGTH - ITEM_OVERHEAD
    longest = "k" * (MAX_KEY_LENGTH - len(backend.key_prefix) - 1)
    assert len(backend.server_key(longest)) == MAX_KEY_LENGTH
    backend.set_many({longest: b"x" * limit})
    assert backend.get_many([longest]) == {longest: b"x" * limit}
    with pytest.raises(ValueTooLarge) as raised:
        backend.set_many({"short": b"x" * (limit + 1)})
    assert (raised.value.keys, raised.value.limit) == (["short"], limit)


def test_a_server_refusing_a_value_as_too_large_raises_value_too_large(memcached_server):
    # An explicit limit above the server's lets the value reach the server, which
    # refuses it; the adapter must name that key and still store the others.
    backend = MemcachedBackend(
        memcached_server.address,
        key_prefix=_prefix(),
        options={"max_value_size": 4 * memcached_server.item_size_bytes},
    )
    oversized = b"o" * (memcached_server.item_size_bytes + 1)
    try:
        backend.set_many({"huge": b"old value"})
        with pytest.raises(ValueTooLarge) as raised:
            backend.set_many({"a": b"1", "huge": oversized, "b": b"2"})
        assert raised.value.keys == ["huge"]
        # memcached drops the old value when it refuses a new one: no stale entry.
        assert backend.get_many(["a", "huge", "b"]) == {"a": b"1", "b": b"2"}
    finally:
        backend.clear()


# -- several servers ------------------------------------------------------------------
def test_keys_are_placed_as_pymemcache_hashclient_places_them(memcached_servers_3):
    addresses = [server.address for server in memcached_servers_3]
    backend = MemcachedBackend(addresses, key_prefix=_prefix())
    items = {f"item:{i}": f"value {i}".encode() for i in range(60)}
    try:
        backend.set_many(items)
        raw = {server.address: _raw_client(server) for server in memcached_servers_3}
        for key, value in items.items():
            server_key = backend.server_key(key)
            holders = [addr for addr, client in raw.items() if client.get(server_key) == value]
            assert holders == [backend.server_for(key)]
        hash_client = HashClient([(s.host, s.port) for s in memcached_servers_3])
        server_keys = [backend.server_key(key) for key in items]
        assert hash_client.get_many(server_keys) == {
            backend.server_key(key): value for key, value in items.items()
        }
    finally:
        backend.clear()


@pytest.fixture
def three_private_servers() -> Iterator[list[MemcachedServer]]:
    """Three servers this module may stop without disturbing the session's servers."""
    binary = require_binary("memcached")
    servers = [MemcachedServer(binary=binary, item_size="1m", memory_mb=16) for _ in range(3)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.mark.slow
def test_one_dead_server_of_three_fails_only_calls_that_need_it(three_private_servers):
    addresses = [server.address for server in three_private_servers]
    backend = MemcachedBackend(addresses, key_prefix=_prefix())
    items = {f"k{i}": f"v{i}".encode() for i in range(90)}
    backend.set_many(items)
    dead = three_private_servers[1]
    on_dead = [key for key in items if backend.server_for(key) == dead.address]
    elsewhere = [key for key in items if key not in on_dead]
    assert on_dead and elsewhere

    dead.stop()
    try:
        assert backend.get_many(elsewhere) == {key: items[key] for key in elsewhere}
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match=dead.address):
            backend.get_many(list(items))
        with pytest.raises(BackendUnavailable, match=dead.address):
            backend.set_many({key: b"new" for key in items})
        with pytest.raises(BackendUnavailable, match=dead.address):
            backend.delete_many(elsewhere[:10] + on_dead[:10])
        assert time.monotonic() - started < 3, "a dead server must be reported promptly"
        # The live servers applied their part of both writes.
        assert backend.get_many(elsewhere) == {key: b"new" for key in elsewhere[10:]}
    finally:
        dead.start()

    assert backend.get_many(on_dead) == {}, "a restarted memcached comes back empty"
    backend.set_many({key: b"back" for key in on_dead})
    assert backend.get_many(on_dead) == {key: b"back" for key in on_dead}


class HungServer:
    """Accepts connections and reads requests but never answers, like a hung memcached."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        self._listener.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def hung_server() -> Iterator[HungServer]:
    server = HungServer()
    yield server
    server.close()


def test_a_timed_out_server_is_not_contacted_again_during_its_dead_spell(hung_server):
    backend = MemcachedBackend(
        f"127.0.0.1:{hung_server.port}",
        options={"socket_timeout": 0.2, "dead_retry": 0.5, "max_value_size": 1000},
    )
    with pytest.raises(BackendUnavailable, match="TimeoutError"):
        backend.get_many(["k"])
    assert len(hung_server.connections) == 1
    with pytest.raises(BackendUnavailable, match="considered down"):
        backend.set_many({"k": b"v"})
    assert len(hung_server.connections) == 1, "no new connection during the dead spell"
    time.sleep(0.6)
    with pytest.raises(BackendUnavailable, match="TimeoutError"):
        backend.get_many(["k"])
    assert len(hung_server.connections) == 2, "tried again once the spell is over"


def test_a_refused_connection_starts_no_dead_spell():
    port = free_port()
    backend = MemcachedBackend(f"127.0.0.1:{port}", key_prefix=_prefix())
    with pytest.raises(BackendUnavailable, match="Connection refused"):
        backend.get_many(["k"])
    with MemcachedServer(port=port, binary=require_binary("memcached")):
        backend.set_many({"k": b"v"})  # used at once: refusals are cheap to retry
        assert backend.get_many(["k"]) == {"k": b"v"}


@pytest.mark.slow
def test_pooled_connections_survive_a_server_restart(memcached_server):
    from concurrent.futures import ThreadPoolExecutor

    backend = MemcachedBackend(memcached_server.address, key_prefix=_prefix())
    # Several threads at once leave several connections in the pool.
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: backend.set_many({f"k{n}": b"v"}), range(16)))
    memcached_server.stop()
    memcached_server.start()
    try:
        # Every call gets a stale pooled connection first; none may fail.
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda n: backend.get_many([f"k{n}"]), range(16)))
        assert results == [{}] * 16
        backend.set_many({"after": b"restart"})
        assert backend.get_many(["after"]) == {"after": b"restart"}
    finally:
        backend.clear()


# -- clear ----------------------------------------------------------------------------
def test_clear_deletes_only_this_prefix_across_servers_in_batches(memcached_servers_3):
    addresses = [server.address for server in memcached_servers_3]
    prefix = _prefix()
    mine = MemcachedBackend(addresses, key_prefix=prefix, options={"clear_batch_size": 300})
    longer = MemcachedBackend(addresses, key_prefix=prefix + "x")
    items = {f"k{i}": b"v" for i in range(2000)}
    mine.set_many(items)
    longer.set_many({"k1": b"neighbour"})
    foreign = _raw_client(memcached_servers_3[0])
    foreign.set(f"{prefix}-not-ours", b"other app", noreply=False)
    try:
        mine.clear()
        assert mine.get_many(list(items)) == {}
        assert longer.get_many(["k1"]) == {"k1": b"neighbour"}
        assert foreign.get(f"{prefix}-not-ours") == b"other app"
    finally:
        longer.clear()
        foreign.delete(f"{prefix}-not-ours")


def test_clear_walks_the_lrus_on_servers_without_hash_dumps(memcached_servers_3):
    # memcached before 1.6.10 only knows "metadump all"; clear then repeats its dumps.
    backend = MemcachedBackend(
        [server.address for server in memcached_servers_3], key_prefix=_prefix()
    )
    for node in backend._nodes.values():
        node.dump_mode = b"all"
    items = {f"k{i}": b"v" for i in range(300)}
    backend.set_many(items)
    backend.clear()
    assert backend.get_many(list(items)) == {}
    assert {node.dump_mode for node in backend._nodes.values()} == {b"all"}


def test_clear_finds_which_dump_the_server_knows(memcached_server):
    backend = MemcachedBackend(memcached_server.address, key_prefix=_prefix())
    backend.set_many({"k": b"v"})
    backend.clear()
    assert backend.get_many(["k"]) == {}
    assert next(iter(backend._nodes.values())).dump_mode == b"hash"  # memcached >= 1.6.10
