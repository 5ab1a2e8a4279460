"""Workload: the near cache (``OPTIONS["NEAR_CACHE"]``) on the fast path, in process.

Requests go through Django's WSGI handler in this process (middleware, URL resolution,
DRF's cycle; no HTTP parsing, no load generator), so the figures are the server-side
cost of one request. Interleaved, repeat by repeat, on the harness's Redis:

* warm fast list (``/api/fast/questions/?page=1``, 100 questions, list queries cached)
  with the near cache and without it (every entry from Redis, one MGET);
* the whole-response cache (drf-extensions ``cache_response``, ``/api/whole/``, in the
  same Redis);
* the floor: a DRF ``APIView`` answering pre-rendered bytes of the warm list body's size
  (``/api/floor/``);
* the same for retrieve (``/api/fast/questions/<pk>/`` against ``/api/whole/...``).

Then the cross-process freshness: a spawned reader process holds the key in its near
cache and polls it (every ~0.1 ms); this process writes a new value, and the figure is
the time from the write's acknowledgement (``set_many`` returned) to the reader's first
read of the new value, on one monotonic clock (p50, p99, max, bounded rounds).
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from benchmarks.progress import ProgressSink
from benchmarks.servers import Target
from benchmarks.timing import Case, Plan, measure, ratio

KEY_PREFIX = "bench-near"
NEAR = {"MAX_BYTES": 64 * 2**20}
FRESHNESS_ROUNDS = 200
FRESHNESS_DEADLINE = 2.0
POLL_SLEEP = 0.0001
LIST_PATH = "/api/fast/questions/?page=1"
WHOLE_LIST_PATH = "/api/whole/questions/?page=1"
FLOOR_PATH = "/api/floor/"
RETRIEVE_FLOOR_PATH = "/api/floor/retrieve/"


def steps(plan: Plan) -> int:
    return 2 * plan.repeats + 1


class Driver:
    """Call Django's WSGI handler with a GET, as a WSGI server would (body drained)."""

    def __init__(self) -> None:
        from django.core.handlers.wsgi import WSGIHandler
        from django.test.client import RequestFactory

        self.handler = WSGIHandler()
        self.factory = RequestFactory()

    def environ(self, path: str) -> dict[str, Any]:
        route, _, query = path.partition("?")
        return self.factory._base_environ(PATH_INFO=route, QUERY_STRING=query, REQUEST_METHOD="GET")

    def call(self, path: str) -> Callable[[], bytes]:
        base = self.environ(path)
        handler = self.handler
        status: list[str] = []

        def start_response(code: str, headers: Any, exc_info: Any = None) -> None:
            status.append(code)

        def request() -> bytes:
            environ = dict(base)
            environ["wsgi.input"] = io.BytesIO(b"")
            response = handler(environ, start_response)
            try:
                return b"".join(response)
            finally:
                response.close()

        def checked() -> bytes:
            status.clear()
            body = request()
            if not status or not status[0].startswith("200"):
                raise RuntimeError(f"GET {path} answered {status}: {body[:200]!r}")
            return body

        request.checked = checked  # type: ignore[attr-defined]
        return request


def _backends(target: Target) -> dict[str, Any]:
    """The configured chain without and with the near cache, built as settings build it."""
    from django.test import override_settings

    from drf_instcache import settings as instcache_settings

    setting = target.backend_setting(KEY_PREFIX)
    built = {}
    for name, value in (
        ("redis", setting),
        ("redis+near", {**setting, "OPTIONS": {"NEAR_CACHE": NEAR}}),
    ):
        with override_settings(DRF_INSTCACHE_BACKEND=value):
            built[name] = instcache_settings.build_configured_backend()
    return built


def _use(backend: Any) -> None:
    """Make ``backend`` this process's backend (what get_backend() returns)."""
    import os

    from drf_instcache import settings as instcache_settings

    instcache_settings._backend = backend
    instcache_settings._backend_pid = os.getpid()


