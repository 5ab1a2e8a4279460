"""Every backend call, reported to observers: metrics, traces, outage logs, the panel.

:class:`ObservedBackend` wraps the configured backend (inside the near cache, outside
the circuit breaker, so a call the breaker refuses is seen as a failed call) and tells
each observer what every call did: its operation, keys, duration, hits and error. The
backends sit below the layers that observe them, so those register here
(:func:`add_observer`) instead of being imported; with no observer a call costs two
clock reads more.

An observer must be quick and must not raise: one that does is logged once and the call
still returns its result.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from drf_instcache.backends.base import (
    Backend,
    LeasingBackend,
    fill_many,
    fill_many_quietly,
    get_many_claiming,
    supports_leases,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BackendCall:
    """What one backend call did."""

    backend: str
    """The backend's label (``redis``, ``memcached``, ``disk``, ``django``...)."""
    operation: str
    """``get_many``, ``set_many``, ``delete_many``, ``add_many``, ``compare_and_set_many``,
    ``get_many_claiming`` (a read that leases the empty keys), ``fill_many`` (the fill
    over one read's lease), ``clear``, or ``close`` (the backend is being discarded)."""
    keys: Sequence[str]
    """The keys asked for or written (not copied: read it, do not keep it)."""
    start_ns: int
    """Wall-clock start, in nanoseconds since the epoch (for trace spans)."""
    duration: float
    """Seconds the call took."""
    hits: int | None = None
    """Keys found, for ``get_many``; keys stored, for the conditional writes."""
    error: BaseException | None = None
    """What the call raised (``BackendUnavailable`` for an outage), or None."""
    source: int = 0
    """Which observed backend made the call (a serial number: a rebuilt backend, e.g.
    after a settings change, is a new source even with the same label)."""


Observer = Callable[[BackendCall], None]

_observers: tuple[Observer, ...] = ()
_serials = itertools.count(1)
_failed_observers: set[Observer] = set()
_lock = threading.Lock()


def add_observer(observer: Observer) -> None:
    """Report every later call of every observed backend to ``observer`` (idempotent)."""
    global _observers
    with _lock:
        if observer not in _observers:
            _observers = (*_observers, observer)


def remove_observer(observer: Observer) -> None:
    """Stop reporting to ``observer`` (no error when it was not registered)."""
    global _observers
    with _lock:
        _observers = tuple(each for each in _observers if each != observer)
        _failed_observers.discard(observer)


def _notify(call: BackendCall) -> None:
    for observer in _observers:
        try:
            observer(call)
        except Exception:
            if observer not in _failed_observers:
                _failed_observers.add(observer)
                logger.exception("drf-instcache: backend call observer %r failed", observer)


def label_of(backend: Any) -> str:
    """A short name for a chain of wrappers: its innermost adapter's class, without
    ``Backend`` (``RedisBackend`` -> ``redis``, ``DjangoCacheBackend`` -> ``djangocache``)."""
    adapter = backend
    while hasattr(adapter, "backend") and not isinstance(adapter, type):
        adapter = adapter.backend
    name = type(adapter).__name__.removesuffix("Backend")
    return name.lower() or "backend"


_VIEW = "_drf_instcache_observed"
"""Where :func:`observing` keeps a backend's observed view: on the backend itself, so
the view lives exactly as long as the backend (a reference cycle the GC collects)."""


def observing(backend: Backend) -> Backend:
    """``backend`` as the observers see it: itself when an :class:`ObservedBackend` is in
    its chain of wrappers (the configured backend), else one observed wrapper of it, the
    same each time (a backend a cache class was given)."""
    own = getattr(backend, "__dict__", None)
    if own is None:  # __slots__ only: left unobserved
        return backend
    view = own.get(_VIEW)
    if view is None:
        view = own[_VIEW] = backend if _observed_already(backend) else ObservedBackend(backend)
    return view


