"""Outage logging by transition: what an operator reads while the cache server is down.

One WARNING when a backend stops answering (its first failed call), one INFO when it
answers again, and in between at most one summary every :data:`SUMMARY_INTERVAL`
seconds ("still unavailable ... N requests served from the database"). Each failed
call is counted (``errors``, ``fallbacks``) and logged at DEBUG only, so an outage of
any length costs two lines, plus one a minute while it lasts.

The transitions come from the calls themselves: this module observes every call of
the configured backend (:mod:`drf_instcache.backends.observed`; :func:`observe` is
registered when this module is imported, which the core's request accounting does),
so a call the circuit breaker refuses counts as a failure and the first call that
works ends the outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from drf_instcache.backends.observed import BackendCall, add_observer
from drf_instcache.core import counters
from drf_instcache.exceptions import BackendUnavailable

logger = logging.getLogger(__name__)

SUMMARY_INTERVAL = 60.0
"""Seconds between two "still unavailable" summaries of one outage."""


@dataclass
class Outage:
    """One backend's outage, from its first failed call to its first working one."""

    backend: str
    started: float
    """``time.monotonic()`` of the first failure."""
    fallbacks_before: int
    """The ``fallbacks`` counter when it began (instances served from the database)."""
    failed_calls: int = 1
    requests: int = 0
    """Requests of cached views that fell back to the database meanwhile."""
    last_summary: float = 0.0
    requests_at_summary: int = 0


_lock = threading.Lock()
_outages: dict[str, Outage] = {}


def current() -> dict[str, Outage]:
    """The backends unavailable now, by label (a copy)."""
    with _lock:
        return dict(_outages)


def observe(call: BackendCall) -> None:
    """Follow one backend call: a failure may start an outage, a success ends one."""
    if call.error is None:
        if _outages and call.backend in _outages:
            _recovered(call.backend)
    elif isinstance(call.error, BackendUnavailable):
        _failed(call)


def note_request(counts: Mapping[str, int]) -> None:
    """Count a finished request that was served (partly) from the database."""
    if not _outages or not (counts.get("fallbacks") or counts.get("errors")):
        return
    with _lock:
        for outage in _outages.values():
            outage.requests += 1


def _failed(call: BackendCall) -> None:
    now = time.monotonic()
    summary: tuple[Outage, int, float] | None = None
    with _lock:
        outage = _outages.get(call.backend)
        if outage is None:
            outage = Outage(call.backend, now, _fallbacks(), last_summary=now)
            _outages[call.backend] = outage
            first = True
        else:
            first = False
            outage.failed_calls += 1
            if now - outage.last_summary >= SUMMARY_INTERVAL:
                summary = (
                    outage,
                    outage.requests - outage.requests_at_summary,
                    now - outage.last_summary,
                )
                outage.last_summary = now
                outage.requests_at_summary = outage.requests
    if first:
        logger.warning(
            "drf-instcache: cache backend %s is unavailable (%s failed: %s); serving from "
            "the database until it answers again",
            call.backend,
            call.operation,
            call.error,
        )
    elif summary is not None:
        outage, requests, period = summary
        logger.warning(
            "drf-instcache: cache backend %s still unavailable after %.0fs: %d request(s) "
            "served from the database in the last %.0fs, %d failed call(s) in all",
            outage.backend,
            now - outage.started,
            requests,
            period,
            outage.failed_calls,
        )


def _recovered(backend: str) -> None:
    with _lock:
        outage = _outages.pop(backend, None)
    if outage is None:
        return  # another thread logged it
    logger.info(
        "drf-instcache: cache backend %s answers again after %.1fs; %d request(s) and "
        "%d instance(s) were served from the database meanwhile (%d failed call(s))",
        backend,
        time.monotonic() - outage.started,
        outage.requests,
        max(0, _fallbacks() - outage.fallbacks_before),
        outage.failed_calls,
    )


def _fallbacks() -> int:
    return counters.snapshot().get("fallbacks", 0)


def reset() -> None:
    """Forget every outage (tests; a rebuilt backend starts afresh)."""
    with _lock:
        _outages.clear()


add_observer(observe)
