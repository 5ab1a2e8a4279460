"""No invalidation is lost when the writer cannot reach the cache and then exits.

A separate process saves a row while the cache server is paused (SIGSTOP: it keeps its
data and answers later) or killed (it restarts from its append-only file). What the
writer could not apply is in the outbox table; the first read after the server is back
drains it before reading, so neither level serves the old representation.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from drf_instcache.core import unsettled
from drf_instcache.invalidation.outbox import OUTBOX
from drf_instcache.testing.redis_server import RedisServer
from tests.api.conftest import make_polls

ROOT = Path(__file__).resolve().parents[2]
QUICK = "socket_timeout=0.3&socket_connect_timeout=0.3"


@pytest.fixture
def persistent_redis(settings) -> Iterator[RedisServer]:
    """A redis-server of this test's own that keeps its data across a kill (AOF)."""
    with RedisServer(["--appendonly", "yes", "--appendfsync", "always"]) as server:
        settings.DRF_INSTCACHE_BACKEND = f"{server.url}?prefix=dur{uuid.uuid4().hex[:8]}&{QUICK}"
        settings.DRF_INSTCACHE_OUTBOX = {"CHECK_INTERVAL": 0}
        yield server
        unsettled.forget_all()
        settings.DRF_INSTCACHE_BACKEND = "locmem://durable"  # what teardown clears


def write_from_another_process(url: str, pk: int, text: str) -> None:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PGDATABASE": connection.settings_dict["NAME"],
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.api.outbox_writer", url, str(pk), text],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def both_levels(api: APIClient, pk: int) -> tuple[str, str]:
    cached = api.get(f"/api/questions/{pk}/").json()["question_text"]
    fast = api.get(f"/api/fast/questions/{pk}/").json()["question_text"]
    return cached, fast


def warm(api: APIClient, pk: int) -> tuple[str, str]:
    both_levels(api, pk)
    response = api.get(f"/api/fast/questions/{pk}/")
    assert response.status_code == 200
    return both_levels(api, pk)


@pytest.fixture
def needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("another process shares the test database only on PostgreSQL")


@pytest.mark.parametrize("outage", ["paused", "killed"])
def test_a_write_from_an_exiting_process_during_an_outage_is_not_lost(
    needs_postgresql, persistent_redis, settings, outage
):
    polls = make_polls()
    question = polls.questions[0]
    api = APIClient()
    before = warm(api, question.pk)
    assert before == (question.question_text, question.question_text)

    if outage == "paused":
        os.kill(persistent_redis.pid, signal.SIGSTOP)
    else:
        os.kill(persistent_redis.pid, signal.SIGKILL)
    try:
        write_from_another_process(settings.DRF_INSTCACHE_BACKEND, question.pk, "Changed?")
    finally:
        if outage == "paused":
            os.kill(persistent_redis.pid, signal.SIGCONT)
        else:
            persistent_redis.start()  # same port, same directory: the old entries are back
    assert (OUTBOX.backlog() or 0) > 0  # the writer left its invalidations behind

    # Fresh from the first read on; the outbox empties once the server takes the replay
    # (a restarted server may refuse it while it loads its file: the breaker then waits).
    deadline = time.monotonic() + 30
    while True:
        assert both_levels(api, question.pk) == ("Changed?", "Changed?")
        if OUTBOX.backlog() == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert OUTBOX.backlog() == 0
    assert both_levels(api, question.pk) == ("Changed?", "Changed?")
