"""Turn a run's record into headline ratios, tables (terminal and Markdown) and JSON.

The record is a plain dict (see :func:`new_record`) the workloads fill in; this module
only reads it. Tables are built once as a :class:`Grid` and rendered twice: compact with
rich on the terminal, complete as Markdown in ``results.md`` (ready for a README). Every
figure is also in ``results.json`` with the spread behind it (quartiles, every sample).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SCHEMA = "drf-instcache-benchmarks/1"
SUMMARY_N = 100
"""Batch size the headline adapter/raw ratios are quoted at."""
OPERATIONS = ("get_many", "set_many", "delete_many")
MISSING = "-"


def new_record() -> dict[str, Any]:
    """An empty record with every top-level field present."""
    return {
        "schema": SCHEMA,
        "started_at": None,
        "finished_at": None,
        "duration_s": None,
        "stage_durations_s": {},
        "command": None,
        "machine": {},
        "versions": {},
        "servers": {},
        "settings": {},
        "database": None,
        "dataset": None,
        "backends": {"measured": [], "skipped": []},
        "errors": [],
        "results": {
            "backend_layer": [],
            "core": {"warm": [], "cold": []},
            "end_to_end": [],
            "compression": [],
            "near": {},
            "cold": [],
            "writes": [],
        },
        "summary": {},
    }


# -- headline figures --------------------------------------------------------------------
def _closest(sizes: Iterable[int], wanted: int) -> int | None:
    ordered = sorted(set(sizes))
    if not ordered:
        return None
    return min(ordered, key=lambda size: (abs(size - wanted), -size))


def summarize(record: dict[str, Any]) -> dict[str, Any]:
    """The ratios the README quotes: adapter/raw at N=100, cached/plain DRF throughput."""
    layer = record["results"]["backend_layer"]
    n = _closest((row["n"] for row in layer), SUMMARY_N)
    adapter_raw: dict[str, dict[str, float]] = {}
    for row in layer:
        if row["n"] == n:
            ratios = adapter_raw.setdefault(row["backend"], {})
            ratios[row["operation"]] = row["adapter_raw_ratio"]["median"]
    throughput: dict[str, dict[str, float]] = {}
    fast_whole: dict[str, dict[str, float]] = {}
    for row in record["results"]["end_to_end"]:
        if row.get("ratio_to_plain") is not None:
            endpoints = throughput.setdefault(row["backend"], {})
            endpoints[row["endpoint"]] = row["ratio_to_plain"]["median"]
        if row.get("ratio_to_whole") is not None:
            endpoints = fast_whole.setdefault(row["backend"], {})
            endpoints[row["endpoint"]] = row["ratio_to_whole"]["median"]
    return {
        "adapter_raw_n": n,
        "adapter_raw_ratio": adapter_raw,
        "cached_plain_throughput_ratio": throughput,
        "fast_whole_throughput_ratio": fast_whole,
    }


def write_json(record: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")


# -- formatting -----------------------------------------------------------------------
def seconds(value: float) -> str:
    """A duration with three significant digits in the unit that suits it."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale or unit == "µs":
            number = value / scale
            digits = 0 if number >= 100 else 1 if number >= 10 else 2
            return f"{number:.{digits}f} {unit}"
    raise AssertionError("unreachable")


def timing_text(timing: dict[str, Any], with_spread: bool = True) -> str:
    """``390 µs ±3%``: median, and half the interquartile range relative to it."""
    text = seconds(timing["median_s"])
    if with_spread and timing["median_s"] and timing["repeats"] > 1:
        half = (timing["q3_s"] - timing["q1_s"]) / 2 / timing["median_s"] * 100
        text += f" ±{half:.0f}%"
    return text


def ratio_text(ratio: dict[str, Any] | None, with_spread: bool = True) -> str:
    """``2.21 ±0.05``: median ratio and half its interquartile range (if repeated)."""
    if ratio is None:
        return MISSING
    if not with_spread or len(ratio["samples"]) < 2:
        return f"{ratio['median']:.2f}"
    return f"{ratio['median']:.2f} ±{(ratio['q3'] - ratio['q1']) / 2:.2f}"


