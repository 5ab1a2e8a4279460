"""Fixtures of the transparency suite: levels x backends, the URL conf, the data.

Every test is transactional (the API tests' ``cache_namespace`` fixture asks for
``transactional_db``): ORM writes commit, so the invalidation receivers' ``on_commit``
work runs as in production. ``DRF_INSTCACHE_DEBUG_HEADERS`` is on, so warm answers can
be checked to come from the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import django_filters
import pytest
from django.core.cache import cache as django_cache

from tests.api.conftest import (  # noqa: F401  (fixtures)
    NEAR,
    api,
    cache_namespace,
    disk_cache_directory,
    instcache_backend,
)
from tests.backends.config_redis import redis_server  # noqa: F401  (session fixture)
from tests.transparency.shapes import Data, make_data

LEVELS = ("instance", "fast", "fast-lists")
"""Instance mode; the fast path; the fast path with cached list queries."""
BACKENDS = ("locmem", "redis")

COMBINATIONS = [
    *((level, backend) for level in LEVELS for backend in BACKENDS),
    ("fast-lists", NEAR),
]
"""Every level on every backend, and cached list queries over the near cache (where
warm list bodies are kept whole: :mod:`drf_instcache.fastpath.answers`)."""

every_level = pytest.mark.parametrize(
    ("level", "instcache_backend"),
    COMBINATIONS,
    ids=[f"{level}-{backend}" for level, backend in COMBINATIONS],
    indirect=True,
)
"""Run a test once per level and backend."""


@pytest.fixture
def level(request: pytest.FixtureRequest, settings: Any) -> str:
    value = getattr(request, "param", "instance")
    settings.DRF_INSTCACHE_CACHE_LIST_QUERIES = value == "fast-lists"
    return value


@pytest.fixture(autouse=True)
def transparency_settings(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.transparency.urls"
    settings.DRF_INSTCACHE_DEBUG_HEADERS = True
    # django-filter's form templates, for the browsable API, without installing the app.
    templates = Path(django_filters.__file__).parent / "templates"
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(templates)]}]
    django_cache.clear()  # throttle histories


@pytest.fixture
def data() -> Data:
    return make_data()
