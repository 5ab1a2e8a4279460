"""The disk adapter, as one diskcache database and as four shards, as configurations.

Both live in one temporary directory per session (tests use unique prefixes, so they do
not see each other's entries). There is no server to count requests on, so a "round
trip" is a SQLite transaction, read on diskcache's own connections with
``sqlite3.Connection.set_trace_callback``: an explicit ``BEGIN ... COMMIT`` counts once,
and a statement run outside one (SQLite's implicit transaction) counts once.
"""

from __future__ import annotations

import sqlite3
import weakref
from pathlib import Path
from typing import Any

import pytest

from drf_instcache.backends.disk import DiskBackend
from tests.backends.adapters import AdapterUnderTest

__all__ = ["adapter_disk", "adapter_disk_fanout", "disk_directory"]

FANOUT_SHARDS = 4


class SQLiteTransactionCounter:
    """Counts transactions on the SQLite connections it is attached to."""

    def __init__(self) -> None:
        self.transactions = 0
        self._open: weakref.WeakKeyDictionary[sqlite3.Connection, bool] = (
            weakref.WeakKeyDictionary()
        )

    def attach(self, connection: sqlite3.Connection) -> None:
        in_transaction = False

        def trace(statement: str) -> None:
            nonlocal in_transaction
            verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
            if verb == "BEGIN":
                in_transaction = True
                self.transactions += 1
            elif verb in ("COMMIT", "END", "ROLLBACK"):
                in_transaction = False
            elif not in_transaction:
                self.transactions += 1

        connection.set_trace_callback(trace)


def count_transactions(backend: DiskBackend) -> SQLiteTransactionCounter:
    """Attach a counter to the connections ``backend`` uses in this thread."""
    counter = SQLiteTransactionCounter()
    for cache in backend.caches:
        # diskcache keeps one connection per thread; this is the calling thread's.
        counter.attach(cache._con)
    return counter


CONFORMANCE_LOCK_TIMEOUT = 10.0
"""Seconds a writer may wait for SQLite's lock in the conformance suite. Its thread test
checks that threads never see each other's data; with the default 1 s, eight threads on
a loaded 2-CPU machine time out waiting (a BackendUnavailable, as in production) and the
test would measure the machine instead of the adapter."""


def _disk_adapter(config_id: str, directory: Path, shards: int | None) -> AdapterUnderTest:
    options: dict[str, Any] = {"lock_timeout": CONFORMANCE_LOCK_TIMEOUT}
    if shards is not None:
        options["shards"] = shards

    def make(**kwargs: Any) -> DiskBackend:
        return DiskBackend(
            str(directory), options={**options, **kwargs.pop("options", {})}, **kwargs
        )

    def round_trips(backend: DiskBackend):
        counter = count_transactions(backend)
        return lambda: counter.transactions

    return AdapterUnderTest(id=config_id, make=make, round_trips=round_trips, servers=shards or 1)


@pytest.fixture(scope="session")
def disk_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instcache-disk")


@pytest.fixture
def adapter_disk(disk_directory: Path) -> AdapterUnderTest:
    return _disk_adapter("disk", disk_directory / "single", None)


@pytest.fixture
def adapter_disk_fanout(disk_directory: Path) -> AdapterUnderTest:
    return _disk_adapter("disk-fanout", disk_directory / "fanout", FANOUT_SHARDS)
