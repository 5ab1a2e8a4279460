"""Fixtures for the reliability tests: every backend configuration, real data, threads.

The ``adapter`` parametrization of the conformance suite (``tests/backends``) is reused
as is, so a test asking for ``backend`` runs once per configuration (Redis single and
Cluster, Memcached one and three servers, disk single and sharded, Django cache over
locmem and over Redis, locmem). Databases are real (PostgreSQL when it answers) and
used with ``transaction=True`` wherever threads are involved: each thread has its own
connection and sees only committed rows, as concurrent requests do.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from example.polls.cache import PollCache
from tests.backends.config_django import django_redis_cache_config
from tests.backends.conftest import *  # noqa: F403  (the adapter parametrization and fixtures)
from tests.backends.conftest import pytest_configure, pytest_generate_tests  # noqa: F401


class Gate:
    """Pauses a thread at a chosen point until the test lets it go on.

    ``pause()`` (called by the paused thread) signals ``reached`` and waits for
    ``release()``; a test thus orders "reader loaded the row" before "writer commits",
    deterministically, without sleeping.
    """

    def __init__(self) -> None:
        self.reached = threading.Event()
        self._released = threading.Event()

    def pause(self) -> None:
        self.reached.set()
        if not self._released.wait(timeout=30):
            raise TimeoutError("the test never released the gate")

    def wait_reached(self) -> None:
        assert self.reached.wait(timeout=30), "the paused thread never reached the gate"

    def release(self) -> None:
        self._released.set()


class InstrumentedPollCache(PollCache):
    """The example's cache, counting database loads and optionally pausing after them.

    The pause comes after the rows were read and before the core stores what it
    serialized: the window of the cache-aside race.
    """

    def __init__(self, *args: Any, gate: Gate | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = gate
        self.loads = 0
        self._lock = threading.Lock()

    def _loaded(self) -> None:
        with self._lock:
            self.loads += 1
        if self.gate is not None:
            self.gate.pause()

    def question_default_loader(self, pk: Any) -> Any:
        obj = super().question_default_loader(pk)
        self._loaded()
        return obj

    def question_default_loader_many(self, pks: list[Any]) -> Any:
        objects = super().question_default_loader_many(pks)
        self._loaded()
        return objects


class Worker(threading.Thread):
    """Run ``target`` in a thread with its own database connection; keep its outcome."""

    def __init__(self, target: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._target_call = target
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._target_call()
        except BaseException as error:  # reported by outcome()
            self.error = error
        finally:
            connections.close_all()

    def outcome(self, timeout: float = 60) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "worker thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def started(target: Callable[[], Any]) -> Worker:
    worker = Worker(target)
    worker.start()
    return worker


@pytest.fixture
def gate() -> Gate:
    gate = Gate()
    yield gate
    gate.release()  # never leave a thread blocked


def backend_url(request: pytest.FixtureRequest, settings: Any, configuration: str) -> str:
    """A fresh namespace of ``configuration`` as a ``DRF_INSTCACHE_BACKEND`` URL."""
    prefix = f"rel{uuid.uuid4().hex[:10]}"
    if configuration == "locmem":
        return f"locmem://reliability?prefix={prefix}"
    if configuration == "disk":
        directory: Path = request.getfixturevalue("disk_directory")
        return f"disk://{directory / 'reliability'}?prefix={prefix}"
    if configuration == "redis":
        return f"{request.getfixturevalue('redis_server').url}?prefix={prefix}"
    if configuration == "redis-cluster":
        nodes = request.getfixturevalue("redis_cluster_servers").nodes
        return f"redis+cluster://{','.join(nodes)}?prefix={prefix}"
    if configuration == "memcached":
        return f"memcached://{request.getfixturevalue('memcached_server').address}?prefix={prefix}"
    if configuration == "memcached-3":
        servers = request.getfixturevalue("memcached_servers_3")
        return f"memcached://{','.join(s.address for s in servers)}?prefix={prefix}"
    if configuration == "django-redis":
        server = request.getfixturevalue("redis_server")
        settings.CACHES = {**settings.CACHES, "reliability": django_redis_cache_config(server)}
        return f"django://reliability?prefix={prefix}"
    raise ValueError(configuration)


def server_controls(
    request: pytest.FixtureRequest, configuration: str
) -> tuple[Callable[[], None], Callable[[], None]]:
    """``(stop, start)`` of the server(s) behind a configuration of :func:`backend_url`."""
    if configuration in ("redis", "django-redis"):
        server = request.getfixturevalue("redis_server")
        return server.stop, server.start
    if configuration == "redis-cluster":
        cluster = request.getfixturevalue("redis_cluster_servers")
        return cluster.stop, cluster.start
    if configuration == "memcached":
        server = request.getfixturevalue("memcached_server")
        return server.stop, server.start
    if configuration == "memcached-3":
        servers = request.getfixturevalue("memcached_servers_3")
        return (lambda: [s.stop() for s in servers]), (lambda: [s.start() for s in servers])
    raise ValueError(f"{configuration} has no server to stop")
