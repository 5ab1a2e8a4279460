"""Conformance of the optional conditional writes (``LeasingBackend``) on every backend.

The core's lease protocol (:mod:`drf_instcache.leases`) is only as good as these two
primitives: ``add_many`` must store only into empty keys, and ``compare_and_set_many``
only over the exact expected bytes, each atomically, so that of many concurrent callers
exactly one wins. The same ``adapter`` parametrization as ``test_conformance.py`` runs
every test on every configuration.
"""

from __future__ import annotations

import threading
import time

import pytest

from drf_instcache.backends.base import (
    claims_natively,
    fill_many,
    fill_many_quietly,
    get_many_claiming,
    supports_leases,
)
from drf_instcache.breaker import CircuitBreakerBackend, CircuitOpen
from drf_instcache.exceptions import BackendUnavailable, ValueTooLarge

THREADS = 8

# Django has no bulk add and, on most of its backends, no compare-and-set: one call per key.
PER_KEY_CALLS = {"django-locmem", "django-redis"}
# A single Redis server reads and leases in one script (a cluster's keys span slots).
ONE_SCRIPT = {"redis", "redis-sentinel", "redis-zstd"}


def test_every_adapter_offers_conditional_writes(backend):
    assert supports_leases(backend)


def test_add_stores_only_into_empty_keys(backend):
    backend.set_many({"taken": b"old"})
    stored = backend.add_many({"taken": b"new", "free": b"mine", "free-too": b""})
    assert sorted(stored) == ["free", "free-too"]
    assert backend.get_many(["taken", "free", "free-too"]) == {
        "taken": b"old",
        "free": b"mine",
        "free-too": b"",
    }


def test_add_after_a_delete_stores_again(backend):
    assert backend.add_many({"k": b"first"}) == ["k"]
    assert backend.add_many({"k": b"second"}) == []
    backend.delete_many(["k"])
    assert backend.add_many({"k": b"third"}) == ["k"]
    assert backend.get_many(["k"]) == {"k": b"third"}


def test_compare_and_set_needs_the_exact_expected_bytes(backend):
    backend.set_many({"match": b"lease-1", "other": b"lease-2", "prefix": b"lease-1+"})
    stored = backend.compare_and_set_many(
        {
            "match": (b"lease-1", b"value"),
            "other": (b"lease-1", b"value"),
            "prefix": (b"lease-1", b"value"),
            "absent": (b"lease-1", b"value"),
        }
    )
    assert stored == ["match"]
    assert backend.get_many(["match", "other", "prefix", "absent"]) == {
        "match": b"value",
        "other": b"lease-2",
        "prefix": b"lease-1+",
    }


def test_compare_and_set_with_arbitrary_bytes(backend):
    expected = bytes(range(256)) + b"\r\nEND\r\n"
    new = b"\x00\xff" * 1000
    backend.set_many({"binary": expected})
    assert backend.compare_and_set_many({"binary": (expected, new)}) == ["binary"]
    assert backend.get_many(["binary"]) == {"binary": new}


def test_a_write_in_between_makes_the_compare_fail(backend):
    backend.add_many({"k": b"my-lease"})
    backend.set_many({"k": b"a writer's value"})
    assert backend.compare_and_set_many({"k": (b"my-lease", b"stale")}) == []
    assert backend.get_many(["k"]) == {"k": b"a writer's value"}
    backend.delete_many(["k"])
    assert backend.compare_and_set_many({"k": (b"my-lease", b"stale")}) == []
    assert backend.get_many(["k"]) == {}


@pytest.mark.parametrize("timeout", [0, -1])
def test_zero_or_negative_timeout_stores_nothing(backend, timeout):
    backend.set_many({"k": b"expected"})
    assert backend.add_many({"new": b"v"}, timeout=timeout) == []
    assert backend.compare_and_set_many({"k": (b"expected", b"v")}, timeout=timeout) == []
    assert backend.get_many(["k", "new"]) == {"k": b"expected"}


@pytest.mark.slow
def test_lifetimes_apply_to_conditional_writes(make_backend):
    backend = make_backend(timeout=1)
    backend.add_many({"lease": b"L"}, timeout=1)
    backend.add_many({"kept": b"L"}, timeout=60)
    backend.set_many({"swapped": b"L"})
    backend.compare_and_set_many({"swapped": (b"L", b"value")}, timeout=1)
    time.sleep(2.2)  # memcached and Django count whole seconds
    assert backend.get_many(["lease", "kept", "swapped"]) == {"kept": b"L"}
    assert backend.add_many({"lease": b"next holder"}) == ["lease"], "an expired lease is free"


def test_empty_inputs_make_no_round_trip(backend, round_trips):
    backend.set_many({"warm-up": b"1"})
    before = round_trips()
    assert backend.add_many({}) == []
    assert backend.compare_and_set_many({}) == []
    assert round_trips() == before