def _wait_live(near: Any, deadline: float = 10.0) -> None:
    near.start_tracking()
    end = time.monotonic() + deadline
    while not near.store.live:
        if time.monotonic() > end:
            raise RuntimeError("near cache tracking not up")
        time.sleep(0.005)


def run(
    targets: Sequence[Target],
    question_pks: Sequence[Any],
    plan: Plan,
    progress: ProgressSink,
    on_error: Callable[[Target | str, BaseException], None] | None = None,
) -> dict[str, Any]:
    from benchmarks.views import FloorView, RetrieveFloorView

    target = next((t for t in targets if t.name == "redis"), None)
    if target is None:
        return {"skipped": "the near cache needs the redis backend in --backends"}
    backends = _backends(target)
    plain, near = backends["redis"], backends["redis+near"]
    driver = Driver()
    pk = question_pks[0]
    retrieve_path = f"/api/fast/questions/{pk}/"
    whole_retrieve_path = f"/api/whole/questions/{pk}/"
    try:
        _wait_live(near)
        calls = {
            "list": driver.call(LIST_PATH),
            "whole_list": driver.call(WHOLE_LIST_PATH),
            "retrieve": driver.call(retrieve_path),
            "whole_retrieve": driver.call(whole_retrieve_path),
        }
        # Warm everything, and check that the near cache serves the same bytes.
        _use(plain)
        list_body = calls["list"].checked()  # type: ignore[attr-defined]
        retrieve_body = calls["retrieve"].checked()  # type: ignore[attr-defined]
        _use(near)
        for _ in range(3):
            near_list = calls["list"].checked()  # type: ignore[attr-defined]
            near_retrieve = calls["retrieve"].checked()  # type: ignore[attr-defined]
        if near_list != list_body or near_retrieve != retrieve_body:
            raise RuntimeError("the near cache answered other bytes than Redis")
        calls["whole_list"].checked()  # type: ignore[attr-defined]
        calls["whole_retrieve"].checked()  # type: ignore[attr-defined]
        FloorView.body = b"x" * len(list_body)
        calls["floor"] = driver.call(FLOOR_PATH)
        calls["floor"].checked()  # type: ignore[attr-defined]
        RetrieveFloorView.body = b"x" * len(retrieve_body)
        calls["floor_retrieve"] = driver.call(RETRIEVE_FLOOR_PATH)
        calls["floor_retrieve"].checked()  # type: ignore[attr-defined]

        def on(backend: Any, call: Callable[[], bytes]) -> Case:
            return Case(lambda: (_use(backend), call()))

        progress.note("near cache: warm list")
        lists = measure(
            {
                "near_list": on(near, calls["list"]),
                "redis_list": on(plain, calls["list"]),
                "whole_list": on(plain, calls["whole_list"]),
                "floor": on(plain, calls["floor"]),
            },
            plan,
            tick=progress.step,
        )
        progress.note("near cache: warm retrieve")
        retrieves = measure(
            {
                "near_retrieve": on(near, calls["retrieve"]),
                "redis_retrieve": on(plain, calls["retrieve"]),
                "whole_retrieve": on(plain, calls["whole_retrieve"]),
                "floor_retrieve": on(plain, calls["floor_retrieve"]),
            },
            plan,
            tick=progress.step,
        )
        near_stats = near.near_stats()
        progress.note("near cache: cross-process freshness")
        freshness = measure_freshness(target.url, FRESHNESS_ROUNDS)
        progress.step()
        return {
            "backend": target.name,
            "list_body_bytes": len(list_body),
            "retrieve_body_bytes": len(retrieve_body),
            "timings": {name: t.to_json() for name, t in {**lists, **retrieves}.items()},
            "ratios": {
                "whole_list/near_list": ratio(lists["whole_list"], lists["near_list"]).to_json(),
                "near_list/floor": ratio(lists["near_list"], lists["floor"]).to_json(),
                "redis_list/near_list": ratio(lists["redis_list"], lists["near_list"]).to_json(),
                "whole_retrieve/near_retrieve": ratio(
                    retrieves["whole_retrieve"], retrieves["near_retrieve"]
                ).to_json(),
                "redis_retrieve/near_retrieve": ratio(
                    retrieves["redis_retrieve"], retrieves["near_retrieve"]
                ).to_json(),
                "near_retrieve/floor_retrieve": ratio(
                    retrieves["near_retrieve"], retrieves["floor_retrieve"]
                ).to_json(),
                "whole_retrieve/floor_retrieve": ratio(
                    retrieves["whole_retrieve"], retrieves["floor_retrieve"]
                ).to_json(),
            },
            "near_stats": near_stats,
            "freshness": freshness,
        }
    finally:
        from drf_instcache import settings as instcache_settings

        instcache_settings.reset()
        for backend in (plain, near):
            try:
                backend.clear()
            finally:
                backend.close()


