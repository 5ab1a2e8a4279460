"""Promise 1: a dead or hung cache server never breaks a request.

Reads fall back to the database, writes are dropped (the outage is logged once), and
the circuit breaker stops paying the connect timeout on every call: after ``FAILURES``
consecutive failures it skips the backend, and probes it every ``RESET_AFTER`` seconds
in the background (or, without the background probe, lets one call through then). The
server coming back is picked up by the same process, and the invalidations it missed
are replayed, so a server that kept its data while it was unreachable does not serve
what changed meanwhile.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from rest_framework.test import APIClient

from drf_instcache import settings as instcache_settings
from drf_instcache.breaker import CircuitBreakerBackend, CircuitOpen
from drf_instcache.exceptions import BackendUnavailable
from example.polls.cache import PollCache
from example.polls.models import Question
from tests.api.conftest import make_polls
from tests.reliability.conftest import backend_url, server_controls

SERVER_CONFIGURATIONS = ["redis", "redis-cluster", "memcached", "memcached-3", "django-redis"]
BREAKER = {"FAILURES": 2, "RESET_AFTER": 0.3}


class ManualClock:
    """A clock the test moves by hand, so "T seconds later" takes no time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CallsReachingTheBackend:
    """Forwards every call to a real backend and counts those that got that far."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def _count(self) -> None:
        self.calls += 1

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        self._count()
        return self.inner.get_many(keys)

    def set_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> None:
        self._count()
        self.inner.set_many(items, timeout)

    def delete_many(self, keys: Sequence[str]) -> None:
        self._count()
        self.inner.delete_many(keys)

    def clear(self) -> None:
        self.inner.clear()

    def close(self) -> None:
        self.inner.close()


def eventually(check: Callable[[], Any], seconds: float = 20) -> Any:
    """Retry ``check`` until it stops raising: servers take a moment to accept again."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except (AssertionError, BackendUnavailable):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.needs_server
def test_breaker_skips_a_dead_server_after_k_failures_then_probes(adapter, backend):
    clock = ManualClock()
    reaching = CallsReachingTheBackend(backend)
    breaker = CircuitBreakerBackend(
        reaching, failures=3, reset_after=5.0, clock=clock, background_probe=False
    )
    breaker.set_many({"k": b"v"})
    adapter.stop()
    try:
        for _ in range(3):
            with pytest.raises(BackendUnavailable) as raised:
                breaker.get_many(["k"])
            assert not isinstance(raised.value, CircuitOpen)
        assert reaching.calls == 1 + 3
        for _ in range(50):
            with pytest.raises(CircuitOpen):
                breaker.get_many(["k"])
        assert reaching.calls == 1 + 3, "an open breaker does not touch the server"
        assert breaker.state == "open"

        clock.advance(5.0)
        assert breaker.state == "half-open"
        with pytest.raises(BackendUnavailable):
            breaker.get_many(["k"])  # the probe reaches the server, which is still down
        assert reaching.calls == 1 + 3 + 1
        assert breaker.state == "open"
    finally:
        adapter.start()

    def probe_succeeds() -> None:
        clock.advance(5.0)
        breaker.set_many({"after": b"restart"})

    eventually(probe_succeeds)
    assert breaker.state == "closed"
    assert breaker.get_many(["after"]) == {"after": b"restart"}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("configuration", SERVER_CONFIGURATIONS)
def test_api_requests_survive_a_stopped_server_and_use_it_again(
    request, settings, caplog, configuration
):
    settings.DRF_INSTCACHE_BACKEND = backend_url(request, settings, configuration)
    settings.DRF_INSTCACHE_CIRCUIT_BREAKER = BREAKER
    stop, start = server_controls(request, configuration)
    polls = make_polls(questions=3, choices=2, users=3)
    question = polls.questions[0]
    api = APIClient()
    paths = [
        "/api/questions/",
        f"/api/questions/{question.pk}/",
        "/api/choices/",
        f"/api/choices/{polls.choices[1].pk}/",
        f"/api/users/{polls.users[2].pk}/",
    ]

    def check_every_path() -> None:
        for path in paths:
            response = api.get(path)
            assert response.status_code == 200, (path, response.content[:200])
            assert response.json() == api.get(path.replace("/api/", "/api/plain/")).json()

    check_every_path()  # warm
    backend = instcache_settings.get_backend()
    cache = PollCache()
    key = cache.key_for("default", "question", question.pk)
    assert backend.get_many([key]), "warmed"

    stop()
    try:
        with caplog.at_level(logging.WARNING, logger="drf_instcache"):
            for round_number in range(3):
                check_every_path()
                changed = api.patch(
                    f"/api/questions/{question.pk}/",
                    {"question_text": f"Changed during the outage {round_number}?"},
                    format="json",
                )
                assert changed.status_code == 200
            check_every_path()
        assert isinstance(backend.backend, CircuitBreakerBackend)  # inside the observer
        assert backend.state in ("open", "half-open")
    finally:
        start()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings  # the outage, once: not once per request
    assert "is unavailable" in warnings[0]
    assert "serving from the database" in warnings[0]

    def cached_again() -> None:
        check_every_path()
        raw = backend.get_many([key]).get(key)
        assert raw is not None
        cached = cache.decode_entry("question", "default", raw)
        assert cached["question_text"] == "Changed during the outage 2?"

    eventually(cached_again)
    assert instcache_settings.get_backend() is backend, "same process, same backend object"


def server_pid(request: pytest.FixtureRequest, configuration: str) -> int:
    if configuration == "redis":
        return request.getfixturevalue("redis_server").pid
    server = request.getfixturevalue("memcached_server")
    return server._executor.process.pid  # MemcachedServer keeps its process there


@contextmanager
def paused(pid: int) -> Iterator[None]:
    """A hung server: the process exists, keeps its data, and answers nothing."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("configuration", ["redis", "memcached"])
def test_a_hung_server_never_fails_a_request_nor_serves_what_changed_meanwhile(
    request, settings, caplog, configuration
):
    settings.DRF_INSTCACHE_BACKEND = backend_url(request, settings, configuration)
    settings.DRF_INSTCACHE_CIRCUIT_BREAKER = BREAKER
    question = Question.objects.create(
        question_text="Before the hang?", pub_date="2024-05-01T12:00:00Z"
    )
    api = APIClient()
    path = f"/api/questions/{question.pk}/"
    assert api.get(path).json()["question_text"] == "Before the hang?"  # now cached

    with paused(server_pid(request, configuration)), caplog.at_level(logging.WARNING):
        assert api.get(path).status_code == 200
        changed = api.patch(path, {"question_text": "During the hang?"}, format="json")
        assert changed.status_code == 200
        for _ in range(3):
            response = api.get(path)
            assert response.status_code == 200
            assert response.json()["question_text"] == "During the hang?"
    assert any("failed" in record.getMessage() for record in caplog.records)

    # The server is back with its old data; the missed invalidation is replayed first.
    time.sleep(BREAKER["RESET_AFTER"] + 0.1)

    def fresh_and_cached() -> None:
        assert api.get(path).json()["question_text"] == "During the hang?"
        key = PollCache().key_for("default", "question", question.pk)
        assert instcache_settings.get_backend().get_many([key])

    eventually(fresh_and_cached)