def test_round_trips_per_call(adapter, backend, round_trips):
    items = {f"key-{i}": f"lease-{i}".encode() for i in range(50)}
    backend.get_many(["connect"])
    before = round_trips()
    backend.add_many(items)
    added = round_trips() - before
    before = round_trips()
    backend.compare_and_set_many({key: (value, b"filled") for key, value in items.items()})
    swapped = round_trips() - before
    assert backend.get_many(list(items)) == dict.fromkeys(items, b"filled")
    if adapter.id in PER_KEY_CALLS:
        assert added == len(items)
        assert swapped <= 1  # in-process under LocMemCache's lock, or one pipeline of scripts
    else:
        # memcached's compare-and-set reads the cas tokens first: two requests per server.
        per_server = 2 if adapter.id.startswith("memcached") else 1
        assert 1 <= added <= adapter.servers
        assert 1 <= swapped <= per_server * adapter.servers


def test_configured_value_limit(make_backend):
    backend = make_backend(max_value_size=100)
    backend.set_many({"leased": b"L"})
    with pytest.raises(ValueTooLarge) as raised:
        backend.add_many({"big": b"b" * 101, "small": b"s"})
    assert raised.value.keys == ["big"]
    with pytest.raises(ValueTooLarge) as raised:
        backend.compare_and_set_many({"leased": (b"L", b"b" * 101)})
    assert raised.value.keys == ["leased"]
    assert backend.get_many(["big", "small", "leased"]) == {"small": b"s", "leased": b"L"}


@pytest.mark.needs_item_limit
def test_value_over_the_server_item_limit(adapter, backend):
    backend.set_many({"leased": b"L"})
    huge = b"h" * (adapter.item_limit + 1)
    with pytest.raises(ValueTooLarge):
        backend.compare_and_set_many({"leased": (b"L", huge)})
    assert backend.get_many(["leased"]) == {"leased": b"L"}


def test_pairs_and_bytes_are_checked(backend):
    with pytest.raises(TypeError):
        backend.add_many({"k": "text"})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        backend.compare_and_set_many({"k": b"not a pair"})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        backend.compare_and_set_many({"k": ("text", b"v")})  # type: ignore[dict-item]


