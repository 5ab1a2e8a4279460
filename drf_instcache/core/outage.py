"""Outage logging by transition: what an operator reads while the cache server is down.

One WARNING when a backend stops answering (its first failed call), one INFO when it
answers again, and in between at most one summary every :data:`SUMMARY_INTERVAL`
seconds ("still unavailable ... N requests served from the database"). Each failed
call is counted (``errors``, ``fallbacks``) and logged at DEBUG only, so an outage of
any length costs two lines, plus one a minute while it lasts.

A backend that flaps (fails again within :data:`FLAP_WINDOW` of answering again:
reads work but writes fail, a server at its memory limit...) would log a pair per
request; its further outages are logged at DEBUG, with one WARNING summary per interval
("keeps failing intermittently: N failed calls in M short outages").

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
"""Seconds between two summaries: of one long outage, or of a flapping backend's."""

FLAP_WINDOW = 60.0
"""An outage that begins within this many seconds of the previous one's end is a flap."""


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
    quiet: bool = False
    """Began soon after the previous one ended (flapping): logged at DEBUG only."""


@dataclass
class Flapping:
    """Short outages of one backend since the last summary of them."""

    since: float
    outages: int = 0
    failed_calls: int = 0


_lock = threading.Lock()
_outages: dict[int, Outage] = {}
"""By source (:attr:`~drf_instcache.backends.observed.BackendCall.source`)."""
_recovered_at: dict[int, float] = {}
_flapping: dict[int, Flapping] = {}


def current() -> list[Outage]:
    """The outages going on now."""
    with _lock:
        return list(_outages.values())


def observe(call: BackendCall) -> None:
    """Follow one backend call: a failure may start an outage, a success ends one."""
    if call.operation == "close":
        with _lock:  # discarded: nobody waits for it to answer
            _outages.pop(call.source, None)
            _recovered_at.pop(call.source, None)
            _flapping.pop(call.source, None)
    elif call.error is None:
        if _outages and call.source in _outages:
            _recovered(call.source)
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
    flaps: Flapping | None = None
    with _lock:
        outage = _outages.get(call.source)
        if outage is None:
            recovered = _recovered_at.get(call.source)
            quiet = recovered is not None and now - recovered < FLAP_WINDOW
            outage = Outage(call.backend, now, _fallbacks(), last_summary=now, quiet=quiet)
            _outages[call.source] = outage
            first = not quiet
            if quiet:
                flapping = _flapping.setdefault(call.source, Flapping(since=recovered or now))
                flapping.outages += 1
                flapping.failed_calls += 1
                if now - flapping.since >= SUMMARY_INTERVAL:
                    flaps, _flapping[call.source] = flapping, Flapping(since=now)
        else:
            first = False
            outage.failed_calls += 1
            if outage.quiet and call.source in _flapping:
                _flapping[call.source].failed_calls += 1
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
    elif flaps is not None:
        logger.warning(
            "drf-instcache: cache backend %s keeps failing intermittently: %d failed "
            "call(s) in %d short outage(s) over the last %.0fs (%s failed: %s)",
            call.backend,
            flaps.failed_calls,
            flaps.outages,
            now - flaps.since,
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


def _recovered(source: int) -> None:
    with _lock:
        outage = _outages.pop(source, None)
        _recovered_at[source] = time.monotonic()
    if outage is None:
        return  # another thread logged it
    if outage.quiet:
        logger.debug("drf-instcache: cache backend %s answers again", outage.backend)
        return
    logger.info(
        "drf-instcache: cache backend %s answers again after %.1fs; %d request(s) and "
        "%d instance(s) were served from the database meanwhile (%d failed call(s))",
        outage.backend,
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
        _recovered_at.clear()
        _flapping.clear()


add_observer(observe)
