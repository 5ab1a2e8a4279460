"""A circuit breaker in front of a backend, so a dead server costs nothing per request.

Without it, every request during an outage would wait for the client's connect timeout
before falling back to the database. After ``failures`` consecutive
:class:`~drf_instcache.exceptions.BackendUnavailable` errors the breaker *opens*: calls
fail at once, without touching the network. While it is open a background thread
probes the server every ``reset_after`` seconds (one cheap read of a key nobody
writes); the first probe that succeeds closes the breaker. So no request ever waits
for a dead server's timeout, and the breaker learns that the server answers again
within ``reset_after`` of its return, whether or not requests come in meanwhile: the
first read of a key after that refills it, the next one hits.

With ``background_probe=False`` (no threads) the old way applies: after ``reset_after``
seconds one call is let through as a probe (*half-open*); its success closes the
breaker, its failure opens it again.

The breaker logs its transitions at DEBUG only: the one WARNING an outage gets, and
the INFO line when it ends, come from the core (:mod:`drf_instcache.core.outage`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from drf_instcache.backends.base import (
    Backend,
    LeasingBackend,
    fill_many,
    fill_many_quietly,
    get_many_claiming,
    supports_leases,
)
from drf_instcache.exceptions import BackendUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"

PROBE_KEY = "circuit-probe"
"""The key a background probe reads (nothing writes it; a miss is a success)."""


class CircuitOpen(BackendUnavailable):
    """Raised without a network call while the breaker is open."""


class CircuitBreakerBackend:
    """Wrap a :class:`Backend`; same protocol, fails fast while the server is down.

    Wrapping a backend with the optional conditional writes of
    :class:`~drf_instcache.backends.base.LeasingBackend` gives a
    :class:`LeasingCircuitBreakerBackend`, which offers them too, with the same failure
    accounting: the breaker never hides or adds a capability.
    """

    def __new__(cls, backend: Backend, **kwargs: Any) -> CircuitBreakerBackend:
        if cls is CircuitBreakerBackend and supports_leases(backend):
            cls = LeasingCircuitBreakerBackend
        return super().__new__(cls)

    def __init__(
        self,
        backend: Backend,
        *,
        failures: int = 3,
        reset_after: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        background_probe: bool = True,
    ) -> None:
        if failures < 1:
            raise ValueError(f"failures must be at least 1, not {failures!r}")
        if reset_after <= 0:
            raise ValueError(f"reset_after must be positive, not {reset_after!r}")
        self.backend = backend
        self.failures = failures
        self.reset_after = reset_after
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self.background_probe = background_probe
        self._prober: threading.Thread | None = None
        self._closing = threading.Event()

    @property
    def state(self) -> str:
        """``closed``, ``open`` or (request probes only) ``half-open``, as of now."""
        with self._lock:
            waited = self._clock() - self._opened_at
            if self._state == OPEN and not self.background_probe and waited >= self.reset_after:
                return HALF_OPEN
            return self._state

    def _admit(self) -> bool:
        """Decide whether a call may reach the server; returns True for a probe call."""
        with self._lock:
            if self._state == CLOSED:
                return False
            if self.background_probe:
                self._ensure_prober()  # a forked child inherits the state, not the thread
                raise CircuitOpen(
                    f"cache backend skipped after {self.failures} consecutive failures, "
                    f"probed every {self.reset_after:g}s ({self.backend!r})"
                )
            waited = self._clock() - self._opened_at
            if waited >= self.reset_after and not self._probe_in_flight:
                self._probe_in_flight = True
                return True
            remaining = max(0.0, self.reset_after - waited)
            raise CircuitOpen(
                f"cache backend skipped for {remaining:.1f}s more after "
                f"{self.failures} consecutive failures ({self.backend!r})"
            )

    def _record(self, ok: bool, probe: bool) -> None:
        with self._lock:
            if probe:
                self._probe_in_flight = False
            if ok:
                if self._state != CLOSED:
                    logger.debug("cache backend %r answers again; circuit closed", self.backend)
                self._state = CLOSED
                self._consecutive_failures = 0
                return
            self._consecutive_failures += 1
            if probe or self._consecutive_failures >= self.failures:
                if self._state == CLOSED:
                    logger.debug(
                        "cache backend %r failed %d times in a row; circuit open, probed "
                        "every %.1fs",
                        self.backend,
                        self._consecutive_failures,
                        self.reset_after,
                    )
                self._state = OPEN
                self._opened_at = self._clock()
                if self.background_probe:
                    self._ensure_prober()

    # -- the background probe ---------------------------------------------------------
    def _ensure_prober(self) -> None:
        """Start the probing thread unless it runs (called with the lock held)."""
        if self._closing.is_set() or (self._prober is not None and self._prober.is_alive()):
            return
        self._prober = threading.Thread(
            target=self._probe_until_closed, name="drf-instcache-circuit-probe", daemon=True
        )
        self._prober.start()

    def _probe_until_closed(self) -> None:
        """Every ``reset_after`` seconds, read one key; close the breaker when it works."""
        while not self._closing.wait(self.reset_after):
            with self._lock:
                if self._state != OPEN:
                    return
            try:
                self.backend.get_many([PROBE_KEY])
            except BackendUnavailable as error:
                logger.debug("cache backend %r still unavailable: %s", self.backend, error)
                continue
            except Exception:
                pass  # not an outage: the server answered
            self._record(ok=True, probe=False)
            return

    def _call(self, operation: Callable[[], T]) -> T:
        probe = self._admit()
        try:
            result = operation()
        except BackendUnavailable:
            self._record(ok=False, probe=probe)
            raise
        except BaseException:
            # Not an outage (bad input, value too large): the server answered.
            self._record(ok=True, probe=probe)
            raise
        self._record(ok=True, probe=probe)
        return result

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        return self._call(lambda: self.backend.get_many(keys))

    def set_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> None:
        if not items:
            return
        self._call(lambda: self.backend.set_many(items, timeout))

    def delete_many(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        self._call(lambda: self.backend.delete_many(keys))

    def clear(self) -> None:
        self._call(self.backend.clear)

    def close(self) -> None:
        self._closing.set()
        self.backend.close()

    def __getattr__(self, name: str) -> Any:
        # Optional capabilities of the wrapped adapter (add_many, stats...) stay reachable.
        return getattr(self.backend, name)

    def __repr__(self) -> str:
        return f"<CircuitBreakerBackend {self.state} {self.backend!r}>"


class LeasingCircuitBreakerBackend(CircuitBreakerBackend):
    """A circuit breaker in front of a backend that offers conditional writes."""

    backend: LeasingBackend

    def add_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> list[str]:
        if not items:
            return []
        return self._call(lambda: self.backend.add_many(items, timeout))

    def compare_and_set_many(
        self, items: Mapping[str, tuple[bytes, bytes]], timeout: float | None = None
    ) -> list[str]:
        if not items:
            return []
        return self._call(lambda: self.backend.compare_and_set_many(items, timeout))

    def get_many_claiming(
        self, keys: Sequence[str], lease: bytes, timeout: float | None
    ) -> tuple[dict[str, bytes], list[str]]:
        if not keys:
            return {}, []
        return self._call(lambda: get_many_claiming(self.backend, keys, lease, timeout))

    def fill_many(
        self, lease: bytes, items: Mapping[str, bytes], timeout: float | None = None
    ) -> list[str]:
        if not items:
            return []
        return self._call(lambda: fill_many(self.backend, lease, items, timeout))

    def fill_many_quietly(
        self, lease: bytes, items: Mapping[str, bytes], timeout: float | None = None
    ) -> None:
        if items:
            self._call(lambda: fill_many_quietly(self.backend, lease, items, timeout))
