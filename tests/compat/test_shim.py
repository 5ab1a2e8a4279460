"""Every public module of drf-cached-instances imports, and names drf-instcache's objects."""

from __future__ import annotations

import importlib

import pytest

import drf_instcache
from drf_instcache import cache, models, settings


@pytest.mark.parametrize("module", ["cache", "models", "mixins", "compat", "settings"])
def test_module_imports(module: str) -> None:
    importlib.import_module(f"drf_cached_instances.{module}")


def test_objects_are_drf_instcaches() -> None:
    import drf_cached_instances
    from drf_cached_instances import cache as old_cache
    from drf_cached_instances import models as old_models

    assert drf_cached_instances.__version__ == drf_instcache.__version__
    assert old_cache.BaseCache is cache.BaseCache
    for name in ("CachedModel", "CachedQueryset", "PkOnlyModel", "PkOnlyQueryset"):
        assert getattr(old_models, name) is getattr(models, name)


def test_settings_flag_follows_django_settings() -> None:
    from django.test import override_settings

    from drf_cached_instances import settings as old_settings

    assert old_settings.USE_DRF_INSTANCE_CACHE is settings.enabled() is True
    with override_settings(USE_DRF_INSTANCE_CACHE=False):
        assert old_settings.USE_DRF_INSTANCE_CACHE is False


def test_compat_helpers() -> None:
    import datetime as dt

    from django.contrib.auth.models import User

    from drf_cached_instances.compat import get_model, parse_duration

    assert get_model("auth", "User") is User
    assert parse_duration("1 00:00:02") == dt.timedelta(days=1, seconds=2)
