"""Repeat a call, time it, and summarise the repeats as a median with its spread.

Every figure the harness reports is the median of several *repeats*; each repeat is the
mean time of ``number`` calls, with ``number`` calibrated so that a repeat lasts long
enough for the clock to be precise. Competing implementations of the same operation
(adapter vs raw client) are measured *interleaved*, repeat by repeat, so drift on the
machine (another process waking up, CPU frequency) hits both alike and the ratio of the
two, computed per repeat, stays meaningful within one run.

Each call may have an untimed ``setup`` (re-populating keys a delete removed, emptying
the cache before a cold read): only the call itself is on the clock.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Plan:
    """How hard to measure: repeats per figure and the target duration of one repeat."""

    repeats: int = 7
    min_repeat_time: float = 0.05
    max_number: int = 10_000
    warmup_calls: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "repeats": self.repeats,
            "min_repeat_time_s": self.min_repeat_time,
            "max_calls_per_repeat": self.max_number,
            "warmup_calls": self.warmup_calls,
        }


@dataclass(frozen=True)
class Case:
    """One operation to time: ``call`` is on the clock, ``setup`` (if any) runs before it."""

    call: Callable[[], object]
    setup: Callable[[], object] | None = None


@dataclass
class Timing:
    """Seconds per call, one sample per repeat (each the mean of ``number`` calls)."""

    samples: list[float]
    number: int

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def quartiles(self) -> tuple[float, float]:
        """First and third quartiles (both the single value when there is one sample)."""
        if len(self.samples) < 2:
            return self.samples[0], self.samples[0]
        q1, _, q3 = statistics.quantiles(self.samples, n=4, method="inclusive")
        return q1, q3

    @property
    def iqr(self) -> float:
        q1, q3 = self.quartiles
        return q3 - q1

    @property
    def relative_spread(self) -> float:
        """Interquartile range as a fraction of the median (0.05 = ±2.5 %)."""
        return self.iqr / self.median if self.median else 0.0

    def to_json(self) -> dict[str, Any]:
        q1, q3 = self.quartiles
        return {
            "median_s": self.median,
            "q1_s": q1,
            "q3_s": q3,
            "min_s": min(self.samples),
            "max_s": max(self.samples),
            "repeats": len(self.samples),
            "calls_per_repeat": self.number,
            "samples_s": self.samples,
        }


def summary(samples: Sequence[float]) -> dict[str, Any]:
    """Median, quartiles and the samples themselves, as the JSON record keeps them."""
    if len(samples) >= 2:
        q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    else:
        q1 = q3 = samples[0]
    return {"median": statistics.median(samples), "q1": q1, "q3": q3, "samples": list(samples)}


@dataclass
class Ratio:
    """``numerator / denominator`` per repeat of an interleaved measurement."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def to_json(self) -> dict[str, Any]:
        return summary(self.samples)


def ratio(numerator: Timing, denominator: Timing) -> Ratio:
    """Pair the repeats of two interleaved timings and divide them repeat by repeat."""
    return Ratio([a / b for a, b in zip(numerator.samples, denominator.samples, strict=True)])


def _run(case: Case, number: int) -> float:
    """Run ``case`` ``number`` times; return the mean seconds of the timed calls."""
    clock = time.perf_counter
    call, setup = case.call, case.setup
    total = 0.0
    if setup is None:
        start = clock()
        for _ in range(number):
            call()
        total = clock() - start
    else:
        for _ in range(number):
            setup()
            start = clock()
            call()
            total += clock() - start
    return total / number


def calibrate(case: Case, plan: Plan) -> int:
    """Pick how many calls make one repeat last about ``plan.min_repeat_time``."""
    for _ in range(plan.warmup_calls):
        if case.setup is not None:
            case.setup()
        case.call()
    number = 1
    while True:
        elapsed = _run(case, number) * number
        if elapsed >= plan.min_repeat_time or number >= plan.max_number:
            return number
        if elapsed <= 0:
            number *= 10
        else:
            # Aim a little above the target so the next try usually suffices.
            number = math.ceil(number * plan.min_repeat_time * 1.2 / elapsed)
        number = min(max(number, 1), plan.max_number)


def measure(
    cases: Mapping[str, Case], plan: Plan, tick: Callable[[], object] | None = None
) -> dict[str, Timing]:
    """Time every case, interleaving their repeats; return a Timing per case name.

    All cases of one call share the same ``number`` of calls per repeat (the largest any
    of them needs), so paired repeats cover the same amount of work. The order of the
    cases alternates between repeats, so none always runs first. ``tick`` is called after
    each repeat (for a progress bar).
    """
    names = list(cases)
    number = max(calibrate(cases[name], plan) for name in names)
    samples: dict[str, list[float]] = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    # Collect once, then keep the collector off while the clock runs: a collection
    # landing in one repeat and not another is noise, not a property of the code timed.
    # (Collecting before every repeat would cost more than the repeats themselves.)
    gc.collect()
    try:
        for repeat in range(plan.repeats):
            order = names if repeat % 2 == 0 else list(reversed(names))
            for name in order:
                gc.disable()
                try:
                    samples[name].append(_run(cases[name], number))
                finally:
                    if gc_was_enabled:
                        gc.enable()
            if tick is not None:
                tick()
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: Timing(samples[name], number) for name in names}
