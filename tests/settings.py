"""Django settings for the test suite.

PostgreSQL is used when it answers on 127.0.0.1:5432 (or ``DRF_INSTCACHE_TEST_DB`` says
``postgres``); otherwise SQLite. With ``DRF_INSTCACHE_REQUIRE_SERVERS=1`` (CI) a missing
PostgreSQL is an error instead of a silent fallback.
"""

from __future__ import annotations

import os
import socket

from example.settings import *  # noqa: F403


def _postgres_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


_PG_HOST = os.environ.get("PGHOST", "127.0.0.1")
_PG_PORT = int(os.environ.get("PGPORT", "5432"))
_DB_CHOICE = os.environ.get("DRF_INSTCACHE_TEST_DB", "auto")
_REQUIRE = os.environ.get("DRF_INSTCACHE_REQUIRE_SERVERS") == "1"

if _DB_CHOICE == "sqlite":
    _USE_POSTGRES = False
elif _DB_CHOICE == "postgres" or _REQUIRE:
    _USE_POSTGRES = True
else:
    _USE_POSTGRES = _postgres_answers(_PG_HOST, _PG_PORT)

if _USE_POSTGRES:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PGDATABASE", "drf_instcache"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "PASSWORD": os.environ.get("PGPASSWORD", ""),
            "HOST": _PG_HOST,
            "PORT": _PG_PORT,
            # One test database per run, so two runs on one machine never collide.
            "TEST": {"NAME": f"test_drf_instcache_{os.getpid()}"},
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DRF_INSTCACHE_BACKEND = "locmem://tests"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
