"""Disk-specific behaviour beyond the conformance suite, on real directories.

Covers what only the disk adapter has: URL configuration of shards, layout shared with
diskcache's FanoutCache, several processes writing one directory at once, SQLite's
write lock (writers time out, readers do not wait), the read path for eviction
policies that record reads, files of large values, and a directory that cannot be used.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest
from diskcache import Cache, FanoutCache

from drf_instcache.backends.disk import DiskBackend
from drf_instcache.exceptions import BackendUnavailable, ImproperlyConfigured
from drf_instcache.settings import build_backend
from tests.backends.config_disk import count_transactions

# -- configuration --------------------------------------------------------------------


def test_url_with_shards_and_diskcache_settings(tmp_path):
    backend = build_backend(
        f"disk://{tmp_path}/x?shards=4&lock_timeout=2.5&size_limit=1000000&prefix=api"
    )
    assert isinstance(backend, DiskBackend)
    assert (backend.directory, backend.shards, backend.lock_timeout) == (
        f"{tmp_path}/x",
        4,
        2.5,
    )
    items = {f"k{i}": str(i).encode() for i in range(40)}
    backend.set_many(items)
    assert backend.get_many(list(items)) == items
    assert sorted(path.name for path in (tmp_path / "x").iterdir()) == [
        "000",
        "001",
        "002",
        "003",
    ]
    # The size limit is shared out over the shards, as FanoutCache does.
    assert [cache.size_limit for cache in backend.caches] == [250000] * 4
    assert all(len(cache) > 0 for cache in backend.caches), "keys spread over every shard"
    backend.close()


def test_url_with_fanout_alone_means_eight_shards(tmp_path):
    backend = build_backend(f"disk://{tmp_path}/y?fanout=true")
    assert backend.shards == 8


def test_url_without_options_is_one_database(tmp_path):
    backend = build_backend(f"disk://{tmp_path}/z")
    backend.set_many({"k": b"v"})
    assert backend.shards is None
    assert (tmp_path / "z" / "cache.db").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"no_such_option": 1}, "no_such_option"),
        ({"shards": 0}, "shards"),
        ({"shards": "many"}, "shards"),
        ({"lock_timeout": -1}, "lock_timeout"),
        ({"eviction_policy": "random"}, "eviction_policy"),
        ({"max_value_size": 0}, "max_value_size"),
    ],
)
def test_bad_options_are_refused_up_front(tmp_path, options, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        DiskBackend(str(tmp_path), options=options)


@pytest.mark.parametrize("location", ["", "   ", None, 42])
def test_a_location_that_is_not_a_path_is_refused(location):
    with pytest.raises(ImproperlyConfigured, match="LOCATION"):
        DiskBackend(location)


def test_sharded_layout_is_diskcache_fanoutcache(tmp_path):
    backend = DiskBackend(str(tmp_path), key_prefix="compat", options={"shards": 4})
    items = {f"item:{i}": f"value {i}".encode() for i in range(50)}
    backend.set_many(items)
    backend.close()
    fanout = FanoutCache(str(tmp_path), shards=4)
    try:
        assert {key: fanout.get(backend.server_key(key)) for key in items} == items
    finally:
        fanout.close()


# -- several processes ----------------------------------------------------------------
def _write_from_another_process(directory: str, shards: int | None, worker: int, go) -> None:
    """Hammer one directory; any exception makes the process exit non-zero."""
    options = {} if shards is None else {"shards": shards}
    backend = DiskBackend(directory, key_prefix="shared", options=options)
    go.wait(30)
    for round_number in range(120):
        own = {f"own-{worker}-{i}": f"{worker}:{round_number}:{i}".encode() for i in range(15)}
        shared = {f"both-{i}": f"{worker}:{round_number}".encode() for i in range(15)}
        backend.set_many({**own, **shared})
        assert backend.get_many(list(own)) == own
        backend.delete_many([f"own-{worker}-{i}" for i in range(0, 15, 5)])
    backend.set_many({f"own-{worker}-{i}": f"{worker}:final:{i}".encode() for i in range(15)})
    backend.close()


@pytest.mark.slow
@pytest.mark.parametrize("shards", [None, 4], ids=["one-database", "four-shards"])
def test_two_processes_write_one_directory_without_corruption(tmp_path, shards):
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    workers = [
        context.Process(
            target=_write_from_another_process, args=(str(tmp_path), shards, number, go)
        )
        for number in (1, 2)
    ]
    for process in workers:
        process.start()
    go.set()
    for process in workers:
        process.join(120)
    assert [process.exitcode for process in workers] == [0, 0]

    options = {} if shards is None else {"shards": shards}
    reader = DiskBackend(str(tmp_path), key_prefix="shared", options=options)
    for worker in (1, 2):
        keys = [f"own-{worker}-{i}" for i in range(15)]
        assert reader.get_many(keys) == {
            key: f"{worker}:final:{i}".encode() for i, key in enumerate(keys)
        }
    shared = reader.get_many([f"both-{i}" for i in range(15)])
    assert len(shared) == 15
    assert all(value in (b"1:119", b"2:119") for value in shared.values())
    for cache in reader.caches:
        assert cache.check() == [], "database and value files must agree"


# -- locking --------------------------------------------------------------------------
def test_a_held_write_lock_times_out_writers_but_not_readers(tmp_path):
    backend = DiskBackend(str(tmp_path), key_prefix="lock", options={"lock_timeout": 0.2})
    backend.set_many({"k": b"v"})
    other_process = sqlite3.connect(tmp_path / "cache.db", isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="set_many"):
            backend.set_many({"k": b"new"})
        with pytest.raises(BackendUnavailable, match="delete_many"):
            backend.delete_many(["k"])
        assert time.monotonic() - started < 3
        assert backend.get_many(["k"]) == {"k": b"v"}, "readers do not wait for the writer"
    finally:
        other_process.execute("ROLLBACK")
        other_process.close()
    backend.set_many({"k": b"new"})
    assert backend.get_many(["k"]) == {"k": b"new"}


def test_an_unusable_directory_raises_backend_unavailable_at_first_use(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    backend = DiskBackend(str(blocker / "cache"))  # constructing touches nothing
    with pytest.raises(BackendUnavailable, match="a-file"):
        backend.get_many(["k"])
    with pytest.raises(BackendUnavailable):
        backend.set_many({"k": b"v"})


# -- reads, expiry and files ----------------------------------------------------------
def test_eviction_policy_that_records_reads_uses_one_transaction_per_read(tmp_path):
    backend = DiskBackend(
        str(tmp_path), key_prefix="lru", options={"eviction_policy": "least-recently-used"}
    )
    large = bytes(range(256)) * 400  # 100 KB: stored in its own file
    backend.set_many({"a": b"1", "large": large, "short": b"s"})
    backend.set_many({"short": b"s"}, timeout=0.1)
    time.sleep(0.2)
    stored_at = time.time()
    counter = count_transactions(backend)
    assert backend.get_many(["a", "large", "short", "absent"]) == {"a": b"1", "large": large}
    assert counter.transactions == 1
    with sqlite3.connect(tmp_path / "cache.db") as connection:
        ((accessed,),) = connection.execute(
            "SELECT access_time FROM Cache WHERE key = ?", (backend.server_key("a"),)
        ).fetchall()
    assert accessed >= stored_at, "the read was recorded for least-recently-used eviction"


def test_fractions_of_a_second_are_kept(tmp_path):
    backend = DiskBackend(str(tmp_path), key_prefix="frac")
    backend.set_many({"brief": b"1"}, timeout=0.2)
    backend.set_many({"kept": b"2"}, timeout=30)
    assert backend.get_many(["brief", "kept"]) == {"brief": b"1", "kept": b"2"}
    time.sleep(0.3)
    assert backend.get_many(["brief", "kept"]) == {"kept": b"2"}


def _value_files(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*.val")]


@pytest.mark.parametrize("shards", [None, 2], ids=["one-database", "two-shards"])
def test_large_values_live_in_files_that_are_removed_with_their_entries(tmp_path, shards):
    options = {} if shards is None else {"shards": shards}
    backend = DiskBackend(str(tmp_path), key_prefix="files", options=options)
    neighbour = DiskBackend(str(tmp_path), key_prefix="other", options=options)
    large = {f"big{i}": bytes([i]) * 100_000 for i in range(4)}
    backend.set_many(large)
    neighbour.set_many({"big": b"n" * 100_000})
    assert backend.get_many(list(large)) == large
    assert len(_value_files(tmp_path)) == 5

    backend.set_many({"big0": b"small now"})
    backend.delete_many(["big1"])
    assert len(_value_files(tmp_path)) == 3
    backend.clear()
    assert len(_value_files(tmp_path)) == 1, "only the other prefix's file is left"
    assert neighbour.get_many(["big"]) == {"big": b"n" * 100_000}


def test_entries_are_tagged_with_the_prefix(tmp_path):
    backend = DiskBackend(str(tmp_path), key_prefix="tagged")
    backend.set_many({"k": b"v"})
    cache = Cache(str(tmp_path))
    try:
        assert cache.get(backend.server_key("k"), tag=True) == (b"v", "tagged")
    finally:
        cache.close()
