"""Promise 3: no stale entry survives a write, on every backend.

The cache-aside race, made deterministic with a :class:`Gate`: a reader (or a writer)
loads a row and is paused before it stores what it loaded; meanwhile the row changes,
the change commits and its cache update runs; then the paused thread goes on. Without
leases its store lands last and the old row stays cached. With leases the write took
the key from under it, so its store is refused.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from drf_instcache.leases import is_marker
from example.polls.cache import PollCache
from example.polls.models import Question
from tests.reliability.conftest import Gate, InstrumentedPollCache, started

pytestmark = pytest.mark.django_db(transaction=True)

PUB_DATE = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def make_question(text: str) -> Question:
    return Question.objects.create(question_text=text, pub_date=PUB_DATE)


def cached_text(cache: PollCache, pk: Any) -> str | None:
    """The question_text cached for question ``pk`` (None: no entry)."""
    key = cache.key_for("default", "question", pk)
    raw = cache.backend.get_many([key]).get(key)
    if raw is None:
        return None
    assert not is_marker(raw), f"a lease or marker was left behind: {raw!r}"
    return cache.decode_entry("question", "default", raw)["question_text"]


def read_text(cache: PollCache, pk: Any) -> str:
    found = cache.get_instances([("question", pk, None)])
    return found[("question", pk)][0]["question_text"]


def test_a_reader_that_loaded_before_a_write_does_not_cache_the_old_row(backend, gate: Gate):
    question = make_question("old")
    reader = InstrumentedPollCache(backend=backend, gate=gate)
    writer = PollCache(backend=backend)

    reading = started(lambda: read_text(reader, question.pk))
    gate.wait_reached()  # the reader holds the old row, not yet stored
    Question._base_manager.filter(pk=question.pk).update(question_text="new")
    writer.update_instance("question", question.pk)
    assert cached_text(writer, question.pk) == "new"
    gate.release()

    assert reading.outcome() == "old"  # its read began before the write: that is fine
    assert cached_text(writer, question.pk) == "new"  # but it did not overwrite the write
    assert read_text(writer, question.pk) == "new"


def test_a_reader_that_loaded_before_a_delete_does_not_resurrect_the_row(backend, gate: Gate):
    question = make_question("doomed")
    reader = InstrumentedPollCache(backend=backend, gate=gate)
    writer = PollCache(backend=backend)

    reading = started(lambda: read_text(reader, question.pk))
    gate.wait_reached()
    pk = question.pk
    question.delete()
    writer.forget_instance("question", pk, question)
    gate.release()

    assert reading.outcome() == "doomed"
    assert cached_text(writer, pk) is None
    assert writer.get_instances([("question", pk, None)]) == {}


def test_of_two_writers_the_last_committed_state_wins(backend, gate: Gate):
    question = make_question("v1")
    slow_writer = InstrumentedPollCache(backend=backend, gate=gate)
    fast_writer = PollCache(backend=backend)

    # Writer A refreshes after its commit (v1) and is paused after loading v1 ...
    updating = started(lambda: slow_writer.update_instance("question", question.pk))
    gate.wait_reached()
    # ... while writer B commits v2 and refreshes the entry.
    Question._base_manager.filter(pk=question.pk).update(question_text="v2")
    fast_writer.update_instance("question", question.pk)
    gate.release()
    updating.outcome()

    assert cached_text(fast_writer, question.pk) == "v2"
    assert read_text(fast_writer, question.pk) == "v2"


def test_a_reader_waiting_for_a_writer_gets_the_new_row(backend, gate: Gate, settings):
    """A read arriving while a writer refreshes waits for the writer's value."""
    settings.DRF_INSTCACHE_LEASES = {"TTL": 30, "WAIT": 10}
    question = make_question("before")
    writer = InstrumentedPollCache(backend=backend, gate=gate)
    reader = InstrumentedPollCache(backend=backend)
    read_text(reader, question.pk)  # cached
    Question._base_manager.filter(pk=question.pk).update(question_text="after")

    updating = started(lambda: writer.update_instance("question", question.pk))
    gate.wait_reached()  # the writer's lease is on the key; it has loaded "after"
    reading = started(lambda: read_text(reader, question.pk))
    gate.release()
    updating.outcome()

    assert reading.outcome() == "after"
    assert reader.loads == 1, "the waiting reader took the writer's value, not the database's"
