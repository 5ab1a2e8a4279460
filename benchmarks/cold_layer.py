"""Workload: a cold page and a cold retrieve against plain DRF on the same endpoint.

Requests go through Django's WSGI handler in this process (as in the near-cache
workload), and the cache is emptied (untimed) before every call, so each cached request
is a miss on every entry: it leases, loads, serializes and writes back. Interleaved,
repeat by repeat: plain DRF (``/api/plain/questions/``), the fast path without cached
list queries (``/api/fast-live/questions/``: rendered entries) and the instance level
(``/api/questions/``: cached instances). The figures are ratios to plain DRF, taken per
repeat, and the queries each request made.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.near_layer import Driver, serving
from benchmarks.progress import ProgressSink
from benchmarks.query_count import queries_of
from benchmarks.servers import Target, each_target
from benchmarks.timing import Case, Plan, measure, ratio

KEY_PREFIX = "bench-cold"
PAGE = 2
"""A middle page (offset 100): neither the first nor a short last page."""
LEVELS = {"plain": "/api/plain/", "fast": "/api/fast-live/", "instance": "/api/"}
"""What is compared: plain DRF, the fast path, the instance level (same serializer)."""


def steps(targets: Sequence[Target], plan: Plan) -> int:
    return 2 * len(targets) * plan.repeats


def paths(pk: Any) -> dict[str, dict[str, str]]:
    """``{"list"|"retrieve": {level: path}}`` of one page and one question."""
    return {
        "list": {level: f"{root}questions/?page={PAGE}" for level, root in LEVELS.items()},
        "retrieve": {level: f"{root}questions/{pk}/" for level, root in LEVELS.items()},
    }


def _results(body: bytes) -> Any:
    data = json.loads(body)
    return data["results"] if isinstance(data, dict) and "results" in data else data


def run_target(target: Target, pk: Any, plan: Plan, progress: ProgressSink) -> list[dict[str, Any]]:
    """Measure one backend: a row per action (list, retrieve)."""
    driver = Driver()
    rows: list[dict[str, Any]] = []
    with serving(target.backend_setting(KEY_PREFIX)) as backend:
        for action, by_level in paths(pk).items():
            progress.note(f"{target.name} cold {action}")
            calls = {level: driver.call(path) for level, path in by_level.items()}
            queries: dict[str, int] = {}
            bodies: dict[str, Any] = {}
            for level, call in calls.items():
                checked = call.checked  # type: ignore[attr-defined]
                backend.clear()
                queries[level], body = queries_of(checked)
                bodies[level] = _results(body)
            if any(body != bodies["plain"] for body in bodies.values()):
                raise RuntimeError(f"cold {action}: a cached level answered other data")
            timings = measure(
                {level: Case(call, setup=backend.clear) for level, call in calls.items()},
                plan,
                tick=progress.step,
            )
            rows.append(
                {
                    "backend": target.name,
                    "action": action,
                    "paths": by_level,
                    "queries": queries,
                    "timings": {level: t.to_json() for level, t in timings.items()},
                    "ratios": {
                        f"{level}/plain": ratio(timings[level], timings["plain"]).to_json()
                        for level in LEVELS
                        if level != "plain"
                    },
                }
            )
    return rows


def run(
    targets: Sequence[Target],
    pk: Any,
    plan: Plan,
    progress: ProgressSink,
    on_error: Callable[[Target, BaseException], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure every target; a failing backend is reported and the others still run."""
    return each_target(targets, lambda target: run_target(target, pk, plan, progress), on_error)
