"""Command line of the benchmark harness: ``python -m benchmarks [--quick] --out DIR``.

The order matters: servers are started and the database chosen *before* Django is set
up, because :mod:`benchmarks.settings` reads their addresses from the environment (and
the gunicorn processes of the end-to-end workload inherit the same environment).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks import report
from benchmarks.servers import ALL_BACKENDS, BenchServers, Target
from benchmarks.timing import Plan

REPO = Path(__file__).resolve().parent.parent
WORKLOADS = ("backend", "core", "e2e", "compression", "near", "cold", "writes")
FULL_SIZES = (1, 10, 100, 1000)
QUICK_SIZES = (1, 10, 100)
SQLITE_PATH = REPO / "var" / "bench" / "bench.sqlite3"
"""The SQLite database used without PostgreSQL; kept between runs (seeding is slow)."""
LOAD_WARNING = 0.5
"""Warn when the 1-minute load average exceeds this before the run starts."""


@dataclass
class EndToEndSettings:
    """How long and how hard the load generator pushes each server."""

    duration: float = 2.0
    warmup: float = 0.25
    repeats: int = 3
    connections: int = 4
    load_generator: str = "auto"
    fast_path: bool = True
    workers: int = 2


@dataclass
class RunSettings:
    """Everything a run was asked to do, recorded verbatim in the JSON."""

    quick: bool
    out: Path
    backends: list[str]
    workloads: list[str]
    sizes: list[int]
    plan: Plan
    cold_plan: Plan
    e2e: EndToEndSettings = field(default_factory=EndToEndSettings)
    database: str = "auto"
    from_json: Path | None = None
    """Measure nothing: render the tables, results.md and plots of this results.json."""

    def to_json(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "out": str(self.out),
            "backends": self.backends,
            "workloads": self.workloads,
            "sizes": self.sizes,
            "plan": self.plan.to_json(),
            "cold_plan": self.cold_plan.to_json(),
            "end_to_end": asdict(self.e2e),
            "database": self.database,
        }


def _csv(kind: type, choices: Sequence[Any] | None = None) -> Any:
    def parse(text: str) -> list[Any]:
        values = [kind(part.strip()) for part in text.split(",") if part.strip()]
        if not values:
            raise argparse.ArgumentTypeError("give at least one value")
        if choices is not None:
            unknown = [value for value in values if value not in choices]
            if unknown:
                raise argparse.ArgumentTypeError(
                    f"unknown {', '.join(map(str, unknown))}; choose from {', '.join(choices)}"
                )
        return values

    return parse


def parse_args(argv: Sequence[str] | None = None) -> RunSettings:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time drf-instcache on every available backend: adapter vs raw client, "
        "the strategy core, and the example API end to end against plain DRF.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a run of well under a minute: fewer repeats, N up to 100, short load tests",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("results/latest"), help="results folder (created)"
    )
    parser.add_argument(
        "--backends",
        type=_csv(str, ALL_BACKENDS),
        default=list(ALL_BACKENDS),
        help=f"comma-separated subset of {','.join(ALL_BACKENDS)}",
    )
    parser.add_argument(
        "--workloads",
        type=_csv(str, WORKLOADS),
        default=list(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)}",
    )
    parser.add_argument(
        "--sizes",
        type=_csv(int),
        default=None,
        help="batch sizes N (default 1,10,100,1000; --quick: 1,10,100)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="repeats per figure")
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds per end-to-end load test"
    )
    parser.add_argument(
        "--connections", type=int, default=None, help="concurrent end-to-end clients"
    )
    parser.add_argument(
        "--fast-path",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also measure the fast path (/api/fast/) and whole-response caching "
        "(/api/whole/) end to end (default: on; off with --quick, to stay under a minute)",
    )
    parser.add_argument(
        "--load-generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="end-to-end load generator (auto: wrk when installed, else a Python client)",
    )
    parser.add_argument(
        "--database",
        choices=("auto", "postgres", "sqlite"),
        default="auto",
        help="auto: PostgreSQL when it answers on 127.0.0.1:5432, else SQLite",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        default=None,
        metavar="RESULTS_JSON",
        help="measure nothing: render the tables, results.md and plots of an earlier "
        "run's results.json into --out (default: that file's folder)",
    )
    args = parser.parse_args(argv)

    if args.quick:
        plan = Plan(repeats=3, min_repeat_time=0.01, max_number=2000)
        cold_plan = Plan(repeats=3, min_repeat_time=0.01, max_number=50, warmup_calls=0)
        # wrk measures whole seconds: one 1 s load test per endpoint and configuration.
        e2e = EndToEndSettings(duration=1.0, warmup=0.2, repeats=1)
        sizes = list(QUICK_SIZES)
    else:
        plan = Plan(repeats=7, min_repeat_time=0.02)
        cold_plan = Plan(repeats=15, min_repeat_time=0.05, max_number=200, warmup_calls=0)
        e2e = EndToEndSettings()
        sizes = list(FULL_SIZES)
    if args.sizes:
        sizes = sorted(set(args.sizes))
        if sizes[0] < 1:
            parser.error("--sizes must be positive")
    if args.repeats:
        plan = replace(plan, repeats=args.repeats)
        cold_plan = replace(cold_plan, repeats=args.repeats)
        e2e.repeats = args.repeats
    if args.duration:
        e2e.duration = args.duration
    if args.connections:
        e2e.connections = args.connections
    e2e.load_generator = args.load_generator
    e2e.fast_path = not args.quick if args.fast_path is None else args.fast_path
    out = args.out
    if args.from_json is not None and "--out" not in (argv if argv is not None else sys.argv):
        out = args.from_json.parent
    return RunSettings(
        quick=args.quick,
        out=out,
        backends=args.backends,
        workloads=[name for name in WORKLOADS if name in args.workloads],
        sizes=sizes,
        plan=plan,
        cold_plan=cold_plan,
        e2e=e2e,
        database=args.database,
        from_json=args.from_json,
    )


def _setup_django(environment: dict[str, str]) -> None:
    os.environ.update(environment)
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    import django

    django.setup()


class Run:
    """One benchmark run: owns the record and reports workload failures into it."""

    def __init__(
        self, settings: RunSettings, console: Console, argv: Sequence[str] | None = None
    ) -> None:
        self.settings = settings
        self.argv = list(sys.argv[1:] if argv is None else argv)
        self.console = console
        self.record = report.new_record()

    def error(self, workload: str, target: Target | str, error: BaseException) -> None:
        name = target if isinstance(target, str) else target.name
        self.record["errors"].append(
            {"workload": workload, "backend": name, "error": f"{type(error).__name__}: {error}"}
        )

    def skip_workload(self, name: str, reason: str) -> None:
        self.record["settings"].setdefault("skipped_workloads", []).append(
            {"name": name, "reason": reason}
        )

    def execute(self) -> int:
        """Run everything; return the exit status (1 when a workload failed somewhere)."""
        started = time.monotonic()
        record = self.record
        record["started_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        record["command"] = ["python", "-m", "benchmarks", *self.argv]
        record["settings"] = self.settings.to_json()
        with (
            tempfile.TemporaryDirectory(prefix="instcache-bench-") as workdir,
            BenchServers(self.settings.backends, Path(workdir)) as servers,
        ):
            dataset = self._prepare(servers)
            self._run_workloads(servers.targets, dataset)
        record["duration_s"] = round(time.monotonic() - started, 1)
        self._finish()
        return 1 if record["errors"] else 0

    def _prepare(self, servers: BenchServers) -> Any:
        """Set Django up on the chosen database, describe the run, load the values."""
        from benchmarks import data, machine

        record = self.record
        forced = None if self.settings.database == "auto" else self.settings.database
        database_environment, reason = data.choose_database(SQLITE_PATH, forced)
        _setup_django({**database_environment, **servers.environment})
        record["machine"] = machine.describe(REPO)
        load = record["machine"]["load_average"]
        if load and load[0] > LOAD_WARNING:
            self.console.print(
                f"[yellow]warning[/yellow]: load average {load[0]:.2f} before the run; "
                "other processes compete for the CPU and the figures will be noisy",
                highlight=False,
            )
        record["versions"] = machine.versions()
        record["servers"] = dict(servers.versions)
        record["backends"]["measured"] = [
            {"name": t.name, "title": t.title, "url": t.url, **t.details} for t in servers.targets
        ]
        record["backends"]["skipped"] = [asdict(s) for s in servers.skipped]
        for skipped in servers.skipped:
            self.console.print(
                f"[yellow]skipped backend {skipped.name}[/yellow]: {skipped.reason}",
                highlight=False,
            )
        with self.console.status("preparing the benchmark database"):
            record["database"] = {**data.prepare_database(), "chosen_because": reason}
            dataset = data.load_dataset(max(self.settings.sizes))
        record["dataset"] = dataset.describe()
        database = record["database"]
        self.console.print(
            f"database: {database['vendor']} {database['server_version']} ({reason}), "
            f"{database['questions']} questions"
            f"{' (seeded now)' if database['seeded_this_run'] else ''}; values: "
            f"{dataset.source}, {record['dataset']['mean_value_bytes']:.0f} bytes on average",
            highlight=False,
        )
        return dataset

    def _finish(self) -> None:
        """Summarize, write results.json, results.md and the plots, print the tables."""
        from benchmarks import machine

        record = self.record
        out = self.settings.out
        record["machine"]["load_average_after"] = machine.load_average()
        record["summary"] = report.summarize(record)
        record["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        report.write_json(record, out / "results.json")
        (out / "results.md").write_text(report.markdown_report(record))
        plots = self._plot()
        report.print_report(record, self.console)
        self.console.print(f"results: {out / 'results.json'}, {out / 'results.md'}")
        for path in plots:
            self.console.print(f"plot: {path}")
        self.console.print(f"total time {record['duration_s']} s")

    def _run_workloads(self, targets: list[Target], dataset: Any) -> None:
        from benchmarks.progress import RichProgress

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        # Everything loaded so far (Django, the dataset) is long-lived: move it out of the
        # collector's sight so collections during the run stay short.
        gc.collect()
        gc.freeze()
        with Progress(*columns, console=self.console) as bar:
            progress = RichProgress(bar)
            stages = {
                "backend": lambda: self._backend_layer(targets, dataset, progress),
                "core": lambda: self._core(targets, progress),
                "e2e": lambda: self._end_to_end(targets, progress),
                "compression": lambda: self._compression(targets, dataset, progress),
                "near": lambda: self._near(targets, progress),
                "cold": lambda: self._cold(targets, progress),
                "writes": lambda: self._writes(targets, progress),
            }
            for name, stage in stages.items():
                if name in self.settings.workloads:
                    started = time.monotonic()
                    stage()
                    self.record["stage_durations_s"][name] = round(time.monotonic() - started, 1)
            progress.finish()

    def _backend_layer(self, targets: list[Target], dataset: Any, progress: Any) -> None:
        from benchmarks import backends_layer

        settings = self.settings
        progress.stage(
            "backend layer", backends_layer.steps(targets, settings.sizes, settings.plan)
        )
        self.record["results"]["backend_layer"] = backends_layer.run(
            targets,
            dataset,
            settings.sizes,
            settings.plan,
            progress,
            on_error=lambda target, error: self.error("backend", target, error),
        )

    def _core(self, targets: list[Target], progress: Any) -> None:
        from benchmarks import core_layer, data

        problem = data.core_available()
        if problem:
            self.skip_workload("core", problem)
            return
        settings = self.settings
        codecs, missing = core_layer.available_codecs()
        for codec, reason in missing.items():
            self.skip_workload(f"core codec {codec}", reason)
        progress.stage(
            "core",
            core_layer.steps(targets, settings.sizes, codecs, settings.plan, settings.cold_plan),
        )
        self.record["results"]["core"] = core_layer.run(
            targets,
            data.question_pks(max(settings.sizes)),
            settings.sizes,
            codecs,
            settings.plan,
            settings.cold_plan,
            progress,
            on_error=lambda target, error: self.error("core", target, error),
        )

    def _compression(self, targets: list[Target], dataset: Any, progress: Any) -> None:
        import importlib.util

        from benchmarks import compression_layer

        if importlib.util.find_spec("zstandard") is None:
            self.skip_workload("compression", "zstandard is not installed (the [zstd] extra)")
            return
        plan = self.settings.plan
        progress.stage("compression", compression_layer.steps(targets, plan))
        self.record["results"]["compression"] = compression_layer.run(
            targets,
            dataset,
            plan,
            progress,
            on_error=lambda target, error: self.error("compression", target, error),
        )

    def _near(self, targets: list[Target], progress: Any) -> None:
        from benchmarks import data, near_layer

        problem = data.core_available()
        if problem:
            self.skip_workload("near", problem)
            return
        if not any(target.name == "redis" for target in targets):
            self.skip_workload("near", "the near cache needs the redis backend")
            return
        plan = self.settings.plan
        progress.stage("near cache", near_layer.steps(plan))
        try:
            self.record["results"]["near"] = near_layer.run(
                targets, data.question_pks(100), plan, progress
            )
        except Exception as error:
            self.error("near", "redis", error)

    def _cold(self, targets: list[Target], progress: Any) -> None:
        from benchmarks import cold_layer, data

        problem = data.core_available()
        if problem:
            self.skip_workload("cold", problem)
            return
        plan = self.settings.cold_plan
        progress.stage("cold reads", cold_layer.steps(targets, plan))
        self.record["results"]["cold"] = cold_layer.run(
            targets,
            data.question_pks(1)[0],
            plan,
            progress,
            on_error=lambda target, error: self.error("cold", target, error),
        )

    def _writes(self, targets: list[Target], progress: Any) -> None:
        from benchmarks import data, writes_layer

        problem = data.core_available()
        if problem:
            self.skip_workload("writes", problem)
            return
        settings = self.settings
        plan = settings.cold_plan
        progress.stage("writes", writes_layer.steps(targets, settings.sizes, plan))
        self.record["results"]["writes"] = writes_layer.run(
            targets,
            settings.sizes,
            plan,
            progress,
            on_error=lambda target, error: self.error("writes", target, error),
        )

    def _end_to_end(self, targets: list[Target], progress: Any) -> None:
        from benchmarks import data, end_to_end, load

        problem = data.core_available() or end_to_end.gunicorn_problem()
        if problem:
            self.skip_workload("e2e", problem)
            return
        settings = self.settings.e2e
        plan = end_to_end.EndToEndPlan(
            duration=settings.duration,
            warmup=settings.warmup,
            repeats=settings.repeats,
            connections=settings.connections,
            workers=settings.workers,
            fast_path=settings.fast_path,
        )
        try:
            generator = load.choose_generator(settings.load_generator)
        except RuntimeError as error:
            self.skip_workload("e2e", str(error))
            return
        self.record["settings"]["end_to_end"]["load_generator_used"] = {
            "name": generator.name,
            "version": generator.version(),
        }
        log_dir = self.settings.out / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        progress.stage("end to end", end_to_end.steps(targets, plan))
        self.record["results"]["end_to_end"] = end_to_end.run(
            targets,
            data.question_pks(end_to_end.LIST_PAGES * 100),
            plan,
            generator,
            log_dir,
            progress,
            on_error=lambda name, error: self.error("e2e", name, error),
            phases=self.record["stage_durations_s"].setdefault("e2e_phases", {}),
        )

    def _plot(self) -> list[Path]:
        try:
            from benchmarks import plots
        except ImportError as error:
            self.console.print(f"[yellow]no plots[/yellow]: {error}")
            return []
        return plots.write_all(self.record, self.settings.out)


def render(results_json: Path, out: Path, console: Console) -> int:
    """Re-render an earlier run: tables on the terminal, results.md and the plots."""
    import json

    from benchmarks import plots

    record = json.loads(results_json.read_text())
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(report.markdown_report(record))
    written = plots.write_all(record, out)
    report.print_report(record, console)
    console.print(f"rendered {results_json} into {out / 'results.md'}")
    for path in written:
        console.print(f"plot: {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    if settings.from_json is not None:
        return render(settings.from_json, settings.out, Console())
    return Run(settings, Console(), argv).execute()


if __name__ == "__main__":
    sys.exit(main())
