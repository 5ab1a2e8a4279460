"""Workload 3: the example API end to end, cached on each backend vs plain DRF.

One gunicorn server per configuration runs the example project with
:mod:`benchmarks.settings` on the same database: one per backend (cached viewsets under
``/api/``, the backend chosen by ``DRF_INSTCACHE_BENCH_BACKEND``) and one for plain DRF
(``/api/plain/``, the same viewsets without the mixin). All servers are started up
front and load tests alternate between them repeat by repeat, so slow drift on the
machine affects every configuration alike and the cached/plain ratio is paired.

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
from benchmarks.timing import Ratio
from drf_instcache.testing.ports import free_port

HOST = "127.0.0.1"
KEY_PREFIX = "e2e"
PLAIN = "plain"
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
        """Quit (if not asked already) and wait for the master; kill it if it hangs."""
        self.terminate()
        process, self._process = self._process, None
        if process is not None:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
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


def steps(targets: Sequence[Target], plan: EndToEndPlan) -> int:
    """How many progress steps :func:`run` takes."""
    configurations = len(targets) + 1
    return configurations * (2 + 2 * plan.repeats)


def _summary(name: str, endpoint: Endpoint, results: list[LoadResult]) -> dict[str, Any]:
    throughput = Ratio([result.requests_per_s for result in results]).to_json()
    median = sorted(results, key=lambda r: r.requests_per_s)[len(results) // 2]
    return {
        "backend": name,
        "endpoint": endpoint.name,
        "description": endpoint.description,
        "paths": len(endpoint.paths),
        "requests_per_s": throughput,
        "latency_s": {
            "p50": _median([r.p50_s for r in results]),
            "p95": _median([r.p95_s for r in results]),
            "p99": _median([r.p99_s for r in results]),
            "max": max(r.max_s for r in results),
        },
        "median_run": median.to_json(),
        "runs": [result.to_json() for result in results],
        "requests": sum(result.requests for result in results),
        "errors": sum(result.errors for result in results),
        "ratio_to_plain": None,
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


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
    """Start every server, warm them, alternate load tests; one row per server and endpoint.

    ``phases`` receives the seconds spent starting, warming and measuring.
    """
    phases = phases if phases is not None else {}
    plain_endpoints = endpoints("/api/plain/", question_pks)
    cached_endpoints = endpoints("/api/", question_pks)
    servers: dict[str, WsgiServer] = {
        PLAIN: WsgiServer(
            PLAIN, {"DRF_INSTCACHE_BENCH_BACKEND": "locmem://unused"}, plan.workers, log_dir
        )
    }
    for target in targets:
        servers[target.name] = WsgiServer(
            target.name,
            {"DRF_INSTCACHE_BENCH_BACKEND": target.url, "DRF_INSTCACHE_BENCH_PREFIX": KEY_PREFIX},
            plan.workers,
            log_dir,
        )
    shared = {target.name: target.shared for target in targets} | {PLAIN: True}
    routes = {name: cached_endpoints for name in servers}
    routes[PLAIN] = plain_endpoints
    ready: list[str] = []
    try:
        progress.note("starting gunicorn servers")
        clock = time.monotonic()
        for server in servers.values():
            server.start()
        for name, server in servers.items():
            try:
                server.wait_ready(routes[name][0].paths[0])
            except Exception as error:
                on_error(name, error)
                server.stop()
            else:
                ready.append(name)
            progress.step()
        if PLAIN not in ready:
            return []

        phases["start_s"] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()
        for name in list(ready):
            progress.note(f"warming {name}")
            try:
                _warm(servers[name], routes[name], plan, shared[name])
                if name != PLAIN:
                    for cached, plain in zip(routes[name], plain_endpoints, strict=True):
                        check_same_answers(
                            servers[name],
                            servers[PLAIN],
                            _sample(cached.paths, CHECKED_PATHS),
                            _sample(plain.paths, CHECKED_PATHS),
                        )
            except Exception as error:
                on_error(name, error)
                ready.remove(name)
            progress.step()
        if PLAIN not in ready:
            return []

        phases["warm_s"] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()
        measured: dict[tuple[str, str], list[LoadResult]] = {}
        for repeat in range(plan.repeats):
            order = ready if repeat % 2 == 0 else list(reversed(ready))
            for index, endpoint_name in enumerate(("list", "retrieve")):
                for name in order if index % 2 == 0 else list(reversed(order)):
                    endpoint = next(e for e in routes[name] if e.name == endpoint_name)
                    progress.note(f"{name} {endpoint_name} ({repeat + 1}/{plan.repeats})")
                    result = generator.run(
                        HOST, servers[name].port, endpoint.paths, plan.duration, plan.connections
                    )
                    measured.setdefault((name, endpoint_name), []).append(result)
                    progress.step()
        phases["measure_s"] = round(time.monotonic() - clock, 1)
    finally:
        stop_all(servers.values())

    rows = []
    for name in ready:
        for endpoint in routes[name]:
            results = measured.get((name, endpoint.name))
            if results:
                rows.append(_summary(name, endpoint, results))
    plain_rows = {row["endpoint"]: row for row in rows if row["backend"] == PLAIN}
    for row in rows:
        plain_row = plain_rows.get(row["endpoint"])
        if row["backend"] != PLAIN and plain_row is not None:
            paired = zip(
                row["requests_per_s"]["samples"],
                plain_row["requests_per_s"]["samples"],
                strict=True,
            )
            row["ratio_to_plain"] = Ratio([a / b for a, b in paired]).to_json()
    return rows


def _request_all(port: int, paths: Sequence[str], connections: int) -> None:
    """GET every path (concurrently, ``connections`` at a time); fail on any non-200."""

    def fetch(path: str) -> None:
        status, body = get(port, path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")

    with ThreadPoolExecutor(max_workers=connections) as pool:
        list(pool.map(fetch, paths))


def _warm(server: WsgiServer, routes: list[Endpoint], plan: EndToEndPlan, shared: bool) -> None:
    """Fill the cache, then load each endpoint briefly, untimed.

    The list pages hold every question the retrieve endpoint asks for, so requesting
    them fills the cache for both endpoints. A per-process cache (Django locmem) must be
    filled in every gunicorn worker, and the kernel decides which worker accepts a
    connection: each page is then requested ``8 * workers`` times, which leaves a given
    worker without a given page with odds of 2**-16 when connections are spread evenly.
    Plain DRF gets the same warm-up (database connections, imports, query plans).
    """
    list_paths = next(endpoint.paths for endpoint in routes if endpoint.name == "list")
    times = 1 if shared else 8 * plan.workers
    _request_all(server.port, list(list_paths) * times, plan.connections)
    # The Python client takes fractions of a second (wrk only whole seconds).
    for endpoint in routes:
        PythonClient().run(HOST, server.port, endpoint.paths, plan.warmup, plan.connections)


def _sample(paths: Sequence[str], count: int) -> list[str]:
    """Up to ``count`` paths spread evenly over ``paths``."""
    step = max(1, len(paths) // count)
    return list(paths[::step][:count])
