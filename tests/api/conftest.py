"""Fixtures for the API tests: a real database, a real cache server, DRF's APIClient.

Every test gets its own cache namespace (a unique key prefix) on the backend chosen by
``instcache_backend``: locmem unless the test is parametrized with :data:`every_backend`,
which runs it on locmem, disk, Redis and Memcached (real servers on free loopback
ports, started once per session).

The database is used with ``transactional_db``: requests commit for real, so the cache
updates the signal helpers schedule with ``transaction.on_commit`` run exactly as in
production, and a rolled-back transaction can be observed to change nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from drf_instcache import settings as instcache_settings
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from tests.backends.config_memcached import memcached_server  # noqa: F401  (session fixture)
from tests.backends.config_redis import redis_server  # noqa: F401  (session fixture)

BACKENDS = ("locmem", "disk", "redis", "memcached")

every_backend = pytest.mark.parametrize("instcache_backend", BACKENDS, indirect=True)
"""Run a test once per backend configuration."""

NEAR = "redis-near"
"""Redis with the near cache in front (``OPTIONS["NEAR_CACHE"]``), tracking up."""


def wait_for_near_cache() -> None:
    """Build the process backend and wait (bounded) until its near cache serves from
    memory, so the test's reads really go through it."""
    from drf_instcache.backends.near import near_layer
    from tests.backends.config_near import wait_for_tracking

    layer = near_layer(instcache_settings.get_backend())
    assert layer is not None, "the near cache is not in the backend chain"
    wait_for_tracking(layer)


@pytest.fixture
def instcache_backend(request: pytest.FixtureRequest) -> str:
    """The backend configuration under test (``locmem`` unless parametrized)."""
    return getattr(request, "param", "locmem")


@pytest.fixture(scope="session")
def disk_cache_directory(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("api-disk-cache"))


def _backend_url(request: pytest.FixtureRequest, configuration: str, prefix: str) -> str:
    if configuration == "locmem":
        return f"locmem://api-tests?prefix={prefix}"
    if configuration == "disk":
        return f"disk://{request.getfixturevalue('disk_cache_directory')}?prefix={prefix}"
    if configuration == "redis":
        return f"{request.getfixturevalue('redis_server').url}?prefix={prefix}"
    if configuration == "memcached":
        server = request.getfixturevalue("memcached_server")
        return f"memcached://{server.address}?prefix={prefix}"
    raise ValueError(f"unknown backend configuration {configuration!r}")


@pytest.fixture(autouse=True)
def cache_namespace(
    request: pytest.FixtureRequest, instcache_backend: str, settings: Any, transactional_db: None
) -> Iterator[str]:
    """Point ``DRF_INSTCACHE_BACKEND`` at a fresh namespace of the chosen backend."""
    prefix = f"api{uuid.uuid4().hex[:12]}"
    if instcache_backend == NEAR:
        settings.DRF_INSTCACHE_BACKEND = {
            "BACKEND": request.getfixturevalue("redis_server").url,
            "KEY_PREFIX": prefix,
            "OPTIONS": {"NEAR_CACHE": {"MAX_BYTES": 16 * 2**20, "HEALTH_CHECK_INTERVAL": 0.5}},
        }
        wait_for_near_cache()
    else:
        settings.DRF_INSTCACHE_BACKEND = _backend_url(request, instcache_backend, prefix)
    yield prefix
    if instcache_settings.enabled():
        instcache_settings.get_backend().clear()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def cache() -> PollCache:
    return PollCache()


def cached_bytes(model_name: str, pk: Any, cache: PollCache | None = None) -> bytes | None:
    """The raw bytes stored for one instance, read straight from the backend."""
    cache = cache or PollCache()
    key = cache.key_for(cache.default_version, model_name, pk)
    return instcache_settings.get_backend().get_many([key]).get(key)


# -- data ------------------------------------------------------------------------------
EPOCH = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class Polls:
    """Rows made by :func:`make_polls`, in creation (= pk) order."""

    users: list[User]
    questions: list[Question]
    choices: list[Choice]


def make_polls(questions: int = 3, choices: int = 2, users: int = 3, votes: int = 2) -> Polls:
    """Create rows with ``bulk_create``: no signals, so the cache starts cold.

    User ``i`` votes for choices ``i, i+1, ...`` (``votes`` of them, wrapping around).
    """
    tag = uuid.uuid4().hex[:6]
    new_users = User._base_manager.bulk_create(
        User(username=f"u{tag}{number:03d}", date_joined=EPOCH - timedelta(days=number))
        for number in range(users)
    )
    new_questions = Question._base_manager.bulk_create(
        Question(question_text=f"Question {number}?", pub_date=EPOCH + timedelta(hours=number))
        for number in range(questions)
    )
    new_choices = Choice._base_manager.bulk_create(
        Choice(question=question, choice_text=f"{question.question_text} answer {index}")
        for question in new_questions
        for index in range(choices)
    )
    if new_choices:
        Choice.voters.through.objects.bulk_create(
            Choice.voters.through(
                user_id=user.pk, choice_id=new_choices[(number + offset) % len(new_choices)].pk
            )
            for number, user in enumerate(new_users)
            for offset in range(min(votes, len(new_choices)))
        )
    return Polls(new_users, new_questions, new_choices)


@pytest.fixture
def polls() -> Polls:
    """A small poll data set: 3 questions, 6 choices, 3 users with 2 votes each."""
    return make_polls()
