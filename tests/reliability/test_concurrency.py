"""Promise 3, at random: concurrent writers and readers leave no stale entry behind.

Writer threads change the example's rows through the ORM (renames, moved and new and
deleted choices, votes added and removed), so the signal helpers refresh the cache after
each commit, exactly as in production; reader threads read random instances through the
cache at the same time. Loaders sleep a little after reading the database, which widens
the cache-aside window the way a loaded server does. When everything is done, every
entry left in the cache must equal a fresh serialization of its row, and the entries of
deleted rows must be gone.
"""

from __future__ import annotations

import contextlib
import random
import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ObjectDoesNotExist
from django.db import IntegrityError

from drf_instcache import settings as instcache_settings
from drf_instcache.leases import is_marker
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from tests.api.conftest import make_polls
from tests.reliability.conftest import backend_url, started

pytestmark = pytest.mark.django_db(transaction=True)

WRITERS = 3
READERS = 3
OPERATIONS = 30
READS = 60
LOAD_JITTER = 0.01
"""Longest pause, in seconds, after a read loaded its rows."""

MODELS = {"question": Question, "choice": Choice, "user": User}

CONFIGURATIONS = [
    "locmem",
    "disk",
    "redis",
    "redis-cluster",
    "memcached",
    "memcached-3",
    "django-redis",
]


@pytest.fixture
def slow_loaders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the batch loaders of the example cache pause after their database read.

    Reads load through ``loader_many``, refreshes after a write through ``loader``: only
    reads are slowed, so a read that began before a write often ends after the
    write's refresh, the order in which a plain cache-aside fill caches the old row.
    """
    for model in MODELS:
        name = f"{model}_default_loader_many"
        original = getattr(PollCache, name)

        def slow(self: PollCache, pks: Any, _original: Any = original) -> Any:
            result = _original(self, pks)
            time.sleep(random.uniform(0, LOAD_JITTER))
            return result

        monkeypatch.setattr(PollCache, name, slow)


def write_randomly(seed: int, question_pks: list[int], user_pks: list[int]) -> None:
    """One writer: random ORM changes, each committed on its own (autocommit)."""
    rng = random.Random(seed)
    for step in range(OPERATIONS):
        # Another writer may delete the choice this one is changing: skip that step.
        with contextlib.suppress(IntegrityError, ObjectDoesNotExist):
            change_something(rng, f"{seed}-{step}", question_pks, user_pks)


def change_something(
    rng: random.Random, tag: str, question_pks: list[int], user_pks: list[int]
) -> None:
    """One random change through the ORM, so the signal helpers see it."""
    choices = list(Choice.objects.values_list("pk", flat=True))
    # Deletes and creations are frequent: a read that loaded a row just before its
    # delete, and stores it after, would cache a row that no longer exists for good.
    action = rng.choice(
        ["rename", "move", "vote", "unvote", "create", "create", "delete", "delete"]
    )
    if action == "create" or not choices:
        Choice.objects.create(question_id=rng.choice(question_pks), choice_text=f"new {tag}")
        return
    choice = Choice.objects.get(pk=rng.choice(choices))
    if action == "rename" and rng.random() < 0.5:
        question = Question.objects.get(pk=rng.choice(question_pks))
        question.question_text = f"q {tag}"
        question.save()
    elif action == "rename":
        choice.choice_text = f"c {tag}"
        choice.save()
    elif action == "move":
        choice.question_id = rng.choice(question_pks)
        choice.save()
    elif action == "vote":
        choice.voters.add(rng.choice(user_pks))
    elif action == "unvote":
        choice.voters.remove(rng.choice(user_pks))
    elif len(choices) > 3:
        choice.delete()


def read_randomly(seed: int, pks: dict[str, list[int]]) -> int:
    """One reader: random batches of instances through the cache; returns instances read."""
    rng = random.Random(seed)
    cache = PollCache()
    read = 0
    for _ in range(READS):
        # Choices come and go: read the ones that exist now (and favour them).
        live = {**pks, "choice": list(Choice.objects.values_list("pk", flat=True))}
        specs = [
            (model, rng.choice(live[model] or [0]), None)
            for model in rng.choices(list(MODELS), weights=[1, 3, 1], k=rng.randint(1, 5))
        ]
        read += len(cache.get_instances(specs))
    return read


def stale_entries(cache: PollCache, pks: dict[str, set[Any]]) -> list[str]:
    """Every cached entry that differs from its row serialized now (or outlived it)."""
    problems = []
    backend = cache.backend
    for model, model_pks in pks.items():
        keys = {cache.key_for("default", model, pk): pk for pk in model_pks}
        found = backend.get_many(list(keys))
        loader = cache.model_function(model, "default", "loader")
        serializer = cache.model_function(model, "default", "serializer")
        for key, raw in found.items():
            if is_marker(raw):
                problems.append(f"{key}: a lease or marker was left behind")
                continue
            row = loader(keys[key])
            if row is None:
                problems.append(f"{key}: cached, but the row was deleted")
                continue
            expected = cache.decode_entry(
                model, "default", cache.encode_entry(model, "default", serializer(row))
            )
            cached = cache.decode_entry(model, "default", raw)
            if cached != expected:
                problems.append(f"{key}: cached {cached} but the row is {expected}")
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_concurrent_writes_and_reads_leave_every_entry_fresh(
    request, settings, slow_loaders, configuration
):
    settings.DRF_INSTCACHE_BACKEND = backend_url(request, settings, configuration)
    polls = make_polls(questions=3, choices=2, users=4, votes=2)
    question_pks = [question.pk for question in polls.questions]
    user_pks = [user.pk for user in polls.users]
    pks = {
        "question": question_pks,
        "choice": [choice.pk for choice in polls.choices],
        "user": user_pks,
    }
    seed = random.randrange(1 << 30)
    print(f"random seed {seed}")  # shown when the test fails, to replay it

    workers = [
        started(lambda n=n: write_randomly(seed + n, question_pks, user_pks))
        for n in range(WRITERS)
    ] + [started(lambda n=n: read_randomly(seed + 100 + n, pks)) for n in range(READERS)]
    outcomes = [worker.outcome(timeout=120) for worker in workers]
    assert sum(outcomes[WRITERS:]) > 0, "the readers read nothing"

    every_pk = {
        "question": set(question_pks),
        "choice": set(pks["choice"]) | set(Choice.objects.values_list("pk", flat=True)),
        "user": set(user_pks),
    }
    every_pk["choice"] |= set(range(min(every_pk["choice"]), max(every_pk["choice"]) + 1))
    cache = PollCache()
    cache.get_instances([(m, pk, None) for m, model_pks in pks.items() for pk in model_pks])
    assert stale_entries(cache, every_pk) == []
    instcache_settings.get_backend().clear()
