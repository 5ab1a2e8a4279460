"""Promise 5: bad input and configuration are clear errors at ``manage.py check``.

A malformed ``DRF_INSTCACHE_BACKEND`` (including options the adapter refuses, which
only building the adapter reveals), an unknown codec, a bad lease setting, and a cache
class connected to a model by the signal helpers without the functions for it: each is a
system check error that names the setting or method and says how to fix it.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from drf_instcache import signals
from drf_instcache.cache import BaseCache
from example.polls.cache import PollCache
from example.polls.models import Choice, Question


def check_output() -> str:
    """The text ``manage.py check`` prints for the current settings (raises if clean)."""
    with pytest.raises(SystemCheckError) as raised:
        call_command("check", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return str(raised.value)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("redis://127.0.0.1:6379/0?socket_timeout=soon", "socket_timeout"),
        ("redis://127.0.0.1:6379/0?retries=-1", "retries"),
        ("memcached://127.0.0.1:11211?dead_retry=never", "dead_retry"),
        ("memcached://127.0.0.1:99999", "port"),
        ("disk:///tmp/instcache-check?shards=0", "shards"),
        ("disk:///tmp/instcache-check?no_such_option=1", "no_such_option"),
        ("django://no-such-alias", "no-such-alias"),
        ("redis://127.0.0.1:6379/0?timeout=-5", "TIMEOUT"),
        (
            {"BACKEND": "drf_instcache.backends.redis.RedisBackend", "OPTIONS": {"bogus": 1}},
            "bogus",
        ),
        ({"BACKEND": "drf_instcache.backends.nope.NopeBackend"}, "nope"),
        ("gopher://cache", "unknown scheme"),
    ],
)
def test_a_malformed_backend_setting_fails_the_check(setting: Any, expected: str):
    with override_settings(DRF_INSTCACHE_BACKEND=setting):
        output = check_output()
    assert "(drf_instcache.E001) DRF_INSTCACHE_BACKEND" in output  # the message names it
    assert expected in output
    assert "HINT" in output


def test_an_unknown_codec_fails_the_check():
    with override_settings(DRF_INSTCACHE_CODEC="pickle"):
        output = check_output()
    assert "drf_instcache.E002" in output
    assert "DRF_INSTCACHE_CODEC" in output
    assert "json, msgpack, orjson" in output


@pytest.mark.parametrize(
    "value", [{"TTL": 0}, {"WAIT": -1}, {"TTL": "5"}, {"TIME": 5}, "on", {"TTL": True}]
)
def test_a_bad_lease_setting_fails_the_check(value: Any):
    with override_settings(DRF_INSTCACHE_LEASES=value):
        output = check_output()
    assert "drf_instcache.E006" in output
    assert "DRF_INSTCACHE_LEASES" in output


def test_leases_may_be_turned_off():
    with override_settings(DRF_INSTCACHE_LEASES=None):
        call_command("check", stdout=open("/dev/null", "w"))  # noqa: SIM115


@pytest.fixture
def connected():
    """Connect cache classes for one test; disconnect them afterwards."""
    done: list[tuple[type, list[Any]]] = []

    def connect(cache_class: type, models: list[Any]) -> None:
        signals.connect(cache_class, models=models)
        done.append((cache_class, models))

    yield connect
    for cache_class, models in done:
        signals.disconnect(cache_class, models=models)


def test_a_connected_model_without_cache_functions_fails_the_check(connected):
    class UnrelatedCache(BaseCache):  # knows no model at all
        pass

    connected(UnrelatedCache, [Question])
    output = check_output()
    assert "drf_instcache.E004" in output
    assert "question_default_serializer" in output
    assert "question_default_loader" in output
    assert "question_default_invalidator" in output
    assert "set all three to None" in output


def test_a_connected_model_missing_one_function_names_it(connected):
    class MissingLoaderCache(BaseCache):
        def choice_default_serializer(self, obj: Any) -> dict[str, Any]:
            return {"id": obj.pk}

        def choice_default_invalidator(self, obj: Any) -> list[Any]:
            return []

    connected(MissingLoaderCache, [Choice])
    output = check_output()
    assert "drf_instcache.E004" in output
    assert "is missing choice_default_loader" in output
    assert "Define choice_default_loader on MissingLoaderCache, or set it to None" in output


def test_a_function_that_is_not_callable_is_named(connected):
    class NotCallableCache(PollCache):
        question_default_loader_many = "load them"  # type: ignore[assignment]

    connected(NotCallableCache, [Question])
    output = check_output()
    assert "question_default_loader_many must be a method or None" in output


def test_known_but_uncached_models_pass(connected):
    class DeclinesQuestionsCache(BaseCache):
        question_default_serializer = None
        question_default_loader = None
        question_default_invalidator = None

    connected(DeclinesQuestionsCache, [Question])
    call_command("check", stdout=open("/dev/null", "w"))  # noqa: SIM115
