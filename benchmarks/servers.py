"""Start the cache servers a run needs and describe every backend it can measure.

A *target* is one backend configuration the workloads run on: the
``DRF_INSTCACHE_BACKEND`` value that selects its adapter (in this process and in the
WSGI server), and a factory for the raw client it is compared with. memcached and
redis-server are started by the harness on free loopback ports (never the machine's
shared instances); a backend whose binary, client library or adapter is missing is
*skipped* with the reason, so the report can say why its row is absent.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.raw_clients import RawClient, disk_raw, django_raw, memcached_raw, redis_raw

ALL_BACKENDS = ("memcached", "redis", "disk", "django-locmem", "django-redis")
"""Every backend the harness knows, in report order."""

TIMEOUT = 3600.0
"""Lifetime given to every stored value (the adapters' default), raw clients included."""

DJANGO_LOCMEM_ALIAS = "bench_locmem"
DJANGO_REDIS_ALIAS = "bench_redis"
"""Cache aliases defined by :mod:`benchmarks.settings`."""


@dataclass
class Target:
    """One backend configuration to measure."""

    name: str
    title: str
    url: str
    make_raw: Callable[[], RawClient]
    shared: bool = True
    """False when every process has its own store (Django locmem): e2e warms each worker."""
    details: dict[str, Any] = field(default_factory=dict)

    def backend_setting(self, key_prefix: str) -> dict[str, Any]:
        """The ``DRF_INSTCACHE_BACKEND`` dict selecting this target under ``key_prefix``."""
        return {"BACKEND": self.url, "KEY_PREFIX": key_prefix}


@dataclass
class Skipped:
    """A backend this run could not measure, and why."""

    name: str
    reason: str


def binary_path(name: str) -> str | None:
    """Find a server binary on PATH or in the usual system folders."""
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/bin", "/usr/sbin", "/usr/local/bin"):
        candidate = Path(folder) / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def server_version(command: list[str]) -> str | None:
    """The first line a server binary prints for its version flag, if it runs."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else None


def _import_problem(module: str) -> str | None:
    """None when ``module`` imports, else a one-line reason naming what is missing."""
    try:
        importlib.import_module(module)
    except ImportError as error:
        return f"cannot import {module} ({error})"
    return None


class BenchServers(contextlib.AbstractContextManager["BenchServers"]):
    """Start the servers for the wanted backends; stop them on exit.

    After :meth:`start`, :attr:`targets` lists what can be measured and :attr:`skipped`
    what cannot, and :attr:`environment` holds the variables the Django settings module
    needs to reach the servers (set them before ``django.setup()`` and pass them to
    every WSGI server process).
    """

    def __init__(self, wanted: list[str], workdir: Path) -> None:
        unknown = set(wanted) - set(ALL_BACKENDS)
        if unknown:
            raise ValueError(f"unknown backend(s) {sorted(unknown)}; known: {ALL_BACKENDS}")
        self.wanted = [name for name in ALL_BACKENDS if name in wanted]
        self.workdir = workdir
        self.targets: list[Target] = []
        self.skipped: list[Skipped] = []
        self.environment: dict[str, str] = {}
        self.versions: dict[str, str | None] = {}
        self._stack = contextlib.ExitStack()
        self._redis_url: str | None = None
        self._redis_problem: str | None = None

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> BenchServers:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if {"redis", "django-redis"} & set(self.wanted):
            self._start_redis()
        for name in self.wanted:
            maker = getattr(self, "_" + name.replace("-", "_"))
            problem_or_target = maker()
            if isinstance(problem_or_target, Target):
                self.targets.append(problem_or_target)
            else:
                self.skipped.append(Skipped(name, problem_or_target))
        return self

    def __enter__(self) -> BenchServers:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def close(self) -> None:
        self._stack.close()

    # -- servers ----------------------------------------------------------------------
    def _start_redis(self) -> None:
        path = binary_path("redis-server")
        if path is None:
            self._redis_problem = "redis-server is not installed (apt-get install redis-server)"
            return
        problem = _import_problem("redis") or _import_problem("drf_instcache.testing.redis_server")
        if problem:
            self._redis_problem = problem
            return
        from drf_instcache.testing.redis_server import RedisServer

        try:
            server = RedisServer().start()
        except Exception as error:  # a launcher failure must not end the whole run
            self._redis_problem = f"redis-server did not start: {error}"
            return
        self._stack.callback(server.shutdown)
        self.versions["redis-server"] = server_version([path, "--version"])
        self._redis_port = server.port
        self._redis_url = f"redis://127.0.0.1:{server.port}"
        # Django's cache uses database 1, so its keys never mix with the adapter's.
        self.environment["DRF_INSTCACHE_BENCH_REDIS"] = f"{self._redis_url}/1"

    # -- one method per backend: a Target, or the reason it is skipped ----------------
    def _memcached(self) -> Target | str:
        path = binary_path("memcached")
        if path is None:
            return "memcached is not installed (apt-get install memcached)"
        problem = (
            _import_problem("pymemcache")
            or _import_problem("drf_instcache.backends.memcached")
            or _import_problem("drf_instcache.testing.memcached_server")
        )
        if problem:
            return problem
        from drf_instcache.testing.memcached_server import MemcachedServer

        try:
            server = MemcachedServer().start()
        except Exception as error:
            return f"memcached did not start: {error}"
        self._stack.callback(server.stop)
        self.versions["memcached"] = server_version([path, "-V"])
        port = server.port
        return Target(
            name="memcached",
            title="Memcached",
            url=f"memcached://127.0.0.1:{port}",
            make_raw=lambda: memcached_raw("127.0.0.1", port, TIMEOUT),
            details={"server": self.versions["memcached"], "port": port},
        )

    def _redis(self) -> Target | str:
        if self._redis_url is None:
            return self._redis_problem or "redis-server did not start"
        problem = _import_problem("drf_instcache.backends.redis")
        if problem:
            return problem
        url = f"{self._redis_url}/0"
        return Target(
            name="redis",
            title="Redis",
            url=url,
            make_raw=lambda: redis_raw(url, TIMEOUT),
            details={"server": self.versions.get("redis-server"), "location": url},
        )

    def _disk(self) -> Target | str:
        return disk_target(self.workdir)

    def _django_locmem(self) -> Target | str:
        return django_target("django-locmem", DJANGO_LOCMEM_ALIAS, shared=False)

    def _django_redis(self) -> Target | str:
        if self._redis_url is None:
            return self._redis_problem or "redis-server did not start"
        return django_target("django-redis", DJANGO_REDIS_ALIAS, shared=True)


def disk_target(workdir: Path) -> Target | str:
    """A Target for a diskcache directory under ``workdir`` (raw client: a sibling one)."""
    problem = _import_problem("diskcache") or _import_problem("drf_instcache.backends.disk")
    if problem:
        return problem
    directory = workdir / "disk-cache"
    raw_directory = workdir / "disk-cache-raw"
    return Target(
        name="disk",
        title="Disk (diskcache)",
        url=f"disk://{directory}",
        make_raw=lambda: disk_raw(str(raw_directory), TIMEOUT),
        details={"directory": str(directory)},
    )


def django_target(name: str, alias: str, *, shared: bool) -> Target | str:
    """A Target for the Django cache ``alias`` (defined by the settings in use)."""
    problem = _import_problem("drf_instcache.backends.django")
    if problem:
        return problem
    title = {"django-locmem": "Django cache (locmem)", "django-redis": "Django cache (Redis)"}
    return Target(
        name=name,
        title=title.get(name, f"Django cache {alias!r}"),
        url=f"django://{alias}",
        make_raw=lambda: django_raw(alias, TIMEOUT),
        shared=shared,
        details={"alias": alias},
    )


def each_target(
    targets: Sequence[Target],
    measure: Callable[[Target], list[dict[str, Any]]],
    on_error: Callable[[Target, BaseException], None] | None = None,
) -> list[dict[str, Any]]:
    """``measure`` every target's rows; a failing backend is reported (``on_error``) and
    the others still run (without ``on_error`` the failure is raised)."""
    rows: list[dict[str, Any]] = []
    for target in targets:
        try:
            rows += measure(target)
        except Exception as error:
            if on_error is None:
                raise
            on_error(target, error)
    return rows
