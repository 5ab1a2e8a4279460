"""Counters: per request (header, DEBUG log), per process, and shared by every process."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

import drf_instcache
from drf_instcache import counters
from drf_instcache import settings as instcache_settings
from drf_instcache.testing.ports import free_port
from tests.ops.conftest import Seeded, each_backend, instcache, shared_backends

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def headers_on(settings) -> None:
    settings.DRF_INSTCACHE_DEBUG_HEADERS = True


# -- one request ---------------------------------------------------------------------------
@each_backend
def test_the_debug_header_counts_each_request(api, backend, seeded: Seeded, headers_on):
    cold = api.get("/api/questions/")
    warm = api.get("/api/questions/")
    one = api.get(f"/api/choices/{cold.json()['results'][0]['choices'][0]}/")

    assert cold["X-Instcache"] == f"hits=0 misses={seeded.questions} fallbacks=0 errors=0"
    assert warm["X-Instcache"] == f"hits={seeded.questions} misses=0 fallbacks=0 errors=0"
    assert one["X-Instcache"] == "hits=0 misses=1 fallbacks=0 errors=0"


def test_no_debug_header_unless_asked_for(api, backend, seeded: Seeded):
    assert "X-Instcache" not in api.get("/api/questions/")
    assert "X-Instcache" not in api.get("/api/plain/questions/")


def test_a_failing_backend_shows_as_fallbacks_and_an_error(api, db, settings, headers_on):
    settings.DRF_INSTCACHE_BACKEND = (
        f"redis://127.0.0.1:{free_port()}/0?socket_connect_timeout=0.2&socket_timeout=0.2"
    )
    from example.polls.models import Question

    Question.objects.create(question_text="Down?", pub_date="2024-01-01T00:00:00Z")
    response = api.get("/api/questions/")
    assert response.status_code == 200
    assert response.json()["results"][0]["question_text"] == "Down?"
    assert response["X-Instcache"] == "hits=0 misses=1 fallbacks=1 errors=1"


def test_each_request_logs_its_counts_at_debug(api, backend, seeded: Seeded, caplog):
    with caplog.at_level(logging.DEBUG, logger="drf_instcache.core.shared_stats"):
        api.get("/api/questions/")
        api.get("/api/questions/")
    lines = [r.getMessage() for r in caplog.records if r.name == "drf_instcache.core.shared_stats"]
    assert f"drf-instcache: GET /api/questions/ hits=0 misses={seeded.questions} " in lines[0]
    assert f"drf-instcache: GET /api/questions/ hits={seeded.questions} misses=0 " in lines[1]


# -- one process -------------------------------------------------------------------------
def test_stats_counts_per_model_in_this_process(api, backend, seeded: Seeded):
    before = drf_instcache.stats()
    api.get("/api/questions/")
    api.get("/api/questions/")
    api.get("/api/users/")
    after = drf_instcache.stats()

    def delta(model: str, name: str) -> int:
        return after.models[model][name] - before.models.get(model, {}).get(name, 0)

    assert delta("question", "misses") == seeded.questions
    assert delta("question", "hits") == seeded.questions
    assert delta("user", "misses") == seeded.users
    assert after.hits - before.hits == seeded.questions
    assert after.shared is False
    assert 0 < after.hit_ratio < 1


def test_a_forked_child_starts_counting_from_zero():
    counters.incr_per_model("hits", ["question"] * 3)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (runs in the child)
        os.write(write, str(counters.current().hits).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    assert os.read(read, 100) == b"0"
    assert counters.current().hits >= 3


# -- every process -------------------------------------------------------------------------
def publisher(url: str, *rounds: int) -> subprocess.Popen:
    """Another process counting ``rounds`` of question hits into the shared backend."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ops.publisher", url, *map(str, rounds)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
    )


@shared_backends
def test_processes_add_up_in_the_backend(backend, namespace_url: str, db):
    processes = [publisher(namespace_url, 5), publisher(namespace_url, 7)]
    for process in processes:
        assert process.communicate(timeout=60)[0] == "published\n"

    shared = json.loads(instcache("stats", "--json").stdout)

    assert shared["scope"] == "shared"
    assert shared["processes"] == 2
    assert shared["models"]["question"]["hits"] == 12
    assert shared["models"]["choice"]["misses"] == 2
    assert shared["counts"]["hits"] == 12
    assert shared["hit_ratio"] == pytest.approx(12 / 14)


