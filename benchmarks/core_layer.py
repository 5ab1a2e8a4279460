"""Workload 2: the strategy core, ``BaseCache.get_instances`` on N Questions.

*Warm*: every instance is cached, so a call is one ``get_many`` plus decoding and field
conversion; it is timed per codec (json, orjson, msgpack when installed), which is where
the codec choice shows. Comparing it with the backend layer's ``get_many`` at the same N
shows what decoding adds to the round trip.

*Cold*: the cache is emptied (untimed) before every call, so a call also loads the rows
from the database, serializes, encodes and writes them back. It is timed with the batch
loader (``question_default_loader_many``: a constant number of queries) and without it
(one ``question_default_loader`` call, i.e. a few queries, per instance), interleaved.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from benchmarks.progress import ProgressSink
from benchmarks.servers import Target
from benchmarks.timing import Case, Plan, measure, ratio
from drf_instcache.backends.base import Backend
from drf_instcache.settings import build_backend

CODECS = ("json", "orjson", "msgpack")
CODEC_MODULES = {"orjson": "orjson", "msgpack": "msgpack"}
LOADERS = ("batch", "per instance")
KEY_PREFIX = "core"
MODEL = "Question"


def available_codecs() -> tuple[list[str], dict[str, str]]:
    """Codecs whose library is installed, and why the others are left out."""
    available, missing = [], {}
    for codec in CODECS:
        module = CODEC_MODULES.get(codec)
        if module is None:
            available.append(codec)
            continue
        try:
            importlib.import_module(module)
        except ImportError:
            missing[codec] = f"{module} is not installed (pip install 'drf-instcache[fast]')"
        else:
            available.append(codec)
    return available, missing


def cache_classes() -> dict[str, type]:
    """PollCache as the example ships it, and a variant without the batch loader."""
    from example.polls.cache import PollCache

    # A model function set to None counts as absent: the core then calls the per-pk
    # loader once per missing instance.
    without_batch = type("PollCacheWithoutBatchLoader", (PollCache,), {})
    without_batch.question_default_loader_many = None  # type: ignore[attr-defined]
    return {"batch": PollCache, "per instance": without_batch}


def steps(
    targets: Sequence[Target], sizes: Sequence[int], codecs: Sequence[str], warm: Plan, cold: Plan
) -> int:
    """How many progress steps :func:`run` takes."""
    return len(targets) * len(sizes) * (len(codecs) * warm.repeats + cold.repeats)


def _specs(pks: Sequence[Any]) -> list[tuple[str, Any, None]]:
    return [(MODEL, pk, None) for pk in pks]


def _check(found: dict[Any, Any], expected: int, what: str) -> None:
    if len(found) != expected:
        raise RuntimeError(f"{what}: get_instances returned {len(found)} of {expected} instances")


def run_target(
    target: Target,
    pks: Sequence[Any],
    sizes: Sequence[int],
    codecs: Sequence[str],
    warm_plan: Plan,
    cold_plan: Plan,
    progress: ProgressSink,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Measure one backend; return its warm rows and its cold rows."""
    backend: Backend = build_backend(target.backend_setting(KEY_PREFIX))
    classes = cache_classes()
    warm_rows: list[dict[str, Any]] = []
    cold_rows: list[dict[str, Any]] = []
    try:
        backend.clear()
        for size in sizes:
            specs = _specs(pks[:size])
            for codec in codecs:
                progress.note(f"{target.name} warm {codec} N={size}")
                cache = classes["batch"](backend=backend, codec=codec)
                backend.clear()
                _check(cache.get_instances(specs), size, f"{target.name} {codec} fill")
                keys = [cache.key_for("default", MODEL, pk) for pk in pks[:size]]
                cached = backend.get_many(keys)
                if len(cached) != size:
                    # A warm figure must not silently include database loads.
                    raise RuntimeError(
                        f"{target.name}: only {len(cached)} of {size} instances were cached"
                    )
                timings = measure(
                    {"warm": Case(partial(cache.get_instances, specs))},
                    warm_plan,
                    tick=progress.step,
                )
                warm_rows.append(
                    {
                        "backend": target.name,
                        "codec": codec,
                        "n": size,
                        "timing": timings["warm"].to_json(),
                    }
                )
            progress.note(f"{target.name} cold N={size}")
            caches = {loader: classes[loader](backend=backend, codec="json") for loader in LOADERS}
            keys = [caches["batch"].key_for("default", MODEL, pk) for pk in pks[:size]]
            for loader, cache in caches.items():
                backend.delete_many(keys)
                _check(cache.get_instances(specs), size, f"{target.name} cold {loader}")
            timings = measure(
                {
                    loader: Case(
                        partial(cache.get_instances, specs),
                        setup=partial(backend.delete_many, keys),
                    )
                    for loader, cache in caches.items()
                },
                cold_plan,
                tick=progress.step,
            )
            speedup = ratio(timings["per instance"], timings["batch"]).to_json()
            for loader in LOADERS:
                cold_rows.append(
                    {
                        "backend": target.name,
                        "loader": loader,
                        "n": size,
                        "timing": timings[loader].to_json(),
                        "per_instance_batch_ratio": speedup,
                    }
                )
    finally:
        try:
            backend.clear()
        finally:
            backend.close()
    return warm_rows, cold_rows


def run(
    targets: Sequence[Target],
    pks: Sequence[Any],
    sizes: Sequence[int],
    codecs: Sequence[str],
    warm_plan: Plan,
    cold_plan: Plan,
    progress: ProgressSink,
    on_error: Callable[[Target, BaseException], None] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Measure every target; a failing backend is reported and the others still run."""
    results: dict[str, list[dict[str, Any]]] = {"warm": [], "cold": []}
    for target in targets:
        try:
            warm, cold = run_target(target, pks, sizes, codecs, warm_plan, cold_plan, progress)
        except Exception as error:
            if on_error is None:
                raise
            on_error(target, error)
            continue
        results["warm"].extend(warm)
        results["cold"].extend(cold)
    return results
