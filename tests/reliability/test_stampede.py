"""Promise 4: stampedes are bounded, and so is the wait they cause, on every backend.

Fifty threads read one cold instance at the same moment. The first to claim the key's
lease loads it; the others wait for its fill instead of all going to the database. A
lease whose holder never fills (it crashed, or hangs) holds the others for at most
``DRF_INSTCACHE_LEASES["WAIT"]``: then each reads the database itself, and stores
nothing over the foreign lease.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from drf_instcache.leases import is_lease, new_lease
from example.polls.models import Question
from tests.reliability.conftest import InstrumentedPollCache, started

pytestmark = pytest.mark.django_db(transaction=True)

READERS = 50
MOST_LOADS = 2
"""Database loads allowed for one stampede: the lease holder, plus one in reserve for a
holder whose lease ran out on a very slow machine."""


def test_fifty_concurrent_cold_reads_load_the_row_at_most_twice(backend, settings):
    # A generous wait, so a slow CI machine cannot turn waiting readers into loaders.
    settings.DRF_INSTCACHE_LEASES = {"TTL": 30, "WAIT": 10}
    question = Question.objects.create(
        question_text="Popular?", pub_date=dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    )
    cache = InstrumentedPollCache(backend=backend)
    start = threading.Barrier(READERS)

    def read() -> str:
        start.wait(timeout=30)
        found = cache.get_instances([("question", question.pk, None)])
        return found[("question", question.pk)][0]["question_text"]

    readers = [started(read) for _ in range(READERS)]
    assert [reader.outcome() for reader in readers] == ["Popular?"] * READERS
    assert 1 <= cache.loads <= MOST_LOADS


def test_a_lease_never_filled_holds_readers_a_bounded_number_of_polls(
    backend, round_trips, settings
):
    settings.DRF_INSTCACHE_LEASES = {"TTL": 60, "WAIT": 0.2}
    question = Question.objects.create(
        question_text="Held", pub_date=dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    )
    cache = InstrumentedPollCache(backend=backend)
    key = cache.key_for("default", "question", question.pk)
    stuck = new_lease()  # a holder that will never fill it
    assert backend.add_many({key: stuck}, timeout=60) == [key]

    before = round_trips()
    found = cache.get_instances([("question", question.pk, None)])
    requests = round_trips() - before

    assert found[("question", question.pk)][0]["question_text"] == "Held"
    assert cache.loads == 1, "after waiting, the reader loads the row itself"
    assert backend.get_many([key]) == {key: stuck}, "nothing is stored over another's lease"
    # One read, one refused claim, then polls backing off 5, 10, 20, 40, 50... ms within
    # the 0.2 s wait: seven at most.
    assert requests <= 2 + 7
    assert is_lease(stuck)


def test_with_leases_off_reads_still_fill_and_hit(backend, settings):
    """``DRF_INSTCACHE_LEASES = None``: plain cache-aside fills (the documented opt-out)."""
    settings.DRF_INSTCACHE_LEASES = None
    question = Question.objects.create(
        question_text="Plain", pub_date=dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    )
    cache = InstrumentedPollCache(backend=backend)
    spec = [("question", question.pk, None)]
    for _ in range(3):
        found = cache.get_instances(spec)
        assert found[("question", question.pk)][0]["question_text"] == "Plain"
    assert cache.loads == 1