@shared_backends
def test_reset_starts_every_process_counting_anew(backend, namespace_url: str, db):
    process = publisher(namespace_url, 5, 3)
    assert process.stdout.readline() == "published\n"

    output = instcache("stats", "--reset").stdout
    assert "drf-instcache: 1 process(es) since " in output
    assert "hits 5, misses 1," in output
    assert output.endswith("statistics reset\n")
    assert json.loads(instcache("stats", "--json").stdout)["counts"]["hits"] == 0

    process.stdin.write("go on\n")
    process.stdin.flush()
    assert process.communicate(timeout=60)[0] == "published\n"
    after = json.loads(instcache("stats", "--json").stdout)
    assert after["counts"]["hits"] == 3  # only what it counted after the reset
    assert after["processes"] == 1


def test_stats_text_lists_every_model(api, backend, seeded: Seeded, settings):
    settings.DRF_INSTCACHE_STATS_FLUSH_INTERVAL = 0
    instcache("stats", "--reset")
    api.get("/api/questions/")
    api.get("/api/questions/")
    api.get("/api/users/")

    output = instcache("stats").stdout

    hits, misses = seeded.questions, seeded.questions
    assert f"hit ratio {hits / (hits + misses + seeded.users):.1%}" in output
    assert f"  question  {hits:>10}  {misses:>10}  {0:>10}  50.0%" in output
    assert f"  user      {0:>10}  {seeded.users:>10}  {0:>10}  0.0%" in output


# -- the cost of publishing ------------------------------------------------------------------
def round_trips() -> int:
    """Calls made by the configured (locmem) backend: each one a round trip on a server."""
    backend = instcache_settings.get_backend()
    return getattr(backend, "backend", backend).round_trips  # behind the circuit breaker


@pytest.mark.parametrize(("interval", "extra"), [(3600, 0), (0, 2)])
def test_publishing_costs_round_trips_only_when_due(
    api, backend, seeded: Seeded, settings, interval: float, extra: int
):
    settings.DRF_INSTCACHE_STATS_FLUSH_INTERVAL = interval
    question = api.get("/api/questions/").json()["results"][0]["id"]
    api.get(f"/api/questions/{question}/")  # warm, and any first publication done

    before = round_trips()
    for _ in range(5):
        assert api.get(f"/api/questions/{question}/").status_code == 200
    # Each warm retrieve is one read; publishing (when due) one read and one write.
    assert round_trips() - before == 5 * (1 + extra)


def test_bad_statistics_settings_fail_the_system_check(settings):
    settings.DRF_INSTCACHE_STATS_FLUSH_INTERVAL = "often"
    settings.DRF_INSTCACHE_DEBUG_HEADERS = "yes"
    errors = counters.check_settings()
    assert [error.id for error in errors] == ["drf_instcache.E010", "drf_instcache.E011"]


def test_stats_shared_includes_this_process_after_publishing_it(api, backend, seeded: Seeded):
    instcache("stats", "--reset")
    api.get("/api/questions/")

    shared = drf_instcache.stats(shared=True)

    assert shared.shared is True
    assert shared.processes == 1
    assert shared.models["question"]["misses"] == seeded.questions
    assert drf_instcache.stats(shared=True).misses == shared.misses  # nothing new to add


@shared_backends
def test_two_first_publications_at_once_both_list_their_process(backend, namespace_url: str, db):
    """Process A reads the index, B publishes, then A writes: A must not drop B."""
    from drf_instcache.core import shared_stats
    from drf_instcache.core.counters import Tally
    from drf_instcache.settings import build_backend

    other_backend = build_backend(namespace_url)
    first, second = shared_stats._Publisher(), shared_stats._Publisher()

    class Interleaving:
        """A's backend: B publishes right after A's first read."""

        def __init__(self, inner):
            self.inner, self.reads = inner, 0

        def get_many(self, keys):
            found = self.inner.get_many(keys)
            self.reads += 1
            if self.reads == 1:
                counts = Tally()
                counts.add("hits", 3, "question")
                shared_stats._publish(other_backend, second, counts)
            return found

        def set_many(self, items, timeout=None):
            return self.inner.set_many(items, timeout)

        def add_many(self, items, timeout=None):
            return self.inner.add_many(items, timeout)

        def compare_and_set_many(self, items, timeout=None):
            return self.inner.compare_and_set_many(items, timeout)

    counts = Tally()
    counts.add("hits", 2, "question")
    shared_stats._publish(Interleaving(backend), first, counts)
    other_backend.close()

    shared = json.loads(instcache("stats", "--json").stdout)
    assert shared["processes"] == 2
    assert shared["models"]["question"]["hits"] == 5
