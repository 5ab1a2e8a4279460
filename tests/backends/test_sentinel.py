"""Redis Sentinel: URL parsing, and a failover against real processes.

The conformance suite runs on the sentinel configuration too (``redis-sentinel`` ids);
here the master goes away under a backend wrapped in the circuit breaker, as
``get_backend()`` builds it, and every call must either work or raise
``BackendUnavailable``, until calls work again on the promoted replica.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from drf_instcache.backends.sentinel import RedisSentinelBackend
from drf_instcache.breaker import CircuitBreakerBackend
from drf_instcache.exceptions import BackendUnavailable, ImproperlyConfigured
from drf_instcache.settings import build_backend, parse_setting
from drf_instcache.testing.redis_sentinel import RedisSentinelServers
from tests.servers import require_binary

RECOVERY_LIMIT = 30.0
"""Seconds within which calls must work again; a bound against hanging, not a timing."""


def test_url_names_sentinels_service_and_db():
    config = parse_setting(
        "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2/mymaster/2?socket_timeout=0.25"
    )
    assert config.backend == "drf_instcache.backends.sentinel.RedisSentinelBackend"
    assert config.location == [":s3cret@10.0.0.1:26379", "10.0.0.2:26379"]
    assert config.options == {"service_name": "mymaster", "db": 2, "socket_timeout": 0.25}
    backend = build_backend("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2/mymaster/2")
    assert isinstance(backend, RedisSentinelBackend)
    assert backend.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26379)]
    assert (backend.service_name, backend.db) == ("mymaster", 2)
    assert "s3cret" not in backend.describe()


def test_dict_form_takes_options():
    backend = build_backend(
        {
            "BACKEND": "drf_instcache.backends.sentinel.RedisSentinelBackend",
            "LOCATION": ["127.0.0.1:26380", "127.0.0.1"],
            "OPTIONS": {"service_name": "cache", "sentinel_password": "x", "db": 1},
        }
    )
    assert backend.sentinels == [("127.0.0.1", 26380), ("127.0.0.1", 26379)]
    assert (backend.service_name, backend.db) == ("cache", 1)


@pytest.mark.parametrize(
    "value",
    [
        "redis+sentinel://10.0.0.1:26379",  # no service name
        "redis+sentinel://10.0.0.1:26379/mymaster/zero",
        "redis+sentinel:///mymaster/0",  # no sentinel
        "redis+sentinel://10.0.0.1:26379/mymaster/0?cluster=true",
        {"BACKEND": "drf_instcache.backends.sentinel.RedisSentinelBackend", "LOCATION": "h:1"},
    ],
)
def test_bad_configurations_fail_at_start_up(value):
    with pytest.raises(ImproperlyConfigured):
        build_backend(value)


@pytest.fixture
def sentinel_servers() -> Iterator[RedisSentinelServers]:
    """A setup of its own: a failover changes which server is the master."""
    require_binary("redis-server")
    with RedisSentinelServers() as servers:
        yield servers


def _breaker_backend(servers: RedisSentinelServers) -> CircuitBreakerBackend:
    url = f"{servers.url}?prefix=f{uuid.uuid4().hex[:8]}"
    return CircuitBreakerBackend(build_backend(url), failures=3, reset_after=0.5)


def _until_working(backend: CircuitBreakerBackend, step: Callable[[], None]) -> list[str]:
    """Run ``step`` until it succeeds; return the errors seen (all BackendUnavailable)."""
    errors: list[str] = []
    deadline = time.monotonic() + RECOVERY_LIMIT
    while True:
        try:
            step()
            return errors
        except BackendUnavailable as error:  # anything else fails the test
            errors.append(type(error).__name__)
        if time.monotonic() > deadline:
            raise AssertionError(f"still failing after {RECOVERY_LIMIT}s: {errors[-5:]}")
        time.sleep(0.05)


@pytest.mark.slow
def test_sentinel_failover_keeps_reads_and_writes_working(sentinel_servers):
    backend = _breaker_backend(sentinel_servers)
    old_master = sentinel_servers.master_port()
    backend.set_many({"before": b"written before the failover"})
    new_master = sentinel_servers.failover()
    assert new_master != old_master

    def write_and_read() -> None:
        backend.set_many({"after": b"written after"})
        assert backend.get_many(["before", "after"]) == {
            "before": b"written before the failover",  # replicated, then promoted
            "after": b"written after",
        }

    _until_working(backend, write_and_read)
    assert backend.state == "closed"
    assert sentinel_servers.master_port() == new_master
    with redis.Redis("127.0.0.1", new_master) as promoted:  # the write landed there
        assert promoted.get(backend.server_key("after")) == b"written after"
    backend.close()


@pytest.mark.slow
def test_killed_master_fails_fast_then_the_promoted_replica_serves(sentinel_servers):
    backend = _breaker_backend(sentinel_servers)
    backend.set_many({"before": b"v"})
    killed = sentinel_servers.kill_master()
    errors: list[str] = []
    for _ in range(5):  # the master is gone: every call fails cleanly
        with pytest.raises(BackendUnavailable) as raised:
            backend.get_many(["before"])
        errors.append(type(raised.value).__name__)
    assert "CircuitOpen" in errors, "the breaker opened and skipped the dead master"

    def write_and_read() -> None:
        backend.set_many({"after": b"w"})
        assert backend.get_many(["after"]) == {"after": b"w"}

    _until_working(backend, write_and_read)
    assert sentinel_servers.master_port() != killed
    assert backend.state == "closed"
    backend.close()


@pytest.fixture
def guarded_sentinel_servers() -> Iterator[RedisSentinelServers]:
    """Data servers with a password, and a sentinel with a password of its own."""
    require_binary("redis-server")
    with RedisSentinelServers(password="data-secret", sentinel_password="sentinel-secret") as s:
        yield s


def test_sentinel_and_master_passwords_from_url_and_options(guarded_sentinel_servers):
    servers = guarded_sentinel_servers
    sentinel = f"127.0.0.1:{servers.sentinel_port}"
    from_url = build_backend(
        f"redis+sentinel://:data-secret@{sentinel}/mymaster/0"
        "?sentinel_password=sentinel-secret&prefix=auth-url&sentinel_socket_timeout=0.3"
    )
    from_dict = build_backend(
        {
            "BACKEND": "drf_instcache.backends.sentinel.RedisSentinelBackend",
            "LOCATION": [sentinel],
            "OPTIONS": {
                "service_name": "mymaster",
                "sentinel_password": "sentinel-secret",
                "client_options": {"password": "data-secret"},
            },
            "KEY_PREFIX": "auth-dict",
        }
    )
    for backend in (from_url, from_dict):
        backend.set_many({"k": b"v"})
        assert backend.get_many(["k"]) == {"k": b"v"}
        backend.clear()
        backend.close()
    no_sentinel_password = build_backend(f"redis+sentinel://:data-secret@{sentinel}/mymaster/0")
    wrong_master_password = build_backend(
        f"redis+sentinel://:wrong@{sentinel}/mymaster/0?sentinel_password=sentinel-secret"
    )
    for backend in (no_sentinel_password, wrong_master_password):
        with pytest.raises(BackendUnavailable):
            backend.get_many(["k"])
        backend.close()
