"""Workload 3: the example API end to end, cached on each backend vs plain DRF.

One gunicorn server per backend runs the example project with :mod:`benchmarks.settings`
on the same database (the backend chosen by ``DRF_INSTCACHE_BENCH_BACKEND``), and one
more for plain DRF. Each server answers two *configurations*:

* a backend's server: the instance cache (``/api/``, configuration ``<backend>``) and
  the fast path, rendered JSON per instance, asking the database for each list's count
  and page keys (``/api/fast-live/``, ``<backend> fast``) or with those list queries
  cached too (``/api/fast/``, ``<backend> fast+lists``);
* the plain server: plain DRF (``/api/plain/``, ``plain``) and whole responses cached
  by drf-extensions' ``cache_response`` in the harness's Redis (``/api/whole/``,
  ``whole-response``): the ceiling the fast path is compared with.

All servers are started up front and load tests alternate between configurations repeat
by repeat, so slow drift on the machine affects every configuration alike and the ratios
(to plain DRF, and fast path to whole-response) are paired.

Endpoints: *list* cycles through the first pages of questions (100 per page, the
project's page size) and *retrieve* through single questions on those pages. Cached
servers are warmed (every path requested, then a short untimed load test so each worker
process has its entries too, which matters for per-process Django locmem) before any
figure is taken.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.load import LoadGenerator, LoadResult, PythonClient
from benchmarks.progress import ProgressSink
from benchmarks.servers import Target
from benchmarks.timing import summary
from drf_instcache.testing.ports import free_port

HOST = "127.0.0.1"
KEY_PREFIX = "e2e"
PLAIN = "plain"
WHOLE = "whole-response"
FAST_SUFFIX = " fast"
LISTS_SUFFIX = " fast+lists"
"""Fast path with its list queries cached too (``DRF_INSTCACHE_CACHE_LIST_QUERIES``)."""


def base_backend(configuration: str) -> str:
    """The backend a configuration runs on: ``redis`` for ``redis fast+lists``."""
    return configuration.split(FAST_SUFFIX)[0]


def is_fast(configuration: str) -> bool:
    """Whether a configuration is one of the fast path's."""
    return configuration.endswith((FAST_SUFFIX, LISTS_SUFFIX))


LIST_PAGES = 10
"""List requests cycle through pages 1..LIST_PAGES (LIST_PAGES * 100 questions)."""
CHECKED_PATHS = 10
"""Paths per endpoint whose cached answer is compared with plain DRF's before timing."""
START_TIMEOUT = 60.0
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Endpoint:
    name: str
    description: str
    paths: tuple[str, ...]