def _race(target) -> list:
    """Run ``target(n)`` in THREADS threads released at once; return their results."""
    barrier = threading.Barrier(THREADS)
    results: list = [None] * THREADS
    errors: list[BaseException] = []

    def run(number: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[number] = target(number)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_exactly_one_of_many_concurrent_adds_wins(make_backend):
    backends = [make_backend(key_prefix="race-add") for _ in range(THREADS)]
    for round_number in range(5):
        key = f"contended-{round_number}"
        results = _race(lambda n, key=key: backends[n].add_many({key: f"lease-{n}".encode()}))
        winners = [n for n, stored in enumerate(results) if stored == [key]]
        assert len(winners) == 1, results
        assert backends[0].get_many([key]) == {key: f"lease-{winners[0]}".encode()}


def test_exactly_one_of_many_concurrent_swaps_wins(make_backend):
    backends = [make_backend(key_prefix="race-cas") for _ in range(THREADS)]
    for round_number in range(5):
        key = f"contended-{round_number}"
        backends[0].set_many({key: b"lease"})
        results = _race(
            lambda n, key=key: backends[n].compare_and_set_many(
                {key: (b"lease", f"value-{n}".encode())}
            )
        )
        winners = [n for n, stored in enumerate(results) if stored == [key]]
        assert len(winners) == 1, results
        assert backends[0].get_many([key]) == {key: f"value-{winners[0]}".encode()}


def test_the_circuit_breaker_keeps_the_capability_and_counts_its_failures(adapter, backend):
    breaker = CircuitBreakerBackend(backend, failures=2, reset_after=60)
    assert supports_leases(breaker)
    assert breaker.add_many({"k": b"L"}) == ["k"]
    assert breaker.compare_and_set_many({"k": (b"L", b"v")}) == ["k"]
    if adapter.stop is None:
        return
    adapter.stop()
    try:
        for _ in range(2):
            with pytest.raises(BackendUnavailable) as raised:
                breaker.add_many({"k2": b"L"})
            assert not isinstance(raised.value, CircuitOpen)
        with pytest.raises(CircuitOpen):
            breaker.compare_and_set_many({"k": (b"v", b"w")})
        assert breaker.state == "open"
    finally:
        adapter.start()


# -- the claiming read: get_many, and a lease on each empty key ----------------------------
def test_a_claiming_read_leases_only_the_empty_keys(backend):
    backend.set_many({"hit": b"value", "held": b"another lease"})
    found, won = get_many_claiming(backend, ["hit", "held", "empty", "empty-too"], b"L", 5)
    assert found == {"hit": b"value", "held": b"another lease"}
    assert sorted(won) == ["empty", "empty-too"]
    assert backend.get_many(["hit", "held", "empty", "empty-too"]) == {
        "hit": b"value",
        "held": b"another lease",
        "empty": b"L",
        "empty-too": b"L",
    }
    # The lease is ours: the fill over it is stored, a second claimer wins nothing.
    assert get_many_claiming(backend, ["empty"], b"M", 5) == ({"empty": b"L"}, [])
    assert backend.compare_and_set_many({"empty": (b"L", b"filled")}) == ["empty"]


def test_a_claimed_lease_expires(make_backend):
    backend = make_backend()
    assert get_many_claiming(backend, ["k"], b"L", 1) == ({}, ["k"])
    time.sleep(2.2)  # memcached and Django count whole seconds
    assert backend.get_many(["k"]) == {}


def test_a_claiming_read_is_one_round_trip_where_the_server_can(adapter, backend, round_trips):
    keys = [f"key-{i}" for i in range(50)]
    backend.set_many({key: b"v" for key in keys[:10]})
    before = round_trips()
    found, won = get_many_claiming(backend, keys, b"L", 5)
    used = round_trips() - before
    assert found == {key: b"v" for key in keys[:10]} and sorted(won) == sorted(keys[10:])
    if adapter.id in ONE_SCRIPT:
        assert used == 1
    elif adapter.id not in PER_KEY_CALLS:
        assert used <= 2 * adapter.servers  # get_many, then add_many of the empty keys
    assert not get_many_claiming(backend, [], b"L", 5)[1]


def test_the_wrappers_keep_the_claiming_read(backend):
    from drf_instcache.backends.compression import CompressedBackend
    from drf_instcache.backends.observed import ObservedBackend

    for wrapper in (CircuitBreakerBackend(backend), ObservedBackend(backend)):
        wrapper = CompressedBackend(wrapper)
        assert claims_natively(wrapper)
        backend.delete_many(["w"])
        assert wrapper.get_many_claiming(["w"], b"L", 5) == ({}, ["w"])
        assert wrapper.get_many_claiming(["w"], b"M", 5) == ({"w": b"L"}, [])


# -- one read's fill: every key over the same lease ----------------------------------------
@pytest.mark.parametrize("quiet", [False, True], ids=["answered", "quiet"])
def test_a_fill_stores_only_over_the_exact_lease(backend, quiet):
    backend.set_many({"ours": b"L", "also": b"L", "other": b"M", "longer": b"L+"})
    values = {"ours": b"v1", "also": b"v2", "other": b"v3", "longer": b"v4", "absent": b"v5"}
    if quiet:  # the same comparison on the server, its answer not waited for
        assert fill_many_quietly(backend, b"L", values, None) is None
    else:
        assert sorted(fill_many(backend, b"L", values, None)) == ["also", "ours"]
    assert backend.get_many(["ours", "also", "other", "longer", "absent"]) == {
        "ours": b"v1",
        "also": b"v2",
        "other": b"M",
        "longer": b"L+",
    }


def test_a_fill_is_one_round_trip_where_the_server_can(adapter, backend, round_trips):
    keys = [f"key-{i}" for i in range(50)]
    backend.set_many(dict.fromkeys(keys, b"L"))
    before = round_trips()
    assert sorted(fill_many(backend, b"L", dict.fromkeys(keys, b"v"), 60)) == sorted(keys)
    used = round_trips() - before
    assert backend.get_many(keys) == dict.fromkeys(keys, b"v")
    if adapter.id in ONE_SCRIPT:
        assert used == 1


def test_the_wrappers_keep_the_fill(backend):
    from drf_instcache.backends.compression import CompressedBackend
    from drf_instcache.backends.observed import ObservedBackend

    for wrapper in (CircuitBreakerBackend(backend), ObservedBackend(backend)):
        wrapper = CompressedBackend(wrapper)
        backend.set_many({"w": b"L"})
        assert wrapper.fill_many(b"L", {"w": b"value"}) == ["w"]
        assert wrapper.fill_many(b"L", {"w": b"again"}) == []
        assert wrapper.get_many(["w"]) == {"w": b"value"}


# -- the same fill, without waiting for the answer -----------------------------------------
def test_a_quiet_fill_is_one_call_and_keeps_the_lifetime(adapter, backend, round_trips):
    keys = [f"key-{i}" for i in range(50)]
    backend.set_many(dict.fromkeys(keys, b"L"))
    counter = round_trips
    before = counter()
    fill_many_quietly(backend, b"L", dict.fromkeys(keys, b"v"), 0)  # already expired
    fill_many_quietly(backend, b"L", {}, 60)
    if adapter.id in ONE_SCRIPT:
        assert counter() == before, "nothing to store: nothing sent"
    fill_many_quietly(backend, b"L", dict.fromkeys(keys, b"v"), 60)
    if adapter.id in ONE_SCRIPT:
        assert counter() == before + 1
    assert backend.get_many(keys) == dict.fromkeys(keys, b"v")


def test_the_wrappers_keep_the_quiet_fill(backend):
    from drf_instcache.backends.compression import CompressedBackend
    from drf_instcache.backends.observed import ObservedBackend

    for wrapper in (CircuitBreakerBackend(backend), ObservedBackend(backend)):
        wrapper = CompressedBackend(wrapper)
        backend.set_many({"w": b"L"})
        wrapper.fill_many_quietly(b"L", {"w": b"value"})
        wrapper.fill_many_quietly(b"L", {"w": b"again"})
        assert wrapper.get_many(["w"]) == {"w": b"value"}
