"""The conformance suite: every backend configuration must pass every test here.

Written once against the ``Backend`` protocol; ``conftest.py`` runs it for Redis (single
node and Cluster), Memcached (one and three servers), disk (Cache and FanoutCache), the
Django cache adapter (over LocMemCache and over Django's RedisCache) and locmem.
"""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drf_instcache.backends.base import Backend
from drf_instcache.exceptions import BackendUnavailable, ValueTooLarge
from drf_instcache.keys import MAX_KEY_LENGTH

ONE_MB = 1024 * 1024


def test_satisfies_the_protocol(backend):
    assert isinstance(backend, Backend)


def test_round_trip_of_arbitrary_bytes(backend):
    values = {
        "empty": b"",
        "nul": b"\x00",
        "nuls": b"a\x00b\x00\x00c",
        "all-bytes": bytes(range(256)),
        "not-utf8": b"\xff\xfe\xfd",
        "newline": b"line\r\nEND\r\n",
        "one-mb": bytes(range(256)) * (ONE_MB // 256),
    }
    backend.set_many(values)
    found = backend.get_many(list(values))
    assert found == values
    assert all(type(value) is bytes for value in found.values())


def test_misses_are_omitted(backend):
    backend.set_many({"present": b"1"})
    assert backend.get_many(["present", "absent", "also-absent"]) == {"present": b"1"}
    assert backend.get_many(["absent"]) == {}


def test_duplicate_keys_in_one_call(backend):
    backend.set_many({"k": b"v"})
    assert backend.get_many(["k", "k", "missing", "k"]) == {"k": b"v"}


def test_set_many_overwrites(backend):
    backend.set_many({"k": b"old"})
    backend.set_many({"k": b"new"})
    assert backend.get_many(["k"]) == {"k": b"new"}


def test_empty_inputs_make_no_round_trip(backend, round_trips):
    backend.set_many({"warm-up": b"1"})  # connect first: a connection is not a request
    before = round_trips()
    assert backend.get_many([]) == {}
    backend.set_many({})
    backend.delete_many([])
    assert round_trips() == before
    backend.get_many(["warm-up"])
    assert round_trips() > before, "the counter must see a real request"


def test_one_call_is_one_round_trip_per_server(adapter, backend, round_trips):
    items = {f"key-{i}": f"value-{i}".encode() for i in range(100)}
    backend.get_many(["connect"])
    for operation in (
        lambda: backend.set_many(items),
        lambda: backend.get_many(list(items)),
        lambda: backend.delete_many(list(items)),
    ):
        before = round_trips()
        operation()
        assert 1 <= round_trips() - before <= adapter.servers
    assert backend.get_many(list(items)) == {}


def test_ten_thousand_keys_in_one_call(backend):
    items = {f"bulk:{i}": i.to_bytes(4, "big") * 8 for i in range(10_000)}
    backend.set_many(items)
    assert backend.get_many(list(items)) == items
    backend.delete_many(list(items))
    assert backend.get_many(list(items)) == {}


@pytest.mark.parametrize(
    "length", [1, MAX_KEY_LENGTH - 20, MAX_KEY_LENGTH, MAX_KEY_LENGTH + 1, 5000]
)
def test_keys_at_and_over_the_length_limit(backend, length):
    key = "k" * length
    backend.set_many({key: b"long"})
    assert backend.get_many([key]) == {key: b"long"}
    backend.delete_many([key])
    assert backend.get_many([key]) == {}


def test_long_keys_sharing_a_head_stay_distinct(backend):
    head = "x" * 400
    items = {head + "a": b"a", head + "b": b"b"}
    backend.set_many(items)
    assert backend.get_many(list(items)) == items


@pytest.mark.parametrize(
    "key",
    [
        "with space",
        "tab\there",
        "new\nline",
        "nul\x00byte",
        "del\x7fchar",
        "unicode-é-✓-漢字",
        "emoji-🙂",
        "hash#sign",
        "",
    ],
    ids=["space", "tab", "newline", "nul", "del", "unicode", "emoji", "hash", "empty"],
)
def test_unsafe_keys_round_trip(backend, key):
    backend.set_many({key: b"v", "with_space": b"other"})
    assert backend.get_many([key, "with_space"]) == {key: b"v", "with_space": b"other"}
    backend.delete_many([key])
    assert backend.get_many([key]) == {}


def test_unsafe_keys_do_not_collide_with_their_readable_form(backend):
    items = {"a b": b"space", "a_b": b"underscore", "a\tb": b"tab"}
    backend.set_many(items)
    assert backend.get_many(list(items)) == items


@pytest.mark.slow
def test_expiry_has_the_same_meaning_everywhere(make_backend):
    short_default = make_backend(timeout=2)
    no_expiry = make_backend(timeout=None)
    short_default.set_many({"explicit": b"1"}, timeout=2)
    short_default.set_many({"default": b"2"})
    short_default.set_many({"long": b"3"}, timeout=120)
    no_expiry.set_many({"forever": b"4"})
    assert short_default.get_many(["explicit", "default", "long"]) == {
        "explicit": b"1",
        "default": b"2",
        "long": b"3",
    }
    time.sleep(3.2)
    assert short_default.get_many(["explicit", "default", "long"]) == {"long": b"3"}
    assert no_expiry.get_many(["forever"]) == {"forever": b"4"}


@pytest.mark.parametrize("timeout", [0, -1, -0.5])
def test_zero_or_negative_timeout_means_already_expired(backend, timeout):
    backend.set_many({"k": b"old", "other": b"kept"})
    backend.set_many({"k": b"new"}, timeout=timeout)
    assert backend.get_many(["k", "other"]) == {"other": b"kept"}


def test_fractional_timeout_is_accepted(backend):
    backend.set_many({"k": b"v"}, timeout=30.5)
    assert backend.get_many(["k"]) == {"k": b"v"}


def test_delete_many_of_present_and_absent_keys(backend):
    backend.set_many({"a": b"1", "b": b"2", "c": b"3"})
    backend.delete_many(["a", "c", "never-set"])
    assert backend.get_many(["a", "b", "c", "never-set"]) == {"b": b"2"}
    backend.delete_many(["never-set-either"])


def test_clear_leaves_other_prefixes_intact(make_backend):
    mine = make_backend(key_prefix="ns")
    neighbour = make_backend(key_prefix="ns2")
    other_app = make_backend(key_prefix="nsa")
    long_key = "L" * 600
    for backend in (mine, neighbour, other_app):
        backend.set_many({"shared-name": b"x", long_key: b"long"})
    mine.clear()
    assert mine.get_many(["shared-name", long_key]) == {}
    for backend in (neighbour, other_app):
        assert backend.get_many(["shared-name", long_key]) == {
            "shared-name": b"x",
            long_key: b"long",
        }


def test_clear_deletes_entries_that_were_just_read(backend):
    # Memcached moves entries that were read between its LRU segments in the background;
    # a single crawl of its LRUs misses some of them.
    keys = [f"hot:{i}" for i in range(100)]
    for round_ in range(3):
        backend.set_many(dict.fromkeys(keys, b"v"))
        for _ in range(30):
            assert len(backend.get_many(keys)) == 100
        backend.clear()
        assert backend.get_many(keys) == {}, f"round {round_}"


def test_two_backends_on_one_server_are_isolated_by_prefix(make_backend):
    first = make_backend(key_prefix="app-one")
    second = make_backend(key_prefix="app-two")
    first.set_many({"user:1": b"first"})
    assert second.get_many(["user:1"]) == {}
    second.set_many({"user:1": b"second"})
    assert first.get_many(["user:1"]) == {"user:1": b"first"}
    first.delete_many(["user:1"])
    assert second.get_many(["user:1"]) == {"user:1": b"second"}


def test_same_prefix_shares_data(make_backend):
    writer = make_backend(key_prefix="shared")
    reader = make_backend(key_prefix="shared")
    writer.set_many({"k": b"v"})
    assert reader.get_many(["k"]) == {"k": b"v"}


def test_close_then_use_again_reconnects(backend):
    backend.set_many({"k": b"v"})
    backend.close()
    assert backend.get_many(["k"]) == {"k": b"v"}


def test_threads_share_one_backend_object(backend):
    errors: list[BaseException] = []

    def worker(thread_id: int) -> None:
        try:
            for round_number in range(60):
                items = {
                    f"t{thread_id}:{i}": f"{thread_id}:{round_number}:{i}".encode()
                    for i in range(20)
                }
                backend.set_many(items)
                found = backend.get_many(list(items))
                assert found == items, f"thread {thread_id} read another thread's data"
                backend.delete_many(list(items)[:5])
        except BaseException as error:  # reported to the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def test_values_must_be_bytes(backend):
    with pytest.raises(TypeError):
        backend.set_many({"k": "text is not bytes"})  # type: ignore[dict-item]


def test_configured_value_limit_raises_after_storing_the_rest(make_backend):
    backend = make_backend(max_value_size=1000)
    with pytest.raises(ValueTooLarge) as raised:
        backend.set_many({"small": b"s" * 1000, "big": b"b" * 1001, "tiny": b"t"})
    assert raised.value.keys == ["big"]
    assert raised.value.limit == 1000
    assert backend.get_many(["small", "big", "tiny"]) == {"small": b"s" * 1000, "tiny": b"t"}


@pytest.mark.needs_item_limit
def test_value_over_the_server_item_limit(adapter, backend):
    assert adapter.item_limit
    with pytest.raises(ValueTooLarge) as raised:
        backend.set_many({"huge": b"h" * (adapter.item_limit + 1), "fine": b"f"})
    assert raised.value.keys == ["huge"]
    assert backend.get_many(["huge", "fine"]) == {"fine": b"f"}


@pytest.mark.slow
@pytest.mark.needs_server
def test_stopped_server_raises_backend_unavailable_then_recovers(adapter, backend):
    backend.set_many({"k": b"v"})
    adapter.stop()
    try:
        for operation in (
            lambda: backend.get_many(["k"]),
            lambda: backend.set_many({"k": b"v2"}),
            lambda: backend.delete_many(["k"]),
        ):
            started = time.monotonic()
            with pytest.raises(BackendUnavailable):
                operation()
            assert time.monotonic() - started < 10, "an outage must be reported promptly"
    finally:
        adapter.start()
    deadline = time.monotonic() + 20
    while True:
        try:
            backend.set_many({"after": b"restart"})
            assert backend.get_many(["after"]) == {"after": b"restart"}
            break
        except BackendUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


_keys = st.text(max_size=300)
_values = st.binary(max_size=3000)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(items=st.dictionaries(_keys, _values, max_size=25), absent=st.lists(_keys, max_size=5))
def test_property_round_trip(backend, items, absent):
    absent = [key for key in absent if key not in items]
    backend.set_many(items)
    assert backend.get_many(list(items) + absent) == items
    backend.delete_many(list(items))
    assert backend.get_many(list(items)) == {}
