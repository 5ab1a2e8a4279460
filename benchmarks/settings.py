"""Django settings for the benchmark harness and the WSGI server it measures.

The harness process and every gunicorn process it starts load this module, so both see
the same database and the same cache aliases. Everything that changes between runs comes
from environment variables the harness sets before ``django.setup()`` or before it
spawns gunicorn:

``DRF_INSTCACHE_BENCH_DB``
    ``postgres`` (database ``drf_instcache_bench`` on ``PGHOST:PGPORT``) or ``sqlite``.
``DRF_INSTCACHE_BENCH_SQLITE``
    the SQLite file used when the database is ``sqlite``.
``DRF_INSTCACHE_BENCH_BACKEND``
    the ``DRF_INSTCACHE_BACKEND`` URL of this run (``locmem://bench`` when unset).
``DRF_INSTCACHE_BENCH_PREFIX``
    the key prefix of this run's backend (the backend's default when unset).
``DRF_INSTCACHE_BENCH_REDIS``
    the URL of the harness's own redis-server, used by the ``bench_redis`` Django cache
    and by ``bench_whole``, the whole-response cache of ``/api/whole/``.
``DRF_INSTCACHE_BENCH_CODEC``
    the codec of this run (``json`` when unset).

Apart from that, the example project's settings are kept as they are (middleware, DRF
defaults, pagination of 100), so cached and plain viewsets pay the same framework costs.
DEBUG is off: with DEBUG on Django records every query, which would tax the plain-DRF
runs (many queries) more than the cached ones and flatter the library.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from example.settings import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

BENCH_DATABASE_NAME = "drf_instcache_bench"

if os.environ.get("DRF_INSTCACHE_BENCH_DB", "sqlite") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": BENCH_DATABASE_NAME,
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": int(os.environ.get("PGPORT", "5432")),
            # Keep connections across requests, as a production deployment would.
            "CONN_MAX_AGE": 60,
        }
    }
else:
    _default_sqlite = Path(tempfile.gettempdir()) / "drf_instcache_bench.sqlite3"
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("DRF_INSTCACHE_BENCH_SQLITE", str(_default_sqlite)),
        }
    }

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # The two Django caches the "django-*" backends of the benchmark go through.
    "bench_locmem": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "drf-instcache-bench",
        "OPTIONS": {"MAX_ENTRIES": 1_000_000},
    },
}
_bench_redis = os.environ.get("DRF_INSTCACHE_BENCH_REDIS")
if _bench_redis:
    CACHES["bench_redis"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _bench_redis,
    }
# Whole responses (drf-extensions' cache_response, for comparison) go to the harness's
# Redis, a server shared by every worker as the fast path's is; locmem without it.
CACHES["bench_whole"] = (
    {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": _bench_redis,
        "KEY_PREFIX": "whole",
        "TIMEOUT": 3600,
    }
    if _bench_redis
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "whole"}
)

# The example API plus the whole-response (/api/whole/) and live-lists fast path
# (/api/fast-live/) endpoints.
ROOT_URLCONF = "benchmarks.urls"

# /api/fast/ caches its lists' count and key queries; /api/fast-live/ opts out.
DRF_INSTCACHE_CACHE_LIST_QUERIES = True

_bench_backend = os.environ.get("DRF_INSTCACHE_BENCH_BACKEND", "locmem://bench")
_bench_prefix = os.environ.get("DRF_INSTCACHE_BENCH_PREFIX")
_bench_setting: str | dict[str, str] = (
    {"BACKEND": _bench_backend, "KEY_PREFIX": _bench_prefix} if _bench_prefix else _bench_backend
)
# A URL or a dict, both valid; example.settings only ever sets a URL.
DRF_INSTCACHE_BACKEND = _bench_setting  # type: ignore[assignment]
DRF_INSTCACHE_CODEC = os.environ.get("DRF_INSTCACHE_BENCH_CODEC", "json")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
