"""Smoke test of the benchmark harness: the quick backend-layer workload, in process.

It runs on the two backends that need no server (disk and a Django locmem alias) for
about a second, and checks the *shape* of what the harness writes: every backend,
operation and size has a row with adapter and raw timings and their ratio, the summary
quotes them, and the Markdown and PNG outputs are produced. Timings themselves are not
asserted (they depend on the machine).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from benchmarks import backends_layer, report
from benchmarks.__main__ import parse_args
from benchmarks.data import synthetic_dataset
from benchmarks.progress import Silent
from benchmarks.servers import Target, disk_target, django_target
from benchmarks.timing import Plan

SIZES = [1, 10]
REPEATS = 2


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("benchmarks")


@pytest.fixture(scope="module")
def targets(workdir: Path) -> list[Target]:
    disk = disk_target(workdir)
    locmem = django_target("django-locmem", "default", shared=False)
    assert isinstance(disk, Target), disk
    assert isinstance(locmem, Target), locmem
    return [disk, locmem]


@pytest.fixture(scope="module")
def record(targets: list[Target], workdir: Path) -> dict:
    """A record as ``python -m benchmarks --workloads backend`` writes it, read back.

    Built once for the module: the workload takes about a second.
    """
    plan = Plan(repeats=REPEATS, min_repeat_time=0.002, max_number=200)
    errors: list[str] = []
    run = report.new_record()
    run["settings"] = parse_args(["--quick", "--workloads", "backend"]).to_json()
    run["backends"]["measured"] = [{"name": t.name, "title": t.title} for t in targets]
    run["results"]["backend_layer"] = backends_layer.run(
        targets,
        synthetic_dataset(max(SIZES)),
        SIZES,
        plan,
        Silent(),
        on_error=lambda target, error: errors.append(f"{target.name}: {error!r}"),
    )
    assert errors == []
    run["summary"] = report.summarize(run)
    report.write_json(run, workdir / "results.json")
    return json.loads((workdir / "results.json").read_text())


def test_record_has_a_row_per_backend_operation_and_size(record: dict) -> None:
    rows = record["results"]["backend_layer"]
    assert sorted((row["backend"], row["operation"], row["n"]) for row in rows) == sorted(
        itertools.product(["disk", "django-locmem"], backends_layer.OPERATIONS, SIZES)
    )
    for row in rows:
        for side in ("adapter", "raw"):
            timing = row[side]
            assert timing["repeats"] == REPEATS == len(timing["samples_s"])
            assert timing["calls_per_repeat"] >= 1
            assert timing["min_s"] <= timing["q1_s"] <= timing["median_s"] <= timing["q3_s"]
            assert timing["q3_s"] <= timing["max_s"]
        ratio = row["adapter_raw_ratio"]
        assert len(ratio["samples"]) == REPEATS
        assert ratio["median"] > 0
        assert row["raw_client"]


def test_record_has_every_top_level_field(record: dict) -> None:
    assert set(report.new_record()) <= set(record)
    assert record["schema"] == report.SCHEMA


def test_summary_quotes_adapter_raw_at_the_largest_size(record: dict) -> None:
    summary = record["summary"]
    assert summary["adapter_raw_n"] == 10  # the size closest to 100 in this run
    assert set(summary["adapter_raw_ratio"]) == {"disk", "django-locmem"}
    for ratios in summary["adapter_raw_ratio"].values():
        assert set(ratios) == set(backends_layer.OPERATIONS)


def test_markdown_and_plot_are_written(record: dict, tmp_path: Path) -> None:
    from benchmarks import plots

    record = {**record, "machine": {"cpu_model": "test"}, "command": ["python", "-m", "x"]}
    markdown = report.markdown_report(record)
    assert "| Disk (diskcache) | get_many | 10 |" in markdown
    written = plots.write_all(record, tmp_path / "plots")
    assert [path.name for path in written] == ["backend_layer.png"]
    assert written[0].read_bytes().startswith(b"\x89PNG")


def test_quick_run_is_bounded() -> None:
    quick = parse_args(["--quick", "--out", "somewhere"])
    assert max(quick.sizes) == 100
    assert quick.e2e.repeats * quick.e2e.duration <= 2
    full = parse_args(["--out", "elsewhere", "--backends", "redis,disk", "--sizes", "10,1"])
    assert full.backends == ["redis", "disk"]
    assert full.sizes == [1, 10]


def test_unknown_backend_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--backends", "mongodb"])
    assert "mongodb" in capsys.readouterr().err


def test_missing_server_binaries_are_reported_as_skipped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from benchmarks import servers

    monkeypatch.setattr(servers, "binary_path", lambda name: None)
    with servers.BenchServers(["memcached", "redis", "django-redis", "disk"], tmp_path) as run:
        assert [target.name for target in run.targets] == ["disk"]
        reasons = {skipped.name: skipped.reason for skipped in run.skipped}
    assert set(reasons) == {"memcached", "redis", "django-redis"}
    assert "memcached is not installed" in reasons["memcached"]
    assert "redis-server is not installed" in reasons["redis"]
    assert "redis-server is not installed" in reasons["django-redis"]


def test_from_json_renders_an_earlier_run(record: dict, workdir: Path, tmp_path: Path) -> None:
    from benchmarks.__main__ import main

    assert main(["--from-json", str(workdir / "results.json"), "--out", str(tmp_path)]) == 0
    assert "| django-locmem |" not in (tmp_path / "results.md").read_text()  # titles, not ids
    assert "| Django cache (locmem) | set_many | 1 |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "backend_layer.png").exists()


def test_compression_workload_reports_bytes_and_times(targets: list[Target]) -> None:
    from benchmarks import compression_layer

    plan = Plan(repeats=REPEATS, min_repeat_time=0.002, max_number=50)
    rows = compression_layer.run(targets, synthetic_dataset(300), plan, Silent())
    assert [row["backend"] for row in rows] == ["disk", "django-locmem"]
    for row in rows:
        plain, zstd = row["variants"]
        assert (plain["variant"], zstd["variant"]) == ("plain", "zstd-3")
        assert plain["stored_bytes"] == row["value_bytes"] > 10_000
        assert zstd["stored_bytes"] < plain["stored_bytes"] / 2
        assert len(zstd["get_many"]["samples_s"]) == REPEATS
        assert row["layer_adapter_ratio"]["median"] > 0
    record = report.new_record()
    record["results"]["compression"] = rows
    record["backends"]["measured"] = [{"name": t.name, "title": t.title} for t in targets]
    markdown = report.to_markdown(report.compression_grid(record, detailed=True))
    assert "| Disk (diskcache) | zstd-3 |" in markdown


def test_near_workload_measures_cross_process_freshness_and_renders() -> None:
    from benchmarks import near_layer
    from drf_instcache.testing.redis_server import RedisServer
    from tests.servers import require_binary

    require_binary("redis-server")
    with RedisServer() as server:
        freshness = near_layer.measure_freshness(server.url, rounds=5)
    assert freshness["rounds"] == 5
    assert freshness["not_fresh_within_deadline"] == 0
    assert freshness["old_value_not_near_cached"] == 0
    assert freshness["min_s"] <= freshness["p50_s"] <= freshness["p99_s"] <= freshness["max_s"]
    timing = {"median_s": 1e-3, "q1_s": 1e-3, "q3_s": 1e-3, "samples_s": [1e-3], "repeats": 1}
    ratio_ = {"median": 1.0, "q1": 1.0, "q3": 1.0, "samples": [1.0]}
    names = ["near_list", "redis_list", "whole_list", "floor"]
    names += ["near_retrieve", "redis_retrieve", "whole_retrieve"]
    record = report.new_record()
    record["results"]["near"] = {
        "list_body_bytes": 11_000,
        "timings": dict.fromkeys(names, timing),
        "ratios": dict.fromkeys(
            [
                "whole_list/near_list",
                "near_list/floor",
                "redis_list/near_list",
                "whole_retrieve/near_retrieve",
                "redis_retrieve/near_retrieve",
            ],
            ratio_,
        ),
        "freshness": freshness,
    }
    markdown = report.to_markdown(report.near_grid(record, detailed=True))
    assert "whole_list/near_list" in markdown and "cross-process freshness" in markdown


@pytest.fixture
def polls(db: None) -> list:
    """A page and a half of Questions with a Choice each, and the benchmark URLs."""
    from django.test import override_settings
    from django.urls import clear_url_caches
    from django.utils import timezone

    from example.polls.models import Choice, Question

    questions = Question.objects.bulk_create(
        Question(question_text=f"q{i}", pub_date=timezone.now()) for i in range(150)
    )
    Choice.objects.bulk_create(Choice(question=q, choice_text="c") for q in questions)
    from django.conf import settings

    caches = {**settings.CACHES, "bench_whole": {"BACKEND": LOCMEM, "LOCATION": "whole"}}
    with override_settings(ROOT_URLCONF="benchmarks.urls", CACHES=caches):
        clear_url_caches()
        yield [q.pk for q in questions]
    clear_url_caches()


LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
TINY = Plan(repeats=REPEATS, min_repeat_time=0.0, max_number=1, warmup_calls=0)


@pytest.mark.django_db(transaction=True)
def test_cold_workload_compares_with_plain_drf_and_renders(polls: list, targets) -> None:
    from benchmarks import cold_layer
    from benchmarks.report_cold_writes import cold_grid

    rows = cold_layer.run(targets[1:], polls[0], TINY, Silent())
    assert [(row["backend"], row["action"]) for row in rows] == [
        ("django-locmem", "list"),
        ("django-locmem", "retrieve"),
    ]
    for row in rows:
        assert set(row["timings"]) == {"plain", "fast", "instance"}
        assert set(row["ratios"]) == {"fast/plain", "instance/plain"}
        assert len(row["ratios"]["fast/plain"]["samples"]) == REPEATS
    # What the README's "What a request costs" says a cold request asks the database.
    assert rows[0]["queries"] == {"plain": 3, "fast": 4, "instance": 4}
    assert rows[1]["queries"] == {"plain": 2, "fast": 2, "instance": 2}
    record = report.new_record()
    record["results"]["cold"] = rows
    markdown = report.to_markdown(cold_grid(record, detailed=True))
    assert "| django-locmem | page of 100 |" in markdown and "| 3/4/4 |" in markdown


@pytest.mark.django_db(transaction=True)
def test_writes_workload_measures_fan_out_connected_and_not(polls: list, targets) -> None:
    from benchmarks import writes_layer
    from benchmarks.report_cold_writes import writes_grid
    from example.polls.models import Choice, Question

    before = (Question.objects.count(), Choice.objects.count())
    rows = writes_layer.run(targets[1:], [1, 3], TINY, Silent())
    assert [(row["scenario"], row["n"]) for row in rows] == [
        (name, 3) for name in writes_layer.SCENARIOS
    ]
    for row in rows:
        assert len(row["connected/not_connected"]["samples"]) == REPEATS
        # Connected, the library's invalidation asks the database more; never less.
        assert row["queries"]["connected"] > row["queries"]["not_connected"] > 0
    assert (Question.objects.count(), Choice.objects.count()) == before  # cleaned up
    record = report.new_record()
    record["results"]["writes"] = rows
    markdown = report.to_markdown(writes_grid(record, detailed=True))
    assert "| django-locmem | m2m clear | 3 |" in markdown
