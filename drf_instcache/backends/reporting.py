"""Where adapters and wrappers report what they did (near-cache hits, flushes...).

The backends sit below the core, so they cannot import its counters; the app config
points :func:`count` at them once Django is ready (:func:`report_to`). Until then, and
in a process without the app, reports are dropped.
"""

from __future__ import annotations

from collections.abc import Callable

Count = Callable[[str, int], None]
"""``count(counter_name, amount)``."""


def _drop(name: str, amount: int = 1) -> None:
    """Report nothing."""


_sink: Count = _drop


def count(name: str, amount: int = 1) -> None:
    """Report ``amount`` events of ``name`` to wherever :func:`report_to` pointed."""
    _sink(name, amount)


def report_to(sink: Count) -> None:
    """Send every later report to ``sink`` (the core's counters)."""
    global _sink
    _sink = sink