def _observed_already(backend: Any) -> bool:
    """Whether an :class:`ObservedBackend` is in the chain of wrappers (``.backend``)."""
    layer = backend
    while not isinstance(layer, ObservedBackend):
        layer = getattr(layer, "__dict__", {}).get("backend")
        if layer is None:
            return False
    return True


class ObservedBackend:
    """Wrap a :class:`Backend`: same protocol, every call reported to the observers.

    Wrapping a backend with the conditional writes of
    :class:`~drf_instcache.backends.base.LeasingBackend` gives a
    :class:`LeasingObservedBackend`, which offers (and reports) them too.
    """

    def __new__(cls, backend: Backend, **kwargs: Any) -> ObservedBackend:
        if cls is ObservedBackend and supports_leases(backend):
            cls = LeasingObservedBackend
        return super().__new__(cls)

    def __init__(self, backend: Backend, *, label: str | None = None) -> None:
        self.backend = backend
        self.label = label or label_of(backend)
        self.source = next(_serials)

    def _observe(
        self,
        operation: str,
        keys: Sequence[str],
        call: Callable[[], T],
        hits: Callable[[T], int] | None = None,
    ) -> T:
        start_ns = time.time_ns()
        started = time.perf_counter()
        found: int | None = None
        failure: BaseException | None = None
        try:
            result = call()
            if hits is not None and _observers:
                found = hits(result)
            return result
        except BaseException as error:
            failure = error
            raise
        finally:
            if _observers:
                duration = time.perf_counter() - started
                _notify(
                    BackendCall(
                        self.label, operation, keys, start_ns, duration, found, failure, self.source
                    )
                )

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        return self._observe("get_many", keys, lambda: self.backend.get_many(keys), len)

    def set_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> None:
        if not items:
            return
        self._observe("set_many", list(items), lambda: self.backend.set_many(items, timeout))

    def delete_many(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        self._observe("delete_many", keys, lambda: self.backend.delete_many(keys))

    def clear(self) -> None:
        self._observe("clear", (), self.backend.clear)

    def close(self) -> None:
        self._observe("close", (), self.backend.close)

    def __getattr__(self, name: str) -> Any:
        # Optional capabilities of the wrapped backend (state, stats...) stay reachable.
        return getattr(self.backend, name)

    def __repr__(self) -> str:
        return f"<ObservedBackend {self.label} {self.backend!r}>"


class LeasingObservedBackend(ObservedBackend):
    """An observed backend that offers (and reports) the conditional writes."""

    backend: LeasingBackend

    def add_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> list[str]:
        if not items:
            return []
        return self._observe(
            "add_many", list(items), lambda: self.backend.add_many(items, timeout), len
        )

    def compare_and_set_many(
        self, items: Mapping[str, tuple[bytes, bytes]], timeout: float | None = None
    ) -> list[str]:
        if not items:
            return []
        return self._observe(
            "compare_and_set_many",
            list(items),
            lambda: self.backend.compare_and_set_many(items, timeout),
            len,
        )

    def get_many_claiming(
        self, keys: Sequence[str], lease: bytes, timeout: float | None
    ) -> tuple[dict[str, bytes], list[str]]:
        if not keys:
            return {}, []
        return self._observe(
            "get_many_claiming",
            keys,
            lambda: get_many_claiming(self.backend, keys, lease, timeout),
            lambda result: len(result[0]),
        )

    def fill_many(
        self, lease: bytes, items: Mapping[str, bytes], timeout: float | None = None
    ) -> list[str]:
        if not items:
            return []
        return self._observe(
            "fill_many", list(items), lambda: fill_many(self.backend, lease, items, timeout), len
        )

    def fill_many_quietly(
        self, lease: bytes, items: Mapping[str, bytes], timeout: float | None = None
    ) -> None:
        if items:
            self._observe(
                "fill_many_quietly",
                list(items),
                lambda: fill_many_quietly(self.backend, lease, items, timeout),
                lambda _: len(items),
            )
