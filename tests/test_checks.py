"""A bad setting fails `manage.py check` with a message that names the setting and the fix."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings


def run_check() -> None:
    call_command("check", stdout=open("/dev/null", "w"))  # noqa: SIM115


def test_the_default_configuration_passes():
    run_check()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"DRF_INSTCACHE_BACKEND": "ftp://nowhere"}, "drf_instcache.E001"),
        ({"DRF_INSTCACHE_BACKEND": "memcached://"}, "names no server"),
        ({"DRF_INSTCACHE_BACKEND": {"LOCATION": "x"}}, "needs 'BACKEND'"),
        ({"DRF_INSTCACHE_CODEC": "yaml"}, "drf_instcache.E002"),
        ({"DRF_INSTCACHE_CIRCUIT_BREAKER": {"FAILURES": -1}}, "drf_instcache.E003"),
        ({"DRF_INSTCACHE_CIRCUIT_BREAKER": "on"}, "DRF_INSTCACHE_CIRCUIT_BREAKER"),
        ({"DRF_INSTCACHE_CASCADE": "forget"}, "drf_instcache.E008"),
        ({"DRF_INSTCACHE_OUTBOX": {"CHECK_INTERVAL": -1}}, "drf_instcache.E009"),
        ({"DRF_INSTCACHE_OUTBOX": {"EVERY": 1}}, "CHECK_INTERVAL"),
    ],
)
def test_bad_settings_fail_the_check(overrides, expected):
    with override_settings(**overrides), pytest.raises(SystemCheckError, match=expected):
        run_check()


def test_missing_codec_library_names_the_extra(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "orjson" else real_find_spec(name, *a),
    )
    with (
        override_settings(DRF_INSTCACHE_CODEC="orjson"),
        pytest.raises(SystemCheckError, match=r"drf-instcache\[fast\]"),
    ):
        run_check()


def test_async_without_celery_fails(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "celery" else real_find_spec(name, *a),
    )
    with (
        override_settings(DRF_INSTCACHE_ASYNC=True),
        pytest.raises(SystemCheckError, match=r"drf-instcache\[celery\]"),
    ):
        run_check()


def test_a_connected_cache_class_with_an_unknown_cascade_policy_fails(settings):
    from drf_instcache import signals
    from example.polls.cache import PollCache

    class Misconfigured(PollCache):
        cascade_policies = {"user": "forget"}

    signals.connect(Misconfigured)
    try:
        with pytest.raises(SystemCheckError, match=r"cascade_policies\['user'\]"):
            run_check()
    finally:
        signals.disconnect(Misconfigured)


@pytest.mark.parametrize("name", ["DRF_INSTCACHE_PROMETHEUS", "DRF_INSTCACHE_TRACING"])
def test_operations_switches_must_be_booleans(settings, name):
    from drf_instcache.checks import check_ops_settings

    setattr(settings, name, "no")
    messages = check_ops_settings()
    assert [m.id for m in messages] == ["drf_instcache.W002"]
    assert "read as True" in messages[0].msg
    setattr(settings, name, False)
    assert check_ops_settings() == []
    setattr(settings, name, True)  # the test environment has both libraries
    assert check_ops_settings() == []