# -- cross-process freshness ------------------------------------------------------------
def _reader(url: str, key: str, connection: Any) -> None:
    """The reader process: keep ``key`` near-cached, poll it until the announced value."""
    from drf_instcache.backends.near import NearCacheBackend, parse_config
    from drf_instcache.backends.redis import RedisBackend

    config = parse_config(NEAR)
    assert config is not None
    near = NearCacheBackend(RedisBackend(url, key_prefix=KEY_PREFIX), config)
    try:
        _wait_live(near)
        connection.send("ready")
        while True:
            expected = connection.recv()
            if expected is None:
                break
            deadline = time.monotonic() + FRESHNESS_DEADLINE
            while key not in near.store and time.monotonic() < deadline:
                near.get_many([key])  # the old value, near-cached before the write
                time.sleep(POLL_SLEEP)
            connection.send(key in near.store)
            seen = None
            deadline = time.monotonic() + FRESHNESS_DEADLINE
            while time.monotonic() < deadline:
                if near.get_many([key]).get(key) == expected:
                    seen = time.monotonic()
                    break
                time.sleep(POLL_SLEEP)
            connection.send(seen)
    finally:
        near.close()


def _quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure_freshness(url: str, rounds: int) -> dict[str, Any]:
    from drf_instcache.backends.redis import RedisBackend

    key = "freshness"
    writer = RedisBackend(url, key_prefix=KEY_PREFIX)
    writer.set_many({key: b"v-start"})
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_reader, args=(url, key, child), daemon=True)
    process.start()
    latencies: list[float] = []
    lost = not_cached = 0
    try:
        if not parent.poll(60) or parent.recv() != "ready":
            raise RuntimeError("freshness reader did not start")
        for number in range(rounds):
            value = f"v-{number}".encode()
            parent.send(value)
            if not parent.recv():
                not_cached += 1
            writer.set_many({key: value})
            committed = time.monotonic()
            seen = parent.recv()
            if seen is None:
                lost += 1
            else:
                latencies.append(seen - committed)
        parent.send(None)
        process.join(10)
    finally:
        if process.is_alive():
            process.terminate()
        writer.delete_many([key])
        writer.close()
    result: dict[str, Any] = {
        "rounds": rounds,
        "not_fresh_within_deadline": lost,
        "old_value_not_near_cached": not_cached,
        "poll_interval_s": POLL_SLEEP,
    }
    if latencies:
        result.update(
            {
                "p50_s": _quantile(latencies, 0.5),
                "p99_s": _quantile(latencies, 0.99),
                "max_s": max(latencies),
                "min_s": min(latencies),
                "mean_s": statistics.fmean(latencies),
            }
        )
    return result


@contextlib.contextmanager
def serving(setting: Any) -> Iterator[Any]:
    """The backend ``setting`` builds, as this process's backend for the block; it is
    cleared, closed and forgotten afterwards."""
    from drf_instcache import settings as instcache_settings
    from drf_instcache.settings import build_backend

    backend = build_backend(setting)
    _use(backend)
    try:
        yield backend
    finally:
        instcache_settings.reset()
        try:
            backend.clear()
        finally:
            backend.close()
