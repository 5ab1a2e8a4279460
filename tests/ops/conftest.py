"""Fixtures for the operations tests: a real backend, the real database, seeded polls.

Every test gets a fresh namespace (unique key prefix) on the backend chosen by
``ops_backend``: locmem unless parametrized with :data:`each_backend`, which runs the
test on locmem, on the disk backend in a temporary directory, and on a throw-away Redis
server (started once per session on a free loopback port). The poll tables are filled
with ``seed_polls``, the example app's own command.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.management import call_command

from drf_instcache import settings as instcache_settings
from drf_instcache.backends.base import Backend
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from tests.backends.config_redis import redis_server  # noqa: F401  (session fixture)

each_backend = pytest.mark.parametrize("ops_backend", ["locmem", "disk", "redis"], indirect=True)
"""Run a test once per backend: in-process, on disk, and on a Redis server."""

shared_backends = pytest.mark.parametrize("ops_backend", ["disk", "redis"], indirect=True)
"""Backends several processes can share."""


@pytest.fixture(scope="session")
def ops_disk_directory(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("ops-disk-cache"))


@pytest.fixture
def ops_backend(request: pytest.FixtureRequest) -> str:
    """The backend kind under test (``locmem`` unless parametrized)."""
    return getattr(request, "param", "locmem")


def backend_url(request: pytest.FixtureRequest, kind: str, prefix: str) -> str:
    if kind == "locmem":
        return f"locmem://ops-tests?prefix={prefix}"
    if kind == "disk":
        return f"disk://{request.getfixturevalue('ops_disk_directory')}?prefix={prefix}"
    if kind == "redis":
        return f"{request.getfixturevalue('redis_server').url}?prefix={prefix}"
    raise ValueError(f"unknown backend kind {kind!r}")


@pytest.fixture
def namespace_url(request: pytest.FixtureRequest, ops_backend: str, settings: Any) -> Iterator[str]:
    """Point ``DRF_INSTCACHE_BACKEND`` at a fresh namespace; returns its URL."""
    url = backend_url(request, ops_backend, f"ops{uuid.uuid4().hex[:12]}")
    settings.DRF_INSTCACHE_BACKEND = url
    yield url
    instcache_settings.get_backend().clear()


@pytest.fixture
def backend(namespace_url: str) -> Backend:
    """The configured backend (what the command and the views use)."""
    return instcache_settings.get_backend()


@dataclass
class Seeded:
    """How many rows ``seed_polls`` made."""

    users: int
    questions: int
    choices: int


@pytest.fixture
def seeded(db: None, namespace_url: str) -> Seeded:
    """12 questions with 3 choices each, 8 users with 2 votes each; the cache is cold."""
    call_command("seed_polls", questions=12, choices=3, users=8, votes=2, stdout=io.StringIO())
    return Seeded(users=8, questions=Question.objects.count(), choices=Choice.objects.count())


@dataclass
class Output:
    stdout: str
    stderr: str


def instcache(*args: Any, **options: Any) -> Output:
    """Run ``manage.py instcache ARGS`` in-process and return what it printed."""
    out, err = io.StringIO(), io.StringIO()
    call_command("instcache", *args, stdout=out, stderr=err, **options)
    return Output(out.getvalue(), err.getvalue())


def cached_pks(backend: Backend, model_name: str, pks: list[Any]) -> set[Any]:
    """The pks among ``pks`` whose default-version entry is in the backend."""
    cache = PollCache()
    keys = {cache.key_for("default", model_name, pk): pk for pk in pks}
    return {keys[key] for key in backend.get_many(list(keys))}
