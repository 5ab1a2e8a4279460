"""Issue 17: Prometheus metrics and OpenTelemetry spans of the cache, on real requests.

The metrics are read from a real ``prometheus_client.CollectorRegistry`` while requests
go through cached views on a real Redis server; the spans are collected by the real
OpenTelemetry SDK (an in-memory exporter).
"""

from __future__ import annotations

import importlib
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry, generate_latest
from rest_framework.test import APIClient

from drf_instcache import counters
from drf_instcache.backends.observed import remove_observer
from drf_instcache.ops import metrics, tracing
from tests.ops.conftest import Seeded

redis_backend = pytest.mark.parametrize("ops_backend", ["redis"], indirect=True)


@pytest.fixture
def registry():
    registry = CollectorRegistry()
    installed = metrics.install(registry)
    yield registry
    installed.uninstall()


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@redis_backend
def test_counters_and_latency_change_as_cached_views_serve(registry, backend, seeded: Seeded):
    counters.reset()
    api = APIClient()
    calls_before = value(
        registry,
        "drf_instcache_backend_call_seconds_count",
        backend="redis",
        operation="get_many",
        outcome="ok",
    )
    cold = api.get("/api/questions/")  # misses, fills
    assert cold.status_code == 200
    page = len(cold.json()["results"])
    assert page == seeded.questions
    cold_misses = value(registry, "drf_instcache_misses_total", backend="redis", model="question")
    assert cold_misses == page
    assert value(registry, "drf_instcache_hits_total", backend="redis", model="question") == 0
    assert value(registry, "drf_instcache_stored_total", backend="redis") >= page

    assert api.get("/api/questions/").status_code == 200  # warm: hits
    assert value(registry, "drf_instcache_hits_total", backend="redis", model="question") == page
    assert value(registry, "drf_instcache_misses_total", backend="redis", model="question") == page

    question = api.get("/api/questions/").json()["results"][0]
    changed = api.patch(
        f"/api/questions/{question['id']}/", {"question_text": "Metrics?"}, format="json"
    )
    assert changed.status_code == 200
    assert value(registry, "drf_instcache_errors_total", backend="redis") == 0

    calls_after = value(
        registry,
        "drf_instcache_backend_call_seconds_count",
        backend="redis",
        operation="get_many",
        outcome="ok",
    )
    assert calls_after >= calls_before + 3
    total_seconds = value(
        registry,
        "drf_instcache_backend_call_seconds_sum",
        backend="redis",
        operation="get_many",
        outcome="ok",
    )
    assert 0 < total_seconds < calls_after  # each call well under a second
    exposition = generate_latest(registry).decode()
    for name in ("near_hits", "fallbacks", "deleted", "fills_refused"):
        assert f"drf_instcache_{name}_total" in exposition
    assert 'drf_instcache_backend_call_seconds_bucket{backend="redis"' in exposition


@redis_backend
def test_the_shared_scope_adds_up_what_processes_published(backend, seeded: Seeded):
    counters.reset()
    registry = CollectorRegistry()
    installed = metrics.install(registry, scope="shared", latency=False)
    try:
        APIClient().get("/api/questions/")
        APIClient().get("/api/questions/")
        assert value(registry, "drf_instcache_hits_total", backend="redis", model="question") >= 10
        assert registry.get_sample_value("drf_instcache_backend_call_seconds_count") is None
    finally:
        installed.uninstall()


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observer = tracing.install(tracer_provider=provider)
    assert observer is not None
    yield exporter
    remove_observer(observer)


@redis_backend
def test_each_backend_call_is_a_client_span(spans, backend, seeded: Seeded):
    APIClient().get("/api/questions/")
    APIClient().get("/api/questions/")
    finished = spans.get_finished_spans()
    read_names = ("drf_instcache get_many", "drf_instcache get_many_claiming")
    reads = [span for span in finished if span.name in read_names]
    assert len(reads) >= 2
    assert {span.kind for span in finished} == {SpanKind.CLIENT}
    warm = reads[-1]
    assert warm.attributes["db.system"] == "redis"
    assert warm.attributes["drf_instcache.keys"] >= 10
    assert warm.attributes["drf_instcache.hits"] >= 10
    assert warm.end_time > warm.start_time
    # The cold read put the leases on its misses in the same call.
    assert any(span.name == "drf_instcache get_many_claiming" for span in finished)


def test_a_failed_call_is_an_error_span(spans, settings, db):
    from drf_instcache import settings as instcache_settings
    from drf_instcache.testing.ports import free_port

    settings.DRF_INSTCACHE_BACKEND = f"redis://127.0.0.1:{free_port('127.0.0.1')}/0"
    backend = instcache_settings.get_backend()
    with pytest.raises(Exception):  # noqa: B017 (BackendUnavailable)
        backend.get_many(["nobody-listens"])
    (span,) = spans.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.events[0].name == "exception"


def test_without_opentelemetry_nothing_is_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # import fails
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)
    reloaded = importlib.reload(tracing)
    try:
        assert reloaded.install() is None
    finally:
        monkeypatch.undo()
        importlib.reload(tracing)
