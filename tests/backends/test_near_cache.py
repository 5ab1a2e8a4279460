"""The near cache (``OPTIONS["NEAR_CACHE"]``) on a real redis-server.

Freshness across processes (a writer in another process), the read/invalidate race
(made deterministic with the backend's ``after_read`` hook), a lost tracking connection
and a restarted server (flush, bypass, flush again when tracking is back), the memory
bound and LRU order, markers and conditional writes, and the settings that build it.
Waiting is always bounded by a deadline; nothing here asserts a duration.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from django.test import override_settings

from drf_instcache import counters
from drf_instcache import settings as instcache_settings
from drf_instcache.backends.near import (
    LeasingNearCacheBackend,
    NearCacheBackend,
    entry_size,
    parse_config,
    split_setting,
)
from drf_instcache.backends.near_store import ENTRY_OVERHEAD
from drf_instcache.backends.redis import RedisBackend
from drf_instcache.checks import check_backend_setting
from drf_instcache.compression import CompressedBackend
from drf_instcache.exceptions import BackendUnavailable, ImproperlyConfigured
from drf_instcache.leases import UNCACHEABLE, new_lease
from drf_instcache.testing.near import wait_for_announcements
from drf_instcache.testing.redis_server import RedisServer
from tests.backends.config_near import wait_for_tracking
from tests.backends.near_writer import write_and_exit

DEADLINE = 10.0


def wait_until(predicate: Callable[[], object], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"not {what} after {deadline}s")
        time.sleep(0.002)


@pytest.fixture
def make_near(redis_server: RedisServer) -> Iterator[Callable[..., NearCacheBackend]]:
    made: list[NearCacheBackend] = []

    def make(max_bytes: int = 2**20, prefix: str | None = None, **options) -> NearCacheBackend:
        config = parse_config({"MAX_BYTES": max_bytes, "HEALTH_CHECK_INTERVAL": 0.2, **options})
        assert config is not None
        adapter = RedisBackend(redis_server.url, key_prefix=prefix or f"n{uuid.uuid4().hex[:10]}")
        backend = NearCacheBackend(CompressedBackend(adapter), config)
        made.append(backend)
        wait_for_tracking(backend)
        return backend

    yield make
    if not redis_server.running:
        redis_server.start()
    for backend in made:
        try:
            backend.clear()
        finally:
            backend.close()


@pytest.fixture
def server_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, protocol=2)
    yield client
    client.close()


def served_locally(backend: NearCacheBackend, key: str) -> bool:
    return key in backend.store


def warm(backend: NearCacheBackend, keys: list[str]) -> None:
    """Read until every key is near-cached. A read right after a write may not be kept:
    the write's own invalidation (Redis also tells the writer's process) can arrive
    between the reply and the fill, or just after it: so every announcement sent so far
    is taken in first, and none arrives after the keys are kept."""
    wait_for_announcements(backend)
    wait_until(
        lambda: backend.get_many(keys) is not None and all(key in backend.store for key in keys),
        f"{keys} near-cached",
    )


def test_an_entry_changed_by_another_process_is_never_served_after_its_invalidation(
    make_near, redis_server
):
    near = make_near()
    prefix = near.adapter.key_prefix
    near.set_many({"question:1": b"old", "question:2": b"kept"})
    assert near.get_many(["question:1", "question:2"]) == {
        "question:1": b"old",
        "question:2": b"kept",
    }
    warm(near, ["question:1", "question:2"])
    hits = near.store.hits
    assert near.get_many(["question:1"]) == {"question:1": b"old"}
    assert near.store.hits == hits + 1, "the warm read is a near hit"

    invalidations = near.store.invalidations
    context = multiprocessing.get_context("spawn")
    writer = context.Process(
        target=write_and_exit,
        args=(redis_server.url, prefix, {"question:1": b"new"}, []),
    )
    writer.start()
    writer.join(60)
    assert writer.exitcode == 0
    # The write is committed on the server: from the moment its invalidation was handled,
    # no read may return the old value.
    wait_until(lambda: near.store.invalidations > invalidations, "invalidated")
    for _ in range(200):
        assert near.get_many(["question:1"]) == {"question:1": b"new"}
    warm(near, ["question:1"])  # the fresh value is near-cached again
    assert near.get_many(["question:1"]) == {"question:1": b"new"}
    assert near.get_many(["question:2"]) == {"question:2": b"kept"}
    assert served_locally(near, "question:2"), "other keys are left alone"

    deleter = context.Process(
        target=write_and_exit, args=(redis_server.url, prefix, {}, ["question:2"])
    )
    deleter.start()
    deleter.join(60)
    assert deleter.exitcode == 0
    wait_until(lambda: near.get_many(["question:2"]) == {}, "seen deleted")
    assert not served_locally(near, "question:2")
    for _ in range(50):
        assert near.get_many(["question:2"]) == {}


def test_freshness_in_the_writing_process_needs_no_message(make_near):
    near = make_near()
    near.set_many({"k": b"1"})
    assert near.get_many(["k"]) == {"k": b"1"}
    warm(near, ["k"])
    near.set_many({"k": b"2"})
    assert not served_locally(near, "k")
    assert near.get_many(["k"]) == {"k": b"2"}
    near.delete_many(["k"])
    assert near.get_many(["k"]) == {}


def test_a_value_read_while_its_invalidation_arrives_is_not_kept(make_near, server_client):
    near = make_near()
    near.set_many({"k": b"v1", "other": b"o"})
    wait_until(lambda: near.store.invalidations >= 2, "own writes announced")
    server_key = near.adapter.server_key("k")
    delivered = []

    def write_in_between(keys):
        # Redis has answered v1; before the reply is put in the near cache another
        # client writes the key, and its invalidation is handled by the tracking thread.
        invalidations = near.store.invalidations
        server_client.set(server_key, b"v2")
        wait_until(lambda: near.store.invalidations > invalidations, "invalidated")
        delivered.append(keys)

    near.after_read = write_in_between
    assert near.get_many(["k", "other"]) == {"k": b"v1", "other": b"o"}  # the reply
    near.after_read = None
    assert delivered == [["k", "other"]]
    assert not served_locally(near, "k"), "the value read before the write was kept"
    assert served_locally(near, "other"), "a key that was not invalidated is kept"
    assert near.get_many(["k"]) == {"k": b"v2"}


def test_a_read_during_a_flush_keeps_nothing(make_near, server_client):
    near = make_near()
    near.set_many({"k": b"v1"})
    wait_until(lambda: near.store.invalidations >= 1, "own write announced")

    def lose_tracking(keys):
        flushes = near.store.flushes
        server_client.execute_command("CLIENT", "KILL", "ID", near.tracking.client_id)
        wait_until(lambda: near.store.flushes > flushes, "flushed")

    near.after_read = lose_tracking
    assert near.get_many(["k"]) == {"k": b"v1"}
    near.after_read = None
    assert not served_locally(near, "k")


class HeldReconnect:
    """Keep the tracking thread from reconnecting until :meth:`release` (its connection
    factory fails like an unreachable server), so the bypass can be observed."""

    def __init__(self, near: NearCacheBackend) -> None:
        self.near = near
        self.tracking = near.tracking
        self.released = threading.Event()
        self.attempts = 0
        real = self.tracking.make_connection

        def make_connection():
            if not self.released.is_set():
                self.attempts += 1
                raise redis.ConnectionError("held by the test")
            return real()

        self.tracking.make_connection = make_connection

    def release(self) -> None:
        self.released.set()


def _assert_bypassed_until_back(near, server_client, held, flushes_before):
    """Tracking is down and held down: the near cache was emptied, reads go to Redis
    and keep nothing; once released, tracking is back, the cache was emptied again and
    serves from memory."""
    wait_until(lambda: held.attempts >= 1, "a reconnection attempted")
    assert not near.store.live
    assert near.store.keys() == [] and near.store.size == 0
    assert near.store.flushes == flushes_before + 1
    server_client.set(near.adapter.server_key("k"), b"changed while down")
    hits = near.store.hits
    for _ in range(3):
        assert near.get_many(["k"]) == {"k": b"changed while down"}
    assert near.store.hits == hits, "no near hit while tracking is down"
    assert near.store.keys() == [], "nothing kept while tracking is down"
    connections = near.tracking.connections
    held.release()
    wait_until(lambda: near.tracking.connections > connections, "reconnected")
    wait_until(lambda: near.store.live, "tracking back")
    assert near.store.flushes == flushes_before + 2
    warm(near, ["k"])
    hits = near.store.hits
    assert near.get_many(["k"]) == {"k": b"changed while down"}
    assert near.store.hits == hits + 1, "served from memory again"


def test_a_killed_tracking_connection_flushes_and_bypasses_until_it_is_back(
    make_near, server_client
):
    near = make_near()
    near.set_many({"k": b"v"})
    warm(near, ["k"])
    flushes = near.store.flushes
    old_id = near.tracking.client_id
    held = HeldReconnect(near)
    server_client.execute_command("CLIENT", "KILL", "ID", old_id)
    _assert_bypassed_until_back(near, server_client, held, flushes)
    assert near.tracking.client_id != old_id


@pytest.mark.slow
def test_a_restarted_server_flushes_and_bypasses_until_tracking_is_back(
    make_near, redis_server, server_client
):
    near = make_near()
    near.set_many({"k": b"before restart"})
    warm(near, ["k"])
    flushes = near.store.flushes
    held = HeldReconnect(near)
    redis_server.stop()
    try:
        wait_until(lambda: not near.store.live, "down")
        assert near.store.keys() == []
        with pytest.raises(BackendUnavailable):
            near.get_many(["k"])  # not served from memory while the server is gone
    finally:
        redis_server.start()
    _assert_bypassed_until_back(near, server_client, held, flushes)


def test_flushdb_empties_the_near_cache(make_near, server_client):
    near = make_near()
    near.set_many({"a": b"1", "b": b"2"})
    warm(near, ["a", "b"])
    flushes = near.store.flushes
    server_client.flushdb()
    wait_until(lambda: near.store.flushes > flushes, "flushed")
    assert near.store.keys() == []
    assert near.get_many(["a", "b"]) == {}


def test_memory_stays_within_the_bound_in_lru_order(make_near):
    value = b"x" * 1000
    per_entry = entry_size("key:000", "prefix-of-ten-:key:000", value)
    near = make_near(max_bytes=per_entry * 10 + per_entry // 2)
    keys = [f"key:{n:03d}" for n in range(25)]
    near.set_many(dict.fromkeys(keys, value))
    wait_until(lambda: near.store.invalidations >= len(keys), "own writes announced")
    near.get_many(keys[:10])
    assert near.store.keys() == keys[:10]
    near.get_many([keys[0]])  # most recently used now
    near.get_many(keys[10:15])  # five more: the five least recently used go
    assert near.store.size <= near.store.max_bytes
    assert near.store.keys() == [*keys[6:10], keys[0], *keys[10:15]]
    near.get_many(keys)  # more than the bound in one call
    assert near.store.size <= near.store.max_bytes
    assert len(near.store.keys()) == 10
    assert near.store.evictions >= 15


def test_oversized_values_are_not_kept(make_near):
    near = make_near(max_bytes=100_000, MAX_ITEM_BYTES=5_000)
    near.set_many({"small": b"s" * 1000, "big": b"b" * 10_000})
    wait_until(lambda: near.store.invalidations >= 2, "own writes announced")
    assert near.get_many(["small", "big"]) == {"small": b"s" * 1000, "big": b"b" * 10_000}
    assert near.store.keys() == ["small"]


def test_the_accounted_size_covers_the_memory_really_used(make_near):
    near = make_near(max_bytes=64 * 2**20)
    items = {f"entry:{n}": bytes([65 + n % 26]) * 300 for n in range(3000)}
    near.set_many(items)
    wait_until(lambda: near.store.invalidations >= len(items), "own writes announced")
    fetched = near.backend.get_many(list(items))  # the values as Redis returns them
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        near.store.fill(fetched, near.store.lookup([])[2])
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del fetched
    assert len(near.store.keys()) == len(items)
    # The values themselves were allocated before (the reply's bytes are kept, not
    # copied), so the fill allocated the entries' bookkeeping and the server keys.
    values = sum(sys.getsizeof(value) for value in items.values())
    assert used <= near.store.size - values, (used, near.store.size, values)
    assert ENTRY_OVERHEAD > 0


def test_markers_are_never_served_from_memory(make_near):
    near = make_near()
    lease = new_lease()
    assert near.add_many({"leased": lease, "too-large": UNCACHEABLE}) == ["leased", "too-large"]
    assert near.get_many(["leased", "too-large"]) == {"leased": lease, "too-large": UNCACHEABLE}
    assert near.store.keys() == []


def test_conditional_writes_go_to_the_server_and_evict_the_local_copy(make_near):
    near = make_near()
    assert isinstance(near, LeasingNearCacheBackend)
    near.set_many({"k": b"value"})
    warm(near, ["k"])
    assert near.add_many({"k": b"lease"}) == []  # the server holds a value: refused
    assert not served_locally(near, "k")
    assert near.get_many(["k"]) == {"k": b"value"}
    assert near.compare_and_set_many({"k": (b"value", b"swapped")}) == ["k"]
    assert not served_locally(near, "k")
    assert near.get_many(["k"]) == {"k": b"swapped"}
    near.clear()
    assert near.store.keys() == []
    assert near.get_many(["k"]) == {}


def test_counters(make_near, redis_server):
    counters.reset()
    size = entry_size("a", "x" * 12 + ":a", b"1")
    near = make_near(max_bytes=size * 2, MAX_ITEM_BYTES=size * 2)
    near.set_many({"a": b"1", "b": b"2", "c": b"3"})
    wait_until(lambda: near.store.invalidations >= 3, "own writes announced")
    counters.reset()
    near.get_many(["a", "b", "c"])  # three misses, one eviction
    near.get_many(["c"])  # a hit
    RedisBackend(redis_server.url, key_prefix=near.adapter.key_prefix).set_many({"c": b"4"})
    wait_until(lambda: counters.snapshot()["near_invalidations"] >= 1, "invalidated")
    counts = counters.snapshot()
    assert counts["near_misses"] == 3
    assert counts["near_hits"] == 1
    assert counts["near_evictions"] == 1
    assert counts["near_flushes"] == 0


def test_the_setting_builds_the_chain(redis_server):
    setting = {
        "BACKEND": redis_server.url,
        "KEY_PREFIX": f"s{uuid.uuid4().hex[:8]}",
        "OPTIONS": {"socket_timeout": 1.0, "NEAR_CACHE": {"MAX_BYTES": 2**20}},
    }
    with override_settings(DRF_INSTCACHE_BACKEND=setting):
        backend = instcache_settings.get_backend()
        try:
            assert isinstance(backend, LeasingNearCacheBackend)
            assert backend.config.max_bytes == 2**20
            assert backend.config.max_item_bytes == 2**17
            assert backend.adapter.socket_timeout == 1.0
            assert check_backend_setting() == []
            backend.set_many({"k": b"v"})
            wait_for_tracking(backend)
            warm(backend, ["k"])
            hits = backend.store.hits
            assert backend.get_many(["k"]) == {"k": b"v"}
            assert backend.store.hits == hits + 1
        finally:
            backend.clear()
    assert split_setting("redis://h:1/0") == ("redis://h:1/0", None)


@pytest.mark.parametrize(
    "setting, message",
    [
        (
            {"BACKEND": "locmem://x", "OPTIONS": {"NEAR_CACHE": {"MAX_BYTES": 100}}},
            "needs the Redis",
        ),
        (
            {
                "BACKEND": "redis+cluster://127.0.0.1:7000",
                "OPTIONS": {"NEAR_CACHE": {"MAX_BYTES": 100}},
            },
            "Redis Cluster",
        ),
        (
            {
                "BACKEND": "redis+sentinel://127.0.0.1:26379/mymaster",
                "OPTIONS": {"NEAR_CACHE": {"MAX_BYTES": 100}},
            },
            "Sentinel",
        ),
        ({"BACKEND": "redis://127.0.0.1:1/0", "OPTIONS": {"NEAR_CACHE": {"MAX": 1}}}, "MAX_BYTES"),
        (
            {"BACKEND": "redis://127.0.0.1:1/0", "OPTIONS": {"NEAR_CACHE": {"MAX_BYTES": 0}}},
            "MAX_BYTES",
        ),
        (
            {
                "BACKEND": "redis://127.0.0.1:1/0",
                "OPTIONS": {"NEAR_CACHE": {"MAX_BYTES": 10, "MAX_ITEM_BYTES": 11}},
            },
            "MAX_ITEM_BYTES",
        ),
    ],
    ids=["locmem", "cluster", "sentinel", "unknown-key", "zero", "item-over-total"],
)
def test_unsupported_settings_fail_the_check(setting, message):
    with override_settings(DRF_INSTCACHE_BACKEND=setting):
        errors = check_backend_setting()
        assert [error.id for error in errors] == ["drf_instcache.E001"]
        assert message in errors[0].msg
        with pytest.raises(ImproperlyConfigured, match=message):
            instcache_settings.build_configured_backend()


def test_off_by_default(redis_server):
    with override_settings(DRF_INSTCACHE_BACKEND=redis_server.url):
        assert not isinstance(instcache_settings.get_backend(), NearCacheBackend)
    with override_settings(
        DRF_INSTCACHE_BACKEND={"BACKEND": redis_server.url, "OPTIONS": {"NEAR_CACHE": None}}
    ):
        assert not isinstance(instcache_settings.get_backend(), NearCacheBackend)


def test_waiting_for_announcements_takes_in_every_one_sent_before(make_near, monkeypatch):
    near = make_near()
    near.get_many(["started"])  # the first read starts the tracking connection
    wait_for_tracking(near)
    taken_in = near.store.invalidate

    def slowly(server_keys, received=True):  # a tracking thread held back by a busy machine
        if received:  # not this process's local evictions
            time.sleep(0.05)
        return taken_in(server_keys, received=received)

    monkeypatch.setattr(near.store, "invalidate", slowly)
    received = near.store.invalidations  # counts what arrived from the server only
    for n in range(5):  # one announcement each
        near.set_many({f"own:{n}": b"v"})
    wait_for_announcements(near)
    assert near.store.invalidations >= received + 5, "every write announced before the wait"
