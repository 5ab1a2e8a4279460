"""Workload 1: the backend layer, adapter versus raw client.

For each backend and batch size N it times ``get_many`` (all hits), ``set_many`` and
``delete_many`` (of keys present, re-stored untimed before each call) through the
adapter, interleaved with the same operation written directly against the client library
(:mod:`benchmarks.raw_clients`). The adapter/raw ratio, computed repeat by repeat, is
what the library's Python layer costs on top of the client.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.data import Dataset
from benchmarks.progress import ProgressSink
from benchmarks.raw_clients import RAW_PREFIX, RawClient
from benchmarks.servers import Target, each_target
from benchmarks.timing import Case, Plan, measure, ratio
from drf_instcache.backends.base import Backend
from drf_instcache.settings import build_backend

OPERATIONS = ("get_many", "set_many", "delete_many")
KEY_PREFIX = "bench"


def steps(targets: Sequence[Target], sizes: Sequence[int], plan: Plan) -> int:
    """How many progress steps :func:`run` takes."""
    return len(targets) * len(sizes) * len(OPERATIONS) * plan.repeats


def _cases(
    operation: str,
    adapter: Backend,
    raw: RawClient,
    items: dict[str, bytes],
    raw_items: dict[str, bytes],
) -> dict[str, Case]:
    keys, raw_keys = list(items), list(raw_items)
    if operation == "get_many":
        return {
            "adapter": Case(lambda: adapter.get_many(keys)),
            "raw": Case(lambda: raw.get_many(raw_keys)),
        }
    if operation == "set_many":
        return {
            "adapter": Case(lambda: adapter.set_many(items)),
            "raw": Case(lambda: raw.set_many(raw_items)),
        }
    return {
        "adapter": Case(lambda: adapter.delete_many(keys), setup=lambda: adapter.set_many(items)),
        "raw": Case(lambda: raw.delete_many(raw_keys), setup=lambda: raw.set_many(raw_items)),
    }


def _check_hits(name: str, found: Any, expected: int) -> None:
    """Refuse to time a get_many that does not find every key (eviction, wrong server)."""
    hits = sum(value is not None for value in found.values()) if isinstance(found, dict) else None
    if hits is None:  # redis MGET returns a list
        hits = sum(value is not None for value in found)
    if hits != expected:
        raise RuntimeError(f"{name} get_many found {hits} of {expected} keys just stored")


def run_target(
    target: Target,
    dataset: Dataset,
    sizes: Sequence[int],
    plan: Plan,
    progress: ProgressSink,
    build: Callable[[Target], Backend] | None = None,
) -> list[dict[str, Any]]:
    """Measure one backend at every size; return one row per (operation, N)."""
    adapter = build(target) if build else build_backend(target.backend_setting(KEY_PREFIX))
    raw = target.make_raw()
    rows: list[dict[str, Any]] = []
    stored_raw_keys: set[str] = set()
    try:
        adapter.clear()
        for size in sizes:
            items = dataset.items(size)
            raw_items = {RAW_PREFIX + key: value for key, value in items.items()}
            stored_raw_keys.update(raw_items)
            for operation in OPERATIONS:
                progress.note(f"{target.name} {operation} N={size}")
                adapter.set_many(items)
                raw.set_many(raw_items)
                if operation == "get_many":
                    _check_hits(f"{target.name} adapter", adapter.get_many(list(items)), size)
                    _check_hits(f"{target.name} raw", raw.get_many(list(raw_items)), size)
                timings = measure(
                    _cases(operation, adapter, raw, items, raw_items), plan, tick=progress.step
                )
                rows.append(
                    {
                        "backend": target.name,
                        "operation": operation,
                        "n": size,
                        "raw_client": raw.description,
                        "adapter": timings["adapter"].to_json(),
                        "raw": timings["raw"].to_json(),
                        "adapter_raw_ratio": ratio(timings["adapter"], timings["raw"]).to_json(),
                    }
                )
    finally:
        try:
            adapter.clear()
            if stored_raw_keys:
                raw.delete_many(sorted(stored_raw_keys))
        finally:
            adapter.close()
            raw.close()
    return rows


def run(
    targets: Sequence[Target],
    dataset: Dataset,
    sizes: Sequence[int],
    plan: Plan,
    progress: ProgressSink,
    on_error: Callable[[Target, BaseException], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure every target; a failing backend is reported and the others still run."""
    return each_target(
        targets, lambda target: run_target(target, dataset, sizes, plan, progress), on_error
    )
