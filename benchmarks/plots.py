"""One PNG per workload, drawn with matplotlib's Agg backend (no display needed).

Every point is a median; error bars span the interquartile range of the repeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from benchmarks.end_to_end import base_backend, is_fast
from benchmarks.servers import ALL_BACKENDS

MICRO = 1e6
MILLI = 1e3
DPI = 110


def _colors(names: Sequence[str]) -> dict[str, Any]:
    """The same color for a backend in every plot (its place in ALL_BACKENDS).

    End-to-end configurations of the fast path (``<backend> fast``, ``<backend>
    fast+lists``) share their backend's color (the bars are hatched); plain DRF is gray.
    """
    palette = plt.get_cmap("tab10")
    bases = [base_backend(name) for name in names]
    order = [*ALL_BACKENDS, *(name for name in dict.fromkeys(bases) if name not in ALL_BACKENDS)]
    colors: dict[str, Any] = {name: palette(index % 10) for index, name in enumerate(order)}
    colors.update({name: colors[base_backend(name)] for name in names})
    colors["plain"] = "gray"
    return colors


def _errors(timings: Sequence[dict[str, Any]], scale: float) -> list[list[float]]:
    """Asymmetric error bars (median - q1, q3 - median) from timing dicts."""
    return [
        [(t["median_s"] - t["q1_s"]) * scale for t in timings],
        [(t["q3_s"] - t["median_s"]) * scale for t in timings],
    ]


def _log_sizes(axes: Axes, sizes: Sequence[int]) -> None:
    axes.set_xscale("log")
    axes.set_xticks(list(sizes))
    axes.set_xticklabels([str(size) for size in sizes])
    axes.set_xlabel("N (instances per call)")
    axes.grid(True, which="major", alpha=0.3)


def _caption(record: dict[str, Any]) -> str:
    machine = record["machine"]
    versions = record["versions"]
    return (
        f"{machine.get('cpu_model')} ({machine.get('cpu_count')} CPUs), Python "
        f"{versions.get('python')}, Django {versions.get('Django')}, "
        f"{(record.get('database') or {}).get('vendor')}; {record.get('started_at')}"
    )


def backend_layer(record: dict[str, Any], path: Path) -> Path | None:
    rows = record["results"]["backend_layer"]
    if not rows:
        return None
    operations = list(dict.fromkeys(row["operation"] for row in rows))
    backends = list(dict.fromkeys(row["backend"] for row in rows))
    sizes = sorted({row["n"] for row in rows})
    colors = _colors(backends)
    figure, axes = plt.subplots(
        2, len(operations), figsize=(5 * len(operations), 8.5), squeeze=False
    )
    for column, operation in enumerate(operations):
        top, bottom = axes[0][column], axes[1][column]
        for backend in backends:
            selected = sorted(
                (r for r in rows if r["backend"] == backend and r["operation"] == operation),
                key=lambda r: r["n"],
            )
            if not selected:
                continue
            ns = [r["n"] for r in selected]
            for kind, style in (("adapter", "-"), ("raw", "--")):
                timings = [r[kind] for r in selected]
                top.errorbar(
                    ns,
                    [t["median_s"] * MICRO for t in timings],
                    yerr=_errors(timings, MICRO),
                    fmt="o" + style,
                    markersize=3,
                    capsize=2,
                    color=colors[backend],
                    alpha=1.0 if kind == "adapter" else 0.6,
                    label=f"{backend} {kind}",
                )
            ratios = [r["adapter_raw_ratio"] for r in selected]
            bottom.errorbar(
                ns,
                [ratio["median"] for ratio in ratios],
                yerr=[
                    [ratio["median"] - ratio["q1"] for ratio in ratios],
                    [ratio["q3"] - ratio["median"] for ratio in ratios],
                ],
                fmt="o-",
                markersize=3,
                capsize=2,
                color=colors[backend],
                label=backend,
            )
        top.set_title(operation)
        top.set_yscale("log")
        top.set_ylabel("µs per call (solid: adapter, dashed: raw client)")
        _log_sizes(top, sizes)
        bottom.axhline(1.0, color="black", linewidth=0.8)
        bottom.set_ylabel("adapter / raw client")
        bottom.set_ylim(bottom=0)
        _log_sizes(bottom, sizes)
    axes[0][0].legend(fontsize=7, ncol=2)
    axes[1][0].legend(fontsize=7)
    figure.suptitle("Backend layer: adapter vs raw client (median, IQR bars)")
    figure.text(0.5, 0.005, _caption(record), ha="center", fontsize=7, color="gray")
    figure.tight_layout(rect=(0, 0.02, 1, 0.97))
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def core(record: dict[str, Any], path: Path) -> Path | None:
    warm = record["results"]["core"]["warm"]
    cold = record["results"]["core"]["cold"]
    if not warm and not cold:
        return None
    backends = list(dict.fromkeys(row["backend"] for row in [*warm, *cold]))
    colors = _colors(backends)
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    codecs = list(dict.fromkeys(row["codec"] for row in warm))
    styles = dict(zip(codecs, ("-", "--", ":"), strict=False))
    for backend in backends:
        for codec in codecs:
            selected = sorted(
                (r for r in warm if r["backend"] == backend and r["codec"] == codec),
                key=lambda r: r["n"],
            )
            if selected:
                left.errorbar(
                    [r["n"] for r in selected],
                    [r["timing"]["median_s"] * MICRO / r["n"] for r in selected],
                    fmt="o" + styles.get(codec, "-"),
                    markersize=3,
                    color=colors[backend],
                    label=f"{backend} {codec}",
                )
        for loader, style in (("batch", "-"), ("per instance", "--")):
            selected = sorted(
                (r for r in cold if r["backend"] == backend and r["loader"] == loader),
                key=lambda r: r["n"],
            )
            if selected:
                timings = [r["timing"] for r in selected]
                right.errorbar(
                    [r["n"] for r in selected],
                    [t["median_s"] * MILLI for t in timings],
                    yerr=_errors(timings, MILLI),
                    fmt="o" + style,
                    markersize=3,
                    capsize=2,
                    color=colors[backend],
                    label=f"{backend} {loader}",
                )
    if warm:
        left.set_title("warm: get_instances, µs per instance (line style: codec)")
        left.set_yscale("log")
        left.set_ylabel("µs per instance")
        _log_sizes(left, sorted({r["n"] for r in warm}))
        left.legend(fontsize=6, ncol=2)
    if cold:
        right.set_title("cold: cache emptied before each call (solid: batch loader)")
        right.set_yscale("log")
        right.set_ylabel("ms per call")
        _log_sizes(right, sorted({r["n"] for r in cold}))
        right.legend(fontsize=6, ncol=2)
    figure.suptitle("Core: BaseCache.get_instances on example Questions (median, IQR bars)")
    figure.text(0.5, 0.005, _caption(record), ha="center", fontsize=7, color="gray")
    figure.tight_layout(rect=(0, 0.02, 1, 0.96))
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def end_to_end(record: dict[str, Any], path: Path) -> Path | None:
    rows = record["results"]["end_to_end"]
    if not rows:
        return None
    endpoints = list(dict.fromkeys(row["endpoint"] for row in rows))
    names = list(dict.fromkeys(row["backend"] for row in rows))
    colors = _colors(names)
    figure, axes = plt.subplots(2, len(endpoints), figsize=(6.5 * len(endpoints), 9), squeeze=False)
    for column, endpoint in enumerate(endpoints):
        selected = [
            row
            for name in names
            for row in rows
            if row["backend"] == name and row["endpoint"] == endpoint
        ]
        labels = [row["backend"] for row in selected]
        positions = range(len(selected))
        top, bottom = axes[0][column], axes[1][column]
        medians = [row["requests_per_s"]["median"] for row in selected]
        bars = top.bar(
            positions,
            medians,
            yerr=[
                [row["requests_per_s"]["median"] - row["requests_per_s"]["q1"] for row in selected],
                [row["requests_per_s"]["q3"] - row["requests_per_s"]["median"] for row in selected],
            ],
            capsize=3,
            color=[colors[label] for label in labels],
            hatch=["//" if is_fast(label) else "" for label in labels],
        )
        for bar, row in zip(bars, selected, strict=True):
            ratio = row.get("ratio_to_plain")
            if row["backend"] == "plain":
                text = "plain DRF"
            else:
                text = f"x{ratio['median']:.2f}" if ratio else ""
            top.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, row["requests_per_s"]["q3"]),
                ha="center",
                va="bottom",
                fontsize=8,
                xytext=(0, 3),
                textcoords="offset points",
            )
        top.set_xticks(list(positions), labels, rotation=20, ha="right")
        # Room above the tallest error bar for its label.
        top.set_ylim(0, max(row["requests_per_s"]["q3"] for row in selected) * 1.12)
        top.set_ylabel("requests/s (median, IQR bars)")
        top.set_title(
            f"{endpoint}: {selected[0]['description'].replace('/api/plain/', '/api/')}", fontsize=9
        )
        top.grid(True, axis="y", alpha=0.3)
        width = 0.27
        for offset, percentile in ((-width, "p50"), (0.0, "p95"), (width, "p99")):
            bottom.bar(
                [p + offset for p in positions],
                [row["latency_s"][percentile] * MILLI for row in selected],
                width=width,
                label=percentile,
            )
        bottom.set_xticks(list(positions), labels, rotation=20, ha="right")
        bottom.set_ylabel("latency, ms")
        bottom.legend(fontsize=8)
        bottom.grid(True, axis="y", alpha=0.3)
    load = record["settings"].get("end_to_end", {})
    generator = load.get("load_generator_used", {}).get("name", "?")
    figure.suptitle(
        f"End to end through gunicorn ({load.get('workers')} workers), {generator} with "
        f"{load.get('connections')} connections: cached vs plain DRF"
    )
    figure.text(0.5, 0.005, _caption(record), ha="center", fontsize=7, color="gray")
    figure.tight_layout(rect=(0, 0.02, 1, 0.96))
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def write_all(record: dict[str, Any], out: Path) -> list[Path]:
    """Draw every workload that has results; return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [
        backend_layer(record, out / "backend_layer.png"),
        core(record, out / "core.png"),
        end_to_end(record, out / "end_to_end.png"),
    ]
    return [path for path in written if path is not None]
