"""Workload: what zstd compression (``DRF_INSTCACHE_COMPRESSION``) saves and costs.

For each backend, one large representation (the dataset's Questions embedded in one
JSON document, tens of KB, as a question with hundreds of nested choices would be) is
stored and read through the compression layer, uncompressed and with zstd, interleaved:
bytes held by the server, ``set_many`` and ``get_many`` time. It also times what the
layer costs reads of ordinary small values when compression is off (it still looks for
compressed values): ``get_many`` of N=100 through the layer against the bare adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.data import Dataset
from benchmarks.progress import ProgressSink
from benchmarks.servers import Target, each_target
from benchmarks.timing import Case, Plan, measure, ratio
from drf_instcache.compression import CompressedBackend, CompressionPolicy
from drf_instcache.settings import build_backend

KEY_PREFIX = "bench-compression"
LARGE_KEY = "large-representation"
EMBEDDED = 200
"""Questions embedded in the large representation (fewer when the dataset is smaller)."""
SMALL_N = 100
POLICY = CompressionPolicy(min_bytes=1024, level=3)
VARIANTS = {"plain": None, f"zstd-{POLICY.level}": POLICY}


def large_representation(dataset: Dataset) -> bytes:
    """One JSON document embedding up to :data:`EMBEDDED` of the dataset's values."""
    bodies = [value[value.index(b"{") :] for value in dataset.values[:EMBEDDED]]
    return b'J1{"id":1,"questions":[' + b",".join(bodies) + b"]}"


def steps(targets: Sequence[Target], plan: Plan) -> int:
    """How many progress steps :func:`run` takes."""
    return len(targets) * 3 * plan.repeats


def run_target(
    target: Target, dataset: Dataset, plan: Plan, progress: ProgressSink
) -> dict[str, Any]:
    """Measure one backend: bytes stored and timings per variant, and the read overhead."""
    adapter = build_backend(target.backend_setting(KEY_PREFIX))
    layers = {name: CompressedBackend(adapter, policy) for name, policy in VARIANTS.items()}
    value = large_representation(dataset)
    keys = {name: f"{LARGE_KEY}:{index}" for index, name in enumerate(layers)}
    try:
        adapter.clear()
        stored: dict[str, int] = {}
        for name, layer in layers.items():
            layer.set_many({keys[name]: value})
            assert layer.get_many([keys[name]]) == {keys[name]: value}
            stored[name] = len(adapter.get_many([keys[name]])[keys[name]])
        progress.note(f"{target.name} compression set_many")
        set_timings = measure(
            {
                name: Case(lambda layer=layer, key=keys[name]: layer.set_many({key: value}))
                for name, layer in layers.items()
            },
            plan,
            tick=progress.step,
        )
        progress.note(f"{target.name} compression get_many")
        get_timings = measure(
            {
                name: Case(lambda layer=layer, key=keys[name]: layer.get_many([key]))
                for name, layer in layers.items()
            },
            plan,
            tick=progress.step,
        )
        small = dataset.items(min(SMALL_N, len(dataset.keys)))
        adapter.set_many(small)
        small_keys = list(small)
        reads_only = layers["plain"]
        progress.note(f"{target.name} layer overhead get_many N={len(small)}")
        overhead = measure(
            {
                "layer": Case(lambda: reads_only.get_many(small_keys)),
                "adapter": Case(lambda: adapter.get_many(small_keys)),
            },
            plan,
            tick=progress.step,
        )
        return {
            "backend": target.name,
            "value_bytes": len(value),
            "variants": [
                {
                    "variant": name,
                    "stored_bytes": stored[name],
                    "set_many": set_timings[name].to_json(),
                    "get_many": get_timings[name].to_json(),
                }
                for name in layers
            ],
            "small_n": len(small),
            "layer_get_many": overhead["layer"].to_json(),
            "adapter_get_many": overhead["adapter"].to_json(),
            "layer_adapter_ratio": ratio(overhead["layer"], overhead["adapter"]).to_json(),
        }
    finally:
        try:
            adapter.clear()
        finally:
            adapter.close()


def run(
    targets: Sequence[Target],
    dataset: Dataset,
    plan: Plan,
    progress: ProgressSink,
    on_error: Callable[[Target, BaseException], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure every target; a failing backend is reported and the others still run."""
    return each_target(
        targets, lambda target: [run_target(target, dataset, plan, progress)], on_error
    )
