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

from drf_instcache.backends.observed import BackendCall
from drf_instcache.core import outage
from drf_instcache.exceptions import BackendUnavailable

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


def test_errors_that_are_not_outages_start_none(caplog):
    outage.reset()
    with caplog.at_level(logging.DEBUG, logger="drf_instcache.core.outage"):
        outage.observe(failed_call(ValueError("bad input")))
        outage.observe(failed_call(None))
    assert not caplog.records
    assert not outage.current()
