"""Fixtures for the strategy-core tests: real backends, a call-counting wrapper, poll data.

The core's promises are about round trips ("one get_many per list"), so the tests wrap
a real backend in :class:`CountingBackend`, which forwards every call unchanged and
records it. Nothing is mocked: values really go through the codec and the backend.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from django.contrib.auth.models import User

from drf_instcache.backends.base import Backend
from drf_instcache.backends.locmem import LocMemBackend
from example.polls.cache import PollCache
from example.polls.models import Choice, Question

HAS_DISK_BACKEND = importlib.util.find_spec("drf_instcache.backends.disk") is not None
BACKEND_KINDS = ["locmem", "disk"] if HAS_DISK_BACKEND else ["locmem"]


class CountingBackend:
    """A real backend behind a wrapper that counts (and logs) every protocol call."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.log: list[tuple[str, list[str]]] = []

    def _record(self, name: str, keys: Sequence[str]) -> None:
        self.calls[name] += 1
        self.log.append((name, list(keys)))

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        self._record("get_many", keys)
        return self.inner.get_many(keys)

    def set_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> None:
        self._record("set_many", list(items))
        self.inner.set_many(items, timeout)

    def delete_many(self, keys: Sequence[str]) -> None:
        self._record("delete_many", keys)
        self.inner.delete_many(keys)

    def clear(self) -> None:
        self._record("clear", [])
        self.inner.clear()

    def close(self) -> None:
        self.inner.close()

    def reset_counts(self) -> None:
        self.calls.clear()
        self.log.clear()

    def keys_of(self, name: str) -> list[str]:
        """Every key passed to calls of ``name``, in order."""
        return [key for call, keys in self.log if call == name for key in keys]


def make_backend(kind: str, tmp_path: Any, **kwargs: Any) -> Backend:
    """A fresh, empty backend of ``kind`` private to one test."""
    if kind == "locmem":
        return LocMemBackend(f"core-{uuid.uuid4().hex}", **kwargs)
    from drf_instcache.backends.disk import DiskBackend

    return DiskBackend(str(tmp_path / f"disk-{uuid.uuid4().hex}"), **kwargs)


@pytest.fixture(params=BACKEND_KINDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    """Each backend the get/update tests run over."""
    return request.param


@pytest.fixture
def backend(backend_kind: str, tmp_path: Any) -> Iterator[CountingBackend]:
    inner = make_backend(backend_kind, tmp_path)
    counting = CountingBackend(inner)
    yield counting
    inner.clear()
    inner.close()


@pytest.fixture
def cache(backend: CountingBackend) -> PollCache:
    return PollCache(backend=backend)


@pytest.fixture
def locmem_backend() -> Iterator[CountingBackend]:
    inner = LocMemBackend(f"core-{uuid.uuid4().hex}")
    yield CountingBackend(inner)
    inner.clear()


PUB_DATE = dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)


def make_questions(count: int, choices_each: int = 2) -> list[Question]:
    """``count`` questions with ``choices_each`` choices, created in bulk."""
    questions = Question._base_manager.bulk_create(
        Question(question_text=f"Question {n}?", pub_date=PUB_DATE + dt.timedelta(hours=n))
        for n in range(count)
    )
    Choice._base_manager.bulk_create(
        Choice(question=question, choice_text=f"Answer {n}")
        for question in questions
        for n in range(choices_each)
    )
    return questions


@pytest.fixture
def poll(db: None) -> dict[str, Any]:
    """One question with two choices; alice voted for the first, bob for both."""
    question = Question.objects.create(question_text="Best cache?", pub_date=PUB_DATE)
    redis_choice = Choice.objects.create(question=question, choice_text="Redis")
    memcached_choice = Choice.objects.create(question=question, choice_text="Memcached")
    alice = User.objects.create_user("alice")
    bob = User.objects.create_user("bob")
    redis_choice.voters.add(alice, bob)
    memcached_choice.voters.add(bob)
    return {
        "question": question,
        "redis": redis_choice,
        "memcached": memcached_choice,
        "alice": alice,
        "bob": bob,
    }
