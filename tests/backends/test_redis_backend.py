"""RedisBackend behaviour beyond the conformance suite: configuration, cluster, limits.

The conformance suite proves the protocol on one server and on a cluster; these tests
cover what is specific to Redis: how URLs and options reach redis-py, that a cluster
call really spans every master, that ``clear`` reaches every master and nothing else,
how lifetimes are stored, and how a hung or unreachable server is reported.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from drf_instcache.backends.redis import RedisBackend, cluster_startup_nodes
from drf_instcache.exceptions import BackendUnavailable, ImproperlyConfigured
from drf_instcache.settings import build_backend
from drf_instcache.testing.ports import free_port
from drf_instcache.testing.redis_server import RedisClusterServers, RedisServer
from tests.servers import require_binary


def raw_client(server: RedisServer, db: int = 0) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=server.port, db=db)


def master_clients(cluster: RedisClusterServers) -> list[redis.Redis]:
    return [redis.Redis(host="127.0.0.1", port=port) for port in cluster.ports]


def keys_on(client: redis.Redis, pattern: str) -> list[bytes]:
    return list(client.scan_iter(match=pattern, count=1000))


@pytest.fixture
def cleanup() -> Iterator[list[RedisBackend]]:
    """Backends to clear and close after the test, whatever its outcome."""
    backends: list[RedisBackend] = []
    yield backends
    for backend in backends:
        try:
            backend.clear()
        finally:
            backend.close()


# -- configuration ---------------------------------------------------------------------
def test_url_selects_database_prefix_and_options(redis_server, cleanup):
    url = f"redis://127.0.0.1:{redis_server.port}/3?prefix=urltest&socket_timeout=0.25"
    backend = build_backend(url)
    cleanup.append(backend)
    assert isinstance(backend, RedisBackend)
    assert backend.socket_timeout == 0.25
    assert not backend.cluster

    backend.set_many({"k": b"v"})

    assert raw_client(redis_server, db=3).get("urltest:k") == b"v"
    assert raw_client(redis_server, db=0).get("urltest:k") is None


def test_cluster_url_builds_a_cluster_backend(redis_cluster_servers, cleanup):
    backend = build_backend(redis_cluster_servers.url + "?prefix=clusterurl")
    cleanup.append(backend)
    assert isinstance(backend, RedisBackend)
    assert backend.cluster
    backend.set_many({"k": b"v"})
    assert backend.get_many(["k"]) == {"k": b"v"}
    assert isinstance(backend.client, RedisCluster)


def test_password_in_url_is_used_and_never_shown():
    require_binary("redis-server")
    with RedisServer(extra_args=["--requirepass", "s3cret-pw"]) as server:
        good = RedisBackend(f"redis://:s3cret-pw@127.0.0.1:{server.port}/0")
        bad = RedisBackend(f"redis://:wrong-pw@127.0.0.1:{server.port}/0")
        try:
            good.set_many({"k": b"v"})
            assert good.get_many(["k"]) == {"k": b"v"}
            with pytest.raises(BackendUnavailable) as raised:
                bad.get_many(["k"])
            for text in (str(raised.value), repr(bad), repr(good)):
                assert "s3cret-pw" not in text
                assert "wrong-pw" not in text
        finally:
            good.close()
            bad.close()


def test_client_options_reach_redis_py(redis_server, cleanup):
    backend = RedisBackend(
        redis_server.url,
        key_prefix="clientopts",
        options={"client_options": {"client_name": "instcache-probe"}},
    )
    cleanup.append(backend)
    backend.get_many(["k"])
    names = [client["name"] for client in raw_client(redis_server).client_list()]
    assert "instcache-probe" in names


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sokcet_timeout": 1}, "sokcet_timeout"),
        ({"socket_timeout": "fast"}, "socket_timeout"),
        ({"socket_timeout": -1}, "socket_timeout"),
        ({"socket_connect_timeout": 0}, "socket_connect_timeout"),
        ({"socket_timeout": None}, "socket_timeout"),
        ({"retries": 1.5}, "retries"),
        ({"max_connections": 0}, "max_connections"),
        ({"clear_batch_size": 0}, "clear_batch_size"),
        ({"client_options": "ssl"}, "client_options"),
    ],
)
def test_bad_options_are_refused_at_construction(options, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        RedisBackend("redis://127.0.0.1:1/0", options=options)


def test_bad_locations_are_refused_at_construction():
    with pytest.raises(ImproperlyConfigured, match="cluster"):
        RedisBackend(["127.0.0.1:7000", "127.0.0.1:7001"])
    with pytest.raises(ImproperlyConfigured, match="port"):
        RedisBackend(["127.0.0.1:notaport"], options={"cluster": True})
    with pytest.raises(ImproperlyConfigured):
        build_backend("redis://127.0.0.1:6379/0?unknown_option=1")


def test_cluster_locations_accept_lists_urls_and_credentials():
    nodes, credentials = cluster_startup_nodes("redis+cluster://app:pw%40x@h1:7000,h2:7001,h3")
    assert [(node.host, node.port) for node in nodes] == [("h1", 7000), ("h2", 7001), ("h3", 6379)]
    assert credentials == {"username": "app", "password": "pw@x"}
    nodes, credentials = cluster_startup_nodes(["10.0.0.1:7000", "redis://10.0.0.2:7001"])
    assert nodes == [ClusterNode("10.0.0.1", 7000), ClusterNode("10.0.0.2", 7001)]
    assert credentials == {}


# -- cluster -----------------------------------------------------------------------------
def test_one_call_spans_every_master_of_the_cluster(redis_cluster_servers, redis_wire_spy, cleanup):
    spy = redis_wire_spy(redis_cluster_servers.ports)
    backend = RedisBackend(
        redis_cluster_servers.nodes, key_prefix="spread", options={"cluster": True}
    )
    cleanup.append(backend)
    backend.get_many(["discover"])
    items = {f"item-{i}": f"value-{i}".encode() for i in range(300)}

    sent = spy.counter()
    backend.set_many(items)
    assert sent() == 3  # one pipeline per master, whatever the number of slots
    sent = spy.counter()
    assert backend.get_many(list(items)) == items
    assert sent() == 3

    per_master = [
        len(keys_on(client, "spread:*")) for client in master_clients(redis_cluster_servers)
    ]
    assert all(count > 0 for count in per_master), per_master
    assert sum(per_master) == len(items)


def test_clear_reaches_every_master_and_only_our_prefix(redis_cluster_servers, cleanup):
    options = {"cluster": True, "clear_batch_size": 7}  # several SCAN/UNLINK batches
    mine = RedisBackend(redis_cluster_servers.nodes, key_prefix="mine", options=options)
    near = RedisBackend(redis_cluster_servers.nodes, key_prefix="mine2", options=options)
    cleanup.extend([mine, near])
    mine.set_many({f"k{i}": b"m" for i in range(200)})
    near.set_many({f"k{i}": b"n" for i in range(50)})
    foreign = RedisCluster(
        startup_nodes=[ClusterNode("127.0.0.1", port) for port in redis_cluster_servers.ports]
    )
    try:
        foreign.mset_nonatomic({f"other-app:{i}": b"x" for i in range(30)})

        mine.clear()

        masters = master_clients(redis_cluster_servers)
        assert [keys_on(client, "mine:*") for client in masters] == [[], [], []]
        assert sum(len(keys_on(client, "mine2:*")) for client in masters) == 50
        assert sum(len(keys_on(client, "other-app:*")) for client in masters) == 30
    finally:
        foreign.delete(*[f"other-app:{i}" for i in range(30)])
        foreign.close()


def test_cluster_backend_builds_without_the_cluster_and_reports_it_unavailable():
    nodes = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    backend = RedisBackend(nodes, options={"cluster": True})  # start-up must not fail
    with pytest.raises(BackendUnavailable):
        backend.get_many(["k"])
    with pytest.raises(BackendUnavailable):
        backend.set_many({"k": b"v"})


# -- single node -----------------------------------------------------------------------
def test_clear_scans_in_batches_and_spares_foreign_keys(redis_server, cleanup):
    backend = RedisBackend(redis_server.url, key_prefix="batch", options={"clear_batch_size": 10})
    cleanup.append(backend)
    backend.set_many({f"k{i}": b"v" for i in range(95)})
    raw = raw_client(redis_server)
    raw.set("unprefixed-foreign-key", b"keep")
    raw.set("batchx:1", b"keep")
    try:
        backend.clear()
        assert keys_on(raw, "batch:*") == []
        assert raw.get("unprefixed-foreign-key") == b"keep"
        assert raw.get("batchx:1") == b"keep"
    finally:
        raw.delete("unprefixed-foreign-key", "batchx:1")


def test_lifetimes_are_stored_in_milliseconds(redis_server, cleanup):
    backend = RedisBackend(redis_server.url, key_prefix="ttl", timeout=None)
    cleanup.append(backend)
    raw = raw_client(redis_server)

    backend.set_many({"short": b"v"}, timeout=1.5)
    assert 1000 < raw.pttl("ttl:short") <= 1500

    backend.set_many({"forever": b"v"})  # default None: no expiry at all
    assert raw.pttl("ttl:forever") == -1

    backend.set_many({"short": b"v2"})  # rewriting without expiry drops the old TTL
    assert raw.pttl("ttl:short") == -1


def test_hung_server_is_reported_as_unavailable_then_recovers():
    require_binary("redis-server")
    with RedisServer() as server:
        backend = RedisBackend(server.url, options={"socket_timeout": 0.2})
        try:
            backend.set_many({"k": b"v"})
            os.kill(server.pid, signal.SIGSTOP)  # accepts TCP in the kernel, never answers
            try:
                with pytest.raises(BackendUnavailable, match=r"(?i)timeout"):
                    backend.get_many(["k"])
            finally:
                os.kill(server.pid, signal.SIGCONT)
            assert backend.get_many(["k"]) == {"k": b"v"}
        finally:
            backend.close()


def test_values_come_back_as_the_exact_bytes_given(redis_server, cleanup):
    backend = RedisBackend(redis_server.url, key_prefix="exact")
    cleanup.append(backend)
    backend.set_many({"array": bytearray(b"\x00\xffarray"), "view": memoryview(b"\x01view")})
    assert backend.get_many(["array", "view"]) == {"array": b"\x00\xffarray", "view": b"\x01view"}


def test_unix_socket_location(tmp_path):
    require_binary("redis-server")
    socket_path = tmp_path / "redis.sock"
    with RedisServer(extra_args=["--unixsocket", str(socket_path)]):
        backend = build_backend(
            {
                "BACKEND": "drf_instcache.backends.redis.RedisBackend",
                "LOCATION": f"unix://{socket_path}?db=2",
                "KEY_PREFIX": "unix",
            }
        )
        try:
            backend.set_many({"k": b"v"})
            assert backend.get_many(["k"]) == {"k": b"v"}
            assert redis.Redis(unix_socket_path=str(socket_path), db=2).get("unix:k") == b"v"
        finally:
            backend.close()


def _commands(client: redis.Redis, name: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0))


def test_conditional_writes_of_a_batch_are_one_command_each(redis_server, cleanup):
    """A lease claim and a fill of 100 keys cost the client one command each, not 100
    (packing a command per key was most of what a cold page paid for its leases)."""
    backend = build_backend(f"redis://127.0.0.1:{redis_server.port}/0?prefix=batch")
    cleanup.append(backend)
    raw = raw_client(redis_server)
    items = {f"k{i}": f"lease-{i}".encode() for i in range(100)}
    backend.set_many({"k0": b"taken"})
    raw.config_resetstat()
    assert sorted(backend.add_many(items, timeout=5)) == sorted(set(items) - {"k0"})
    assert _commands(raw, "eval") == 1 and _commands(raw, "set") == 100
    swaps = {key: (value, b"filled") for key, value in items.items()}
    assert sorted(backend.compare_and_set_many(swaps, timeout=60)) == sorted(set(items) - {"k0"})
    assert _commands(raw, "eval") == 2
    assert backend.get_many(["k0", "k1"]) == {"k0": b"taken", "k1": b"filled"}
    assert 0 < raw.pttl("batch:k1") <= 60_000


def test_a_quiet_fill_does_not_wait_for_a_hung_server():
    """A reader's write-back is sent behind ``CLIENT REPLY SKIP``: with the server
    stopped (SIGSTOP) an answered fill times out, the quiet one returns at once, and the
    server applies it, in order, when it runs again."""
    require_binary("redis-server")
    with RedisServer() as server:
        backend = RedisBackend(server.url, options={"socket_timeout": 0.2})
        try:
            backend.set_many({"k": b"lease", "j": b"lease"})
            os.kill(server.pid, signal.SIGSTOP)
            try:
                backend.fill_many_quietly(b"lease", {"k": b"quiet"})  # on the pooled connection
                with pytest.raises(BackendUnavailable, match=r"(?i)timeout"):
                    backend.fill_many(b"lease", {"j": b"answered"})
            finally:
                os.kill(server.pid, signal.SIGCONT)
            # Both were delivered: the answered one timed out waiting, not refused.
            assert backend.get_many(["k", "j"]) == {"k": b"quiet", "j": b"answered"}
        finally:
            backend.close()


def test_a_quiet_fill_leaves_its_connection_clean(redis_server, cleanup):
    """Nothing is left to read after a quiet fill, not even an error the script raised:
    the next commands on the same pooled connection get their own replies."""
    backend = RedisBackend(redis_server.url, key_prefix="quiet", options={"max_connections": 1})
    cleanup.append(backend)
    raw = raw_client(redis_server)
    raw.hset("quiet:hash", "field", "x")  # GET in the fill script fails with WRONGTYPE
    backend.set_many({"a": b"L", "b": b"M"})
    raw.config_resetstat()
    backend.fill_many_quietly(b"L", {"hash": b"v", "a": b"filled", "b": b"refused"})
    assert _commands(raw, "eval") == 1
    assert backend.get_many(["a", "b"]) == {"a": b"filled", "b": b"M"}
    assert backend.get_many_claiming(["a", "c"], b"N", 5) == ({"a": b"filled"}, ["c"])
    backend.fill_many_quietly(b"N", {"c": b"third"})
    assert backend.get_many(["c"]) == {"c": b"third"}
    assert raw.hget("quiet:hash", "field") == b"x"