def endpoints(api_root: str, question_pks: Sequence[Any]) -> list[Endpoint]:
    """The list and retrieve endpoints under ``api_root`` (``/api/`` or ``/api/plain/``)."""
    pages = max(1, min(LIST_PAGES, len(question_pks) // 100))
    retrieve_pks = question_pks[: pages * 100]
    return [
        Endpoint(
            "list",
            f"GET {api_root}questions/?page=1..{pages}, 100 questions per page",
            tuple(f"{api_root}questions/?page={page}" for page in range(1, pages + 1)),
        ),
        Endpoint(
            "retrieve",
            f"GET {api_root}questions/<pk>/, {len(retrieve_pks)} different questions",
            tuple(f"{api_root}questions/{pk}/" for pk in retrieve_pks),
        ),
    ]


def gunicorn_problem() -> str | None:
    """None when gunicorn can be run, else why not."""
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        return "gunicorn is not installed (pip install 'drf-instcache[bench]')"
    return None


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class WsgiServer:
    """gunicorn serving the example project for one configuration, on a free port."""

    def __init__(self, name: str, environment: dict[str, str], workers: int, log_dir: Path):
        self.name = name
        self.environment = environment
        self.workers = workers
        self.log_path = log_dir / f"gunicorn-{name}.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self) -> None:
        """Spawn gunicorn; :meth:`wait_ready` waits until it answers."""
        self.port = free_port(HOST)
        self._log = self.log_path.open("wb")
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "example.wsgi:application",
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            "sync",
            # Import the project once in the master and fork it: a third of the start-up
            # CPU. Connections (database, cache) are opened lazily in each worker.
            "--preload",
            "--log-level",
            "warning",
            "--timeout",
            "60",
        ]
        env = {
            **os.environ,
            **self.environment,
            "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        self._process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, probe_path: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"gunicorn for {self.name} exited:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, body = get(self.port, probe_path, timeout=5)
                if status == 200:
                    return
                raise RuntimeError(
                    f"gunicorn for {self.name} answered {status} on {probe_path}: "
                    f"{body[:300]!r}\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn for {self.name} not ready in {START_TIMEOUT}s")
            time.sleep(0.1)

    def log_tail(self, lines: int = 15) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def terminate(self) -> None:
        """Ask gunicorn to quit now (SIGQUIT: no graceful wait for idle workers)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGQUIT)

    def stop(self) -> None:
        """Quit (if not asked already) and wait for the master.

        A server that is not gone after a second is killed with its workers (its own
        process group): it holds nothing worth a graceful exit.
        """
        self.terminate()
        process, self._process = self._process, None
        if process is not None:
            try:
                process.wait(1)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None


def stop_all(servers: Iterable[WsgiServer]) -> None:
    """Stop servers in parallel: signal them all, then wait for each."""
    servers = list(servers)
    for server in servers:
        server.terminate()
    for server in servers:
        server.stop()


def _results_of(body: bytes) -> list[Any]:
    data = json.loads(body)
    return data["results"] if isinstance(data, dict) and "results" in data else data


def check_same_answers(
    cached: WsgiServer, plain: WsgiServer, cached_paths: Sequence[str], plain_paths: Sequence[str]
) -> None:
    """Refuse to time a cached server that does not answer what plain DRF answers."""
    for cached_path, plain_path in zip(cached_paths, plain_paths, strict=True):
        cached_status, cached_body = get(cached.port, cached_path)
        plain_status, plain_body = get(plain.port, plain_path)
        if cached_status != plain_status or _results_of(cached_body) != _results_of(plain_body):
            raise RuntimeError(
                f"{cached.name}: GET {cached_path} ({cached_status}) differs from plain DRF "
                f"GET {plain_path} ({plain_status})"
            )


@dataclass
class EndToEndPlan:
    duration: float
    warmup: float
    repeats: int
    connections: int
    workers: int
    fast_path: bool = True
    """Also measure the fast path (``<backend> fast``) and whole responses (``whole-response``)."""


def steps(targets: Sequence[Target], plan: EndToEndPlan) -> int:
    """How many progress steps :func:`run` takes."""
    servers = len(targets) + 1
    configurations = 2 + 3 * len(targets) if plan.fast_path else servers
    return servers + configurations * (1 + 2 * plan.repeats)


def _paired(results: dict[int, LoadResult], reference: dict[int, LoadResult]) -> list[float]:
    """Throughput ratios of the repeats two configurations ran in the same round."""
    return [
        results[r].requests_per_s / reference[r].requests_per_s
        for r in sorted(results)
        if r in reference and reference[r].requests_per_s
    ]


def _row(name: str, endpoint: Endpoint, results: list[LoadResult]) -> dict[str, Any]:
    """One configuration's figures for one endpoint, over its repeats."""
    middle = sorted(results, key=lambda result: result.requests_per_s)[len(results) // 2]
    return {
        "backend": name,
        "endpoint": endpoint.name,
        "description": endpoint.description,
        "paths": len(endpoint.paths),
        "requests_per_s": summary([result.requests_per_s for result in results]),
        "latency_s": {
            "p50": statistics.median(result.p50_s for result in results),
            "p95": statistics.median(result.p95_s for result in results),
            "p99": statistics.median(result.p99_s for result in results),
            "max": max(result.max_s for result in results),
        },
        "median_run": middle.to_json(),
        "runs": [result.to_json() for result in results],
        "requests": sum(result.requests for result in results),
        "errors": sum(result.errors for result in results),
        "ratio_to_plain": None,
        "ratio_to_whole": None,
    }


class EndToEnd:
    """One gunicorn server per configuration, warmed, then load-tested in turns."""

    def __init__(
        self,
        targets: Sequence[Target],
        question_pks: Sequence[Any],
        plan: EndToEndPlan,
        generator: LoadGenerator,
        log_dir: Path,
        progress: ProgressSink,
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        self.plan = plan
        self.generator = generator
        self.progress = progress
        self.on_error = on_error
        self.plain_endpoints = endpoints("/api/plain/", question_pks)
        cached_endpoints = endpoints("/api/", question_pks)
        fast_endpoints = endpoints("/api/fast-live/", question_pks)
        lists_endpoints = endpoints("/api/fast/", question_pks)
        self.servers: dict[str, WsgiServer] = {
            PLAIN: WsgiServer(
                PLAIN, {"DRF_INSTCACHE_BENCH_BACKEND": "locmem://unused"}, plan.workers, log_dir
            )
        }
        # Configuration -> its endpoints, its server, whether its cache is shared by workers.
        self.routes: dict[str, list[Endpoint]] = {PLAIN: self.plain_endpoints}
        self.server_of: dict[str, str] = {PLAIN: PLAIN}
        self.shared: dict[str, bool] = {PLAIN: True}
        if plan.fast_path:
            self.routes[WHOLE] = endpoints("/api/whole/", question_pks)
            self.server_of[WHOLE] = PLAIN
            self.shared[WHOLE] = bool(os.environ.get("DRF_INSTCACHE_BENCH_REDIS"))
        for target in targets:
            self.servers[target.name] = WsgiServer(
                target.name,
                {
                    "DRF_INSTCACHE_BENCH_BACKEND": target.url,
                    "DRF_INSTCACHE_BENCH_PREFIX": KEY_PREFIX,
                },
                plan.workers,
                log_dir,
            )
            self.routes[target.name] = cached_endpoints
            configurations = [target.name]
            if plan.fast_path:
                self.routes[target.name + FAST_SUFFIX] = fast_endpoints
                self.routes[target.name + LISTS_SUFFIX] = lists_endpoints
                configurations += [target.name + FAST_SUFFIX, target.name + LISTS_SUFFIX]
            for name in configurations:
                self.server_of[name] = target.name
                self.shared[name] = target.shared
        self.ready: list[str] = []
        # (configuration, endpoint) -> {repeat index: result}
        self.results: dict[tuple[str, str], dict[int, LoadResult]] = {}

    def _fail(self, name: str, error: BaseException) -> None:
        self.on_error(name, error)
        if name in self.ready:
            self.ready.remove(name)

    def start(self) -> None:
        """Spawn every server at once (they import Django in parallel), wait for each."""
        self.progress.note("starting gunicorn servers")
        for server in self.servers.values():
            server.start()
        for name, server in self.servers.items():
            try:
                server.wait_ready(self.routes[name][0].paths[0])
            except Exception as error:
                self.on_error(name, error)
                server.stop()
            else:
                self.ready.extend(c for c, s in self.server_of.items() if s == name)
            self.progress.step()

    def warm(self) -> None:
        """Warm every server; check each cached one answers exactly what plain DRF does."""
        for name in list(self.ready):
            self.progress.note(f"warming {name}")
            try:
                server = self.servers[self.server_of[name]]
                _warm(server, self.routes[name], self.plan, self.shared[name], name == WHOLE)
                if name != PLAIN:
                    for cached, plain in zip(self.routes[name], self.plain_endpoints, strict=True):
                        check_same_answers(
                            server,
                            self.servers[PLAIN],
                            _sample(cached.paths, CHECKED_PATHS),
                            _sample(plain.paths, CHECKED_PATHS),
                        )
            except Exception as error:
                self._fail(name, error)
            self.progress.step()

    def measure(self) -> None:
        """Load-test every configuration and endpoint, alternating the order per repeat."""
        for repeat in range(self.plan.repeats):
            for turn, endpoint_name in enumerate(("list", "retrieve")):
                order = list(self.ready)
                if (repeat + turn) % 2:
                    order.reverse()
                for name in order:
                    self._measure_one(name, endpoint_name, repeat)

    def _measure_one(self, name: str, endpoint_name: str, repeat: int) -> None:
        endpoint = next(e for e in self.routes[name] if e.name == endpoint_name)
        self.progress.note(f"{name} {endpoint_name} ({repeat + 1}/{self.plan.repeats})")
        try:
            result = self.generator.run(
                HOST,
                self.servers[self.server_of[name]].port,
                endpoint.paths,
                self.plan.duration,
                self.plan.connections,
            )
        except Exception as error:
            self._fail(name, error)
        else:
            self.results.setdefault((name, endpoint_name), {})[repeat] = result
        self.progress.step()

    def stop(self) -> None:
        stop_all(self.servers.values())

    def rows(self) -> list[dict[str, Any]]:
        """One row per configuration and endpoint, with ratios of paired repeats.

        Every configuration but plain carries its throughput ratio to plain DRF; the
        fast-path configurations also their ratio to the whole-response cache. Repeats
        are paired with the reference's repeat of the same round.
        """
        rows: list[dict[str, Any]] = []
        for name, routes in self.routes.items():
            for endpoint in routes:
                by_repeat = self.results.get((name, endpoint.name))
                if not by_repeat:
                    continue
                row = _row(name, endpoint, [by_repeat[r] for r in sorted(by_repeat)])
                references = {"ratio_to_plain": PLAIN}
                if is_fast(name):
                    references["ratio_to_whole"] = WHOLE
                for field_name, reference in references.items():
                    paired = _paired(by_repeat, self.results.get((reference, endpoint.name), {}))
                    if paired and name != reference:
                        row[field_name] = summary(paired)
                rows.append(row)
        return rows


def run(
    targets: Sequence[Target],
    question_pks: Sequence[Any],
    plan: EndToEndPlan,
    generator: LoadGenerator,
    log_dir: Path,
    progress: ProgressSink,
    on_error: Callable[[str, BaseException], None],
    phases: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Start, warm and measure every configuration; one row per server and endpoint.

    Without a working plain-DRF server there is nothing to compare with, so nothing is
    measured. ``phases`` receives the seconds spent starting, warming and measuring.
    """
    phases = phases if phases is not None else {}
    workload = EndToEnd(targets, question_pks, plan, generator, log_dir, progress, on_error)
    try:
        for phase in (workload.start, workload.warm, workload.measure):
            clock = time.monotonic()
            phase()
            phases[f"{phase.__name__}_s"] = round(time.monotonic() - clock, 1)
            if PLAIN not in workload.ready:
                return []
    finally:
        workload.stop()
    return workload.rows()


def _request_all(port: int, paths: Sequence[str], connections: int) -> None:
    """GET every path (concurrently, ``connections`` at a time); fail on any non-200."""

    def fetch(path: str) -> None:
        status, body = get(port, path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")

    with ThreadPoolExecutor(max_workers=connections) as pool:
        list(pool.map(fetch, paths))


def _warm(
    server: WsgiServer,
    routes: list[Endpoint],
    plan: EndToEndPlan,
    shared: bool,
    every_path: bool = False,
) -> None:
    """Fill the cache, then load each endpoint briefly, untimed.

    The list pages hold every question the retrieve endpoint asks for, so requesting
    them fills the instance caches for both endpoints; a whole-response cache
    (``every_path``) needs each retrieve path requested too. A per-process cache (Django
    locmem) must be filled in every gunicorn worker, and the kernel decides which worker
    accepts a connection: each path is then requested ``8 * workers`` times, which leaves
    a given worker without a given path with odds of 2**-16 when connections are spread
    evenly.
    Plain DRF gets the same warm-up (database connections, imports, query plans).
    """
    paths = [
        path
        for endpoint in routes
        if every_path or endpoint.name == "list"
        for path in endpoint.paths
    ]
    times = 1 if shared else 8 * plan.workers
    _request_all(server.port, paths * times, plan.connections)
    # The Python client takes fractions of a second (wrk only whole seconds).
    for endpoint in routes:
        PythonClient().run(HOST, server.port, endpoint.paths, plan.warmup, plan.connections)


def _sample(paths: Sequence[str], count: int) -> list[str]:
    """Up to ``count`` paths spread evenly over ``paths``."""
    step = max(1, len(paths) // count)
    return list(paths[::step][:count])
