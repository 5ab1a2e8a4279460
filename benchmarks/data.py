"""The database the benchmarks read and the cached values they move around.

Values are the real thing whenever possible: the example app's Question instances,
loaded from the benchmark database and encoded by :class:`example.polls.cache.PollCache`
with the json codec, exactly the bytes the API stores. Until that cache class exists
(or when the database cannot be read), values are synthesized with the same shape and
size, and the JSON record says so.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SEED_QUESTIONS = 10_000
"""Questions seeded into the benchmark database (3 choices each, 5000 voting users)."""

SEED_ARGUMENTS = ["--questions", str(SEED_QUESTIONS), "--seed", "0", "--reset"]

BENCH_DATABASE = "drf_instcache_bench"


# -- choosing and preparing the database ----------------------------------------------
def postgres_answers(host: str = "127.0.0.1", port: int = 5432) -> bool:
    """True when something accepts TCP connections on the PostgreSQL port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _postgres_problem(host: str, port: int) -> str | None:
    """None when we can log in to PostgreSQL on ``host:port``, else why not."""
    if not postgres_answers(host, port):
        return f"nothing answers on {host}:{port}"
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'drf-instcache[bench]')"
    try:
        with psycopg.connect(
            host=host,
            port=port,
            user=os.environ.get("PGUSER", "postgres"),
            password=os.environ.get("PGPASSWORD") or None,
            dbname="postgres",
            connect_timeout=3,
        ):
            pass
    except psycopg.Error as error:
        return f"cannot log in: {str(error).strip().splitlines()[0]}"
    return None


def choose_database(sqlite_path: Path, force: str | None = None) -> tuple[dict[str, str], str]:
    """Pick PostgreSQL or SQLite; return the environment for the settings and the reason.

    PostgreSQL is used when we can log in on ``PGHOST:PGPORT`` (127.0.0.1:5432 by
    default); otherwise a SQLite file that survives between runs, so the seeding cost is
    paid once. ``force`` ("postgres" or "sqlite") skips the choice.
    """
    host = os.environ.get("PGHOST", "127.0.0.1")
    port = int(os.environ.get("PGPORT", "5432"))
    if force is not None:
        kind, reason = force, f"--database {force}"
    else:
        problem = _postgres_problem(host, port)
        kind = "sqlite" if problem else "postgres"
        reason = f"PostgreSQL unavailable: {problem}" if problem else f"PostgreSQL on {host}:{port}"
    sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    environment = {"DRF_INSTCACHE_BENCH_DB": kind, "DRF_INSTCACHE_BENCH_SQLITE": str(sqlite_path)}
    return environment, reason


def create_postgres_database() -> None:
    """Create the benchmark database on the PostgreSQL server if it does not exist."""
    import psycopg
    from django.conf import settings

    config = settings.DATABASES["default"]
    with psycopg.connect(
        host=config["HOST"],
        port=config["PORT"],
        user=config["USER"],
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{config["NAME"]}"')


def prepare_database() -> dict[str, Any]:
    """Create (PostgreSQL), migrate and seed the benchmark database; describe it.

    Seeding is skipped when the database already holds exactly the seeded data set, so
    repeated runs measure the same rows without paying for ``seed_polls`` again.
    """
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from example.polls.models import Choice, Question

    if connection.vendor == "postgresql":
        create_postgres_database()
    call_command("migrate", verbosity=0, interactive=False)
    seeded = False
    if Question.objects.count() != SEED_QUESTIONS:
        call_command("seed_polls", *SEED_ARGUMENTS, verbosity=0)
        seeded = True
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
    else:
        import sqlite3

        version = sqlite3.sqlite_version
    return {
        "vendor": connection.vendor,
        "name": str(settings.DATABASES["default"]["NAME"]),
        "server_version": version,
        "questions": Question.objects.count(),
        "choices": Choice.objects.count(),
        "seeded_this_run": seeded,
        "seed_command": "seed_polls " + " ".join(SEED_ARGUMENTS),
    }


def question_pks(limit: int) -> list[Any]:
    """The first ``limit`` question primary keys, in the order the API lists them."""
    from example.polls.models import Question

    return list(Question.objects.order_by("pk").values_list("pk", flat=True)[:limit])


# -- the values ---------------------------------------------------------------------
@dataclass
class Dataset:
    """``keys[i]`` -> ``values[i]``: what the core stores for one instance each."""

    keys: list[str]
    values: list[bytes]
    source: str

    def items(self, count: int) -> dict[str, bytes]:
        if count > len(self.keys):
            raise ValueError(f"the dataset holds {len(self.keys)} values, {count} were asked")
        return dict(zip(self.keys[:count], self.values[:count], strict=True))

    def describe(self) -> dict[str, Any]:
        sizes = [len(value) for value in self.values]
        return {
            "source": self.source,
            "values": len(sizes),
            "mean_value_bytes": sum(sizes) / len(sizes),
            "min_value_bytes": min(sizes),
            "max_value_bytes": max(sizes),
            "sample_key": self.keys[0],
            "sample_value": self.values[0].decode("utf-8", "replace"),
        }


def synthetic_dataset(count: int) -> Dataset:
    """Values shaped and sized like an encoded Question, for when the core is absent."""
    epoch = datetime(2024, 1, 1, tzinfo=UTC)
    keys, values = [], []
    for pk in range(1, count + 1):
        instance = {
            "id": pk,
            "question_text": f"Which favourite city is #{pk}?",
            "pub_date:DateTime": (epoch - timedelta(minutes=pk * 37)).isoformat(),
            "choices:PKList": ["Choice", [pk * 3 - 2, pk * 3 - 1, pk * 3]],
        }
        keys.append(f"drfc_default_Question_{pk}")
        values.append(b"j" + json.dumps(instance, separators=(",", ":")).encode())
    return Dataset(keys, values, "synthetic (shaped like an encoded Question)")


def core_available() -> str | None:
    """None when the strategy core and the example cache import, else why not."""
    try:
        import drf_instcache.cache  # noqa: F401
        import example.polls.cache  # noqa: F401
    except ImportError as error:
        return f"the strategy core is not available ({error})"
    return None


def instance_dataset(count: int) -> Dataset:
    """Encode ``count`` real Questions with PollCache (json codec) via a scratch backend."""
    from drf_instcache.backends.locmem import LocMemBackend
    from example.polls.cache import PollCache

    backend = LocMemBackend("benchmarks-dataset", key_prefix="dataset")
    backend.clear()
    cache = PollCache(backend=backend, codec="json")
    pks = question_pks(count)
    found = cache.get_instances([("Question", pk, None) for pk in pks])
    keys = [found[("Question", pk)][1] for pk in pks if ("Question", pk) in found]
    stored = backend.get_many(keys)
    backend.clear()
    if len(stored) < count:
        raise RuntimeError(f"only {len(stored)} of {count} questions could be encoded")
    return Dataset(
        keys=keys,
        values=[stored[key] for key in keys],
        source="example app Question instances encoded by PollCache (json codec)",
    )


def load_dataset(count: int) -> Dataset:
    """Real encoded instances when the core and database allow, else synthetic ones."""
    if core_available() is None:
        return instance_dataset(count)
    return synthetic_dataset(count)
