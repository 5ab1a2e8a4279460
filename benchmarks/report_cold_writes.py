"""Tables of the cold-read and write workloads (kept apart from report.py's other grids).

Both are ratios taken repeat by repeat within one run: cold page/retrieve over plain DRF
on the same endpoint, and a write with the library connected over the same write
without it, with the queries each made.
"""

from __future__ import annotations

from typing import Any

from benchmarks.report import Grid, _label, _titles, ratio_text, timing_text


def cold_grid(record: dict[str, Any], detailed: bool) -> Grid | None:
    """Cold page and retrieve: fast path and instance level against plain DRF."""
    rows = record["results"].get("cold") or []
    if not rows:
        return None
    titles = _titles(record, detailed)
    grid = Grid(
        "Cold reads: every entry missing, against plain DRF on the same endpoint",
        [
            "Backend",
            "Request",
            "plain DRF",
            "fast path",
            "x plain",
            "instance level",
            "x plain",
            "queries plain/fast/instance",
        ],
        caption="In process through Django's WSGI handler, cache emptied (untimed) before "
        "every call; plain DRF /api/plain/, fast path /api/fast-live/, instance level /api/; "
        "list: questions/?page=2 (100 questions), retrieve: one question. Times: median "
        "± half IQR; x plain: per-repeat ratio, median ± half IQR.",
        left_columns=2,
    )
    for row in rows:
        timings, ratios, queries = row["timings"], row["ratios"], row["queries"]
        grid.rows.append(
            [
                _label(row["backend"], titles),
                "page of 100" if row["action"] == "list" else "retrieve",
                timing_text(timings["plain"], detailed),
                timing_text(timings["fast"], detailed),
                ratio_text(ratios["fast/plain"], detailed),
                timing_text(timings["instance"], detailed),
                ratio_text(ratios["instance/plain"], detailed),
                f"{queries['plain']}/{queries['fast']}/{queries['instance']}",
            ]
        )
    return grid


def writes_grid(record: dict[str, Any], detailed: bool) -> Grid | None:
    """Writes with growing fan-out: connected against not connected."""
    rows = record["results"].get("writes") or []
    if not rows:
        return None
    titles = _titles(record, detailed)
    grid = Grid(
        "Writes: the library connected against not connected, by fan-out N",
        [
            "Backend",
            "Write",
            "N",
            "not connected",
            "connected",
            "x not connected",
            "queries not connected",
            "queries connected",
        ],
        caption="save: Question with N Choices; fk cascade: delete of that Question "
        "(its N Choices go with it); m2m: a User's votes for N Choices added, removed, "
        "cleared. Autocommit, so the after-commit invalidation is in the time. Times: "
        "median ± half IQR; x: per-repeat ratio.",
        left_columns=3,
    )
    for row in rows:
        timings, queries = row["timings"], row["queries"]
        grid.rows.append(
            [
                _label(row["backend"], titles),
                row["scenario"],
                str(row["n"]),
                timing_text(timings["not_connected"], detailed),
                timing_text(timings["connected"], detailed),
                ratio_text(row["connected/not_connected"], detailed),
                str(queries["not_connected"]),
                str(queries["connected"]),
            ]
        )
    return grid