def throughput_text(throughput: dict[str, Any]) -> str:
    """``493 ±12`` requests per second (no spread after a single run)."""
    if len(throughput["samples"]) < 2:
        return f"{throughput['median']:.0f}"
    return f"{throughput['median']:.0f} ±{(throughput['q3'] - throughput['q1']) / 2:.0f}"


def _label(name: str, titles: dict[str, str]) -> str:
    """A configuration's label: its backend's title plus any variant (``Redis fast``)."""
    for base in sorted(titles, key=len, reverse=True):
        if name == base or name.startswith(base + " "):
            return titles[base] + name[len(base) :]
    return name


def _titles(record: dict[str, Any], detailed: bool = True) -> dict[str, str]:
    """Backend name -> label: the long title in Markdown, the short name on a terminal."""
    if not detailed:
        return {"plain": "plain DRF"}
    titles = {entry["name"]: entry["title"] for entry in record["backends"]["measured"]}
    titles["plain"] = "plain DRF (no cache)"
    return titles


# -- grids ------------------------------------------------------------------------------
@dataclass
class Grid:
    """A table independent of how it is drawn."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str = ""
    left_columns: int = 1
    """The first columns are labels (left-aligned); the rest are figures."""


def backend_layer_grid(record: dict[str, Any], detailed: bool) -> Grid | None:
    """Adapter vs raw. Compact: adapter time and ratio per operation; detailed: all."""
    rows = record["results"]["backend_layer"]
    if not rows:
        return None
    repeats = rows[0]["adapter"]["repeats"]
    if detailed:
        titles = _titles(record)
        grid = Grid(
            "Backend layer: adapter vs raw client, time per call",
            ["Backend", "Operation", "N", "adapter", "raw client", "adapter / raw"],
            caption=f"Median of {repeats} interleaved repeats ± half the interquartile range; "
            "the ratio is taken repeat by repeat.",
            left_columns=2,
        )
        for row in rows:
            grid.rows.append(
                [
                    _label(row["backend"], titles),
                    row["operation"],
                    str(row["n"]),
                    timing_text(row["adapter"]),
                    timing_text(row["raw"]),
                    ratio_text(row["adapter_raw_ratio"]),
                ]
            )
        return grid
    grid = Grid(
        "Backend layer: adapter time per call, and x adapter/raw",
        ["Backend", "N", *OPERATIONS],
        caption=f"medians of {repeats} repeats; raw times and spreads in results.md",
    )
    cells: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for row in rows:
        cells.setdefault((row["backend"], row["n"]), {})[row["operation"]] = row
    for (backend, n), by_operation in cells.items():
        values = [backend, str(n)]
        for operation in OPERATIONS:
            row = by_operation.get(operation)
            values.append(
                f"{seconds(row['adapter']['median_s'])} x{row['adapter_raw_ratio']['median']:.2f}"
                if row
                else MISSING
            )
        grid.rows.append(values)
    return grid


def _by_size_grid(
    record: dict[str, Any],
    rows: list[dict[str, Any]],
    label: str,
    title: str,
    caption: str,
    detailed: bool,
) -> Grid:
    titles = _titles(record, detailed)
    sizes = sorted({row["n"] for row in rows})
    grid = Grid(title, ["Backend", label, *(f"N={size}" for size in sizes)], [], caption, 2)
    grouped: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["backend"], row[label.lower()]), {})[row["n"]] = row
    for (backend, variant), by_size in grouped.items():
        grid.rows.append(
            [
                _label(backend, titles),
                variant,
                *(
                    timing_text(by_size[size]["timing"]) if size in by_size else MISSING
                    for size in sizes
                ),
            ]
        )
    return grid


def core_grids(record: dict[str, Any], detailed: bool) -> list[Grid]:
    grids = []
    warm = record["results"]["core"]["warm"]
    if warm:
        grids.append(
            _by_size_grid(
                record,
                warm,
                "Codec",
                "Core, warm: get_instances of N cached Questions",
                "One get_many, then decoding and field conversion. Median time per call "
                "± half the interquartile range.",
                detailed,
            )
        )
    cold = record["results"]["core"]["cold"]
    if cold:
        grids.append(
            _by_size_grid(
                record,
                cold,
                "Loader",
                "Core, cold: get_instances of N Questions, cache emptied before each call",
                "batch: question_default_loader_many (2 queries); per instance: "
                "question_default_loader per pk (2 queries each). Includes encoding and set_many.",
                detailed,
            )
        )
    return grids


def end_to_end_grids(record: dict[str, Any], detailed: bool) -> list[Grid]:
    rows = record["results"]["end_to_end"]
    titles = _titles(record, detailed)
    load = record["settings"].get("end_to_end", {})
    generator = load.get("load_generator_used", {}).get("name", "?")
    # The fast-path and whole-response columns and notes only when those were measured.
    with_whole = any(row.get("ratio_to_whole") for row in rows)
    caption = (
        f"gunicorn, {load.get('workers')} sync workers; {generator}, "
        f"{load.get('connections')} connections, {load.get('repeats')} x "
        f"{load.get('duration')} s per configuration. requests/s: median ± half IQR; "
        "latency: median over repeats."
    )
    if with_whole:
        caption += (
            " fast: rendered JSON per instance, count and keys from the database; "
            "fast+lists: those list queries cached too. x whole: requests/s over whole "
            "responses cached by drf-extensions (same round)."
        )
    grids = []
    for endpoint in dict.fromkeys(row["endpoint"] for row in rows):
        selected = [row for row in rows if row["endpoint"] == endpoint]
        description = selected[0]["description"].replace(
            "/api/plain/",
            "/api/[plain/|fast-live/|fast/|whole/]" if with_whole else "/api/[plain/]",
        )
        columns = ["Backend", "requests/s", "p50", "p95", "p99", "x plain DRF"]
        grid = Grid(
            f"End to end, {endpoint}: {description}",
            [*columns, "x whole", "errors"] if with_whole else [*columns, "errors"],
            caption=caption,
        )
        for row in selected:
            latency = row["latency_s"]
            cells = [
                _label(row["backend"], titles),
                throughput_text(row["requests_per_s"]),
                seconds(latency["p50"]),
                seconds(latency["p95"]),
                seconds(latency["p99"]),
                "1" if row["backend"] == "plain" else ratio_text(row["ratio_to_plain"]),
            ]
            if with_whole:
                cells.append(ratio_text(row.get("ratio_to_whole")))
            grid.rows.append([*cells, str(row["errors"])])
        grids.append(grid)
    return grids


def summary_grid(record: dict[str, Any], detailed: bool) -> Grid | None:
    summary = record["summary"]
    if not summary or not (
        summary["adapter_raw_ratio"] or summary["cached_plain_throughput_ratio"]
    ):
        return None
    titles = _titles(record, detailed)
    n = summary["adapter_raw_n"]
    if detailed:
        columns = [
            "Backend",
            *(f"adapter/raw {operation} N={n}" for operation in OPERATIONS),
            "cached/plain list req/s",
            "cached/plain retrieve req/s",
        ]
    else:
        columns = ["Backend", "get", "set", "delete", "list", "retrieve"]
    grid = Grid(
        "Summary: what the library costs, and what it buys",
        columns,
        caption=(
            f"get/set/delete: adapter/raw client time of get/set/delete_many at N={n}; "
            if n is not None
            else ""
        )
        + "list/retrieve: cached/plain DRF requests per second",
    )
    adapter_raw = summary["adapter_raw_ratio"]
    throughput = summary["cached_plain_throughput_ratio"]
    for name in dict.fromkeys([*adapter_raw, *throughput]):
        ratios = adapter_raw.get(name, {})
        e2e = throughput.get(name, {})
        grid.rows.append(
            [
                _label(name, titles),
                *(f"{ratios[op]:.2f}" if op in ratios else MISSING for op in OPERATIONS),
                *(
                    f"{e2e[endpoint]:.2f}" if endpoint in e2e else MISSING
                    for endpoint in ("list", "retrieve")
                ),
            ]
        )
    return grid


def compression_grid(record: dict[str, Any], detailed: bool) -> Grid | None:
    """Bytes on the server and time per call of one large value, uncompressed and zstd."""
    rows = record["results"].get("compression") or []
    if not rows:
        return None
    titles = _titles(record, detailed)
    grid = Grid(
        f"Compression: one large representation ({rows[0]['value_bytes']:,} bytes of JSON)",
        ["Backend", "Variant", "bytes stored", "set_many", "get_many", "layer/adapter"],
        caption="plain: compression off. bytes stored: as the server holds them; "
        "set/get_many of that one value "
        "through the compression layer, median ± half IQR; layer/adapter: get_many of "
        "N small values through the layer with compression off, over the bare adapter.",
        left_columns=2,
    )
    for row in rows:
        for index, variant in enumerate(row["variants"]):
            grid.rows.append(
                [
                    _label(row["backend"], titles),
                    variant["variant"],
                    f"{variant['stored_bytes']:,}",
                    timing_text(variant["set_many"], detailed),
                    timing_text(variant["get_many"], detailed),
                    ratio_text(row["layer_adapter_ratio"], detailed) if index == 0 else "",
                ]
            )
    return grid


def near_grid(record: dict[str, Any], detailed: bool) -> Grid | None:
    """The near cache against Redis alone, the whole-response cache and the floor."""
    near = record["results"].get("near") or {}
    if not near.get("timings"):
        return None
    timings, ratios = near["timings"], near["ratios"]
    grid = Grid(
        f"Near cache, in process (list body {near['list_body_bytes']:,} bytes)",
        ["Request", "time", "ratio"],
        caption="Django's WSGI handler in process, warm, interleaved; median ± half IQR. "
        "floor: a DRF APIView answering pre-rendered bytes of the list (retrieve) body's size. "
        "Ratios per repeat: whole/near > 1 means the near cache is faster.",
    )
    rows = [
        ("fast list, near cache", "near_list", None),
        ("fast list, Redis only", "redis_list", "redis_list/near_list"),
        ("whole-response list", "whole_list", "whole_list/near_list"),
        ("floor", "floor", "near_list/floor"),
        ("fast retrieve, near cache", "near_retrieve", None),
        ("fast retrieve, Redis only", "redis_retrieve", "redis_retrieve/near_retrieve"),
        ("whole-response retrieve", "whole_retrieve", "whole_retrieve/near_retrieve"),
        ("retrieve floor", "floor_retrieve", "near_retrieve/floor_retrieve"),
        ("", "", "whole_retrieve/floor_retrieve"),
    ]
    for label, timing, ratio_name in rows:
        if timing and timing not in timings:  # a run recorded before this row existed
            continue
        if ratio_name and ratio_name not in ratios:
            continue
        grid.rows.append(
            [
                label,
                timing_text(timings[timing], detailed) if timing else "",
                f"{ratio_name} {ratio_text(ratios[ratio_name], detailed)}" if ratio_name else "",
            ]
        )
    fresh = near.get("freshness") or {}
    if "p50_s" in fresh:
        grid.rows.append(
            [
                "cross-process freshness",
                f"p50 {fresh['p50_s'] * 1e3:.2f} ms, p99 {fresh['p99_s'] * 1e3:.2f} ms",
                f"max {fresh['max_s'] * 1e3:.2f} ms, {fresh['rounds']} rounds, "
                f"{fresh['not_fresh_within_deadline']} late",
            ]
        )
    return grid


def all_grids(record: dict[str, Any], detailed: bool) -> list[Grid]:
    from benchmarks.report_cold_writes import cold_grid, writes_grid

    grids = [
        backend_layer_grid(record, detailed),
        *core_grids(record, detailed),
        *end_to_end_grids(record, detailed),
        compression_grid(record, detailed),
        near_grid(record, detailed),
        cold_grid(record, detailed),
        writes_grid(record, detailed),
        summary_grid(record, detailed),
    ]
    return [grid for grid in grids if grid is not None]


# -- rendering --------------------------------------------------------------------------
def to_rich(grid: Grid) -> Table:
    table = Table(title=grid.title, caption=grid.caption or None)
    for index, column in enumerate(grid.columns):
        table.add_column(column, justify="left" if index < grid.left_columns else "right")
    previous: str | None = None
    for row in grid.rows:
        # Repeat a backend's name only on its first row, as a visual group.
        first = "" if row[0] == previous else row[0]
        previous = row[0]
        table.add_row(first, *row[1:])
    return table


def to_markdown(grid: Grid) -> str:
    lines = [f"**{grid.title}**", ""]
    lines.append("| " + " | ".join(grid.columns) + " |")
    lines.append(
        "|"
        + "|".join(
            ":---" if index < grid.left_columns else "---:" for index in range(len(grid.columns))
        )
        + "|"
    )
    lines += ["| " + " | ".join(row) + " |" for row in grid.rows]
    if grid.caption:
        lines += ["", grid.caption]
    return "\n".join(lines) + "\n"


def markdown_report(record: dict[str, Any]) -> str:
    """Every table in full, plus what was skipped and the context of the run."""
    machine = record["machine"]
    versions = record["versions"]
    database = record["database"] or {}
    parts = [
        "# drf-instcache benchmark results",
        "",
        f"Run {record['started_at']}, {record['duration_s']} s, "
        f"{'quick' if record['settings'].get('quick') else 'full'} run: "
        f"`{' '.join(record['command'] or [])}`.",
        f"Machine: {machine.get('cpu_model')}, {machine.get('cpu_count')} CPUs, "
        f"{machine.get('platform')}; Python {versions.get('python')}, "
        f"Django {versions.get('Django')}, DRF {versions.get('djangorestframework')}.",
        f"Commit {(machine.get('git_commit') or '?')[:12]}"
        f"{' with uncommitted changes' if machine.get('git_uncommitted_changes') else ''}.",
        f"Database: {database.get('vendor')} {database.get('server_version')}, "
        f"{database.get('questions')} questions. Values: "
        f"{(record['dataset'] or {}).get('source')}, "
        f"{(record['dataset'] or {}).get('mean_value_bytes', 0):.0f} bytes on average.",
        "",
    ]
    for grid in all_grids(record, detailed=True):
        parts += [to_markdown(grid), ""]
    for line in skipped_lines(record):
        parts.append(f"- {line}")
    return "\n".join(parts).rstrip() + "\n"


def skipped_lines(record: dict[str, Any]) -> list[str]:
    lines = [
        f"skipped backend {entry['name']}: {entry['reason']}"
        for entry in record["backends"]["skipped"]
    ]
    lines += [
        f"skipped {entry['name']}: {entry['reason']}"
        for entry in record["settings"].get("skipped_workloads", [])
    ]
    lines += [
        f"error in {error['workload']} on {error['backend']}: {error['error']}"
        for error in record["errors"]
    ]
    return lines


def print_report(record: dict[str, Any], console: Console) -> None:
    """The compact tables, then what was skipped or failed, on the terminal."""
    for grid in all_grids(record, detailed=False):
        console.print(to_rich(grid))
        console.print()
    for line in skipped_lines(record):
        style = "red" if line.startswith("error") else "yellow"
        console.print(f"[{style}]{line}[/{style}]", highlight=False)
