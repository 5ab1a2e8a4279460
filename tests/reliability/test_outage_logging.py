"""Issue 17: an outage is logged by its transitions, and the cache refills as it ends.

A cache server that dies logs one WARNING (the first failed call) and one INFO (the
first call that works again), whatever the traffic in between; a summary at most every
``SUMMARY_INTERVAL`` while it lasts. Once the server answers again the breaker knows it
within ``RESET_AFTER`` (it probes in the background), so after a second's pause the
first read of a key refills it and the next read hits: every time, not 2 runs in 3.
"""

from __future__ import annotations

import logging
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from drf_instcache.backends.observed import BackendCall
from drf_instcache.core import outage
from drf_instcache.exceptions import BackendUnavailable
from tests.api.conftest import make_polls
from tests.reliability.conftest import backend_url

RUNS = 20


def outage_lines(caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    """The WARNING-or-worse lines, and the INFO lines saying the backend is back."""
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    back = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and "answers again" in r.getMessage()
    ]
    return warnings, back


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_redis_logs_once_each_way_and_refills_deterministically(
    request, settings, caplog, monkeypatch
):
    # Each run is an outage of its own: 20 of them a second apart would otherwise be a
    # flapping server, logged by a summary a minute (see the flapping test below).
    monkeypatch.setattr(outage, "FLAP_WINDOW", 0.0)
    outage.reset()
    settings.DRF_INSTCACHE_BACKEND = backend_url(request, settings, "redis")
    server = request.getfixturevalue("redis_server")
    polls = make_polls(questions=1, choices=1, users=5)
    api = APIClient()
    for run in range(RUNS):
        user = polls.users[run % len(polls.users)]
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="drf_instcache"):
            assert api.get("/api/users/").status_code == 200
            server.kill()  # SIGKILL, during a run of requests
            for _ in range(40):
                assert api.get("/api/users/").status_code == 200
                assert api.get(f"/api/users/{user.pk}/").status_code == 200
            server.start()  # same port, empty
            time.sleep(1.0)
            assert api.get("/api/users/").status_code == 200
            with CaptureQueriesContext(connection) as queries:
                assert api.get(f"/api/users/{user.pk}/").status_code == 200
        warnings, back = outage_lines(caplog)
        assert len(warnings) == 1, (run, warnings)
        assert "redis is unavailable" in warnings[0]
        assert len(back) == 1, (run, back)
        assert "80 request(s)" in back[0], back[0]
        assert not queries.captured_queries, (
            f"run {run}: the retrieve after the refilling list missed: "
            f"{[q['sql'] for q in queries.captured_queries]}"
        )


def failed_call(error: Exception | None = None) -> BackendCall:
    return BackendCall("testing", "get_many", ["k"], time.time_ns(), 0.001, error=error)


def test_a_long_outage_adds_one_summary_per_interval(monkeypatch, caplog):
    outage.reset()
    monkeypatch.setattr(outage, "SUMMARY_INTERVAL", 3600.0)
    down = BackendUnavailable("connection refused")
    with caplog.at_level(logging.DEBUG, logger="drf_instcache.core.outage"):
        for _ in range(500):
            outage.observe(failed_call(down))
            outage.note_request({"fallbacks": 1})
        assert [r.levelname for r in caplog.records] == ["WARNING"]
        monkeypatch.setattr(outage, "SUMMARY_INTERVAL", 0.0)  # a summary is due now
        outage.observe(failed_call(down))
        assert "still unavailable" in caplog.records[-1].getMessage()
        assert "500 request(s)" in caplog.records[-1].getMessage()
        monkeypatch.setattr(outage, "SUMMARY_INTERVAL", 3600.0)
        for _ in range(100):
            outage.observe(failed_call(down))
        outage.observe(failed_call(None))  # the first call that works
        outage.observe(failed_call(None))
    levels = [r.levelname for r in caplog.records]
    assert levels == ["WARNING", "WARNING", "INFO"], levels
    assert "answers again" in caplog.records[-1].getMessage()
    assert "601 failed call(s)" in caplog.records[-1].getMessage()
    assert not outage.current()


def test_a_flapping_backend_logs_once_then_a_summary_per_interval(monkeypatch, caplog):
    outage.reset()
    monkeypatch.setattr(outage, "SUMMARY_INTERVAL", 3600.0)
    down = BackendUnavailable("OOM command not allowed")
    with caplog.at_level(logging.DEBUG, logger="drf_instcache.core.outage"):
        for _ in range(200):  # reads work, writes fail: every request
            outage.observe(failed_call(None))
            outage.observe(failed_call(down))
        shown = [r.levelname for r in caplog.records if r.levelno >= logging.INFO]
        assert shown == ["WARNING", "INFO"]  # the first outage; the others are DEBUG
        monkeypatch.setattr(outage, "SUMMARY_INTERVAL", 0.0)
        outage.observe(failed_call(None))
        outage.observe(failed_call(down))
    summary = caplog.records[-1]
    assert summary.levelname == "WARNING"
    assert "keeps failing intermittently" in summary.getMessage()
    assert "200 failed call(s) in 200 short outage(s)" in summary.getMessage()


def test_a_discarded_backend_leaves_no_outage_behind():
    outage.reset()
    outage.observe(failed_call(BackendUnavailable("down")))
    assert outage.current()
    outage.observe(BackendCall("testing", "close", (), time.time_ns(), 0.0))
    assert not outage.current()


def test_errors_that_are_not_outages_start_none(caplog):
    outage.reset()
    with caplog.at_level(logging.DEBUG, logger="drf_instcache.core.outage"):
        outage.observe(failed_call(ValueError("bad input")))
        outage.observe(failed_call(None))
    assert not caplog.records
    assert not outage.current()
