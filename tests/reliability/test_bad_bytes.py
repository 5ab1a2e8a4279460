"""Promise 2: bad bytes in the cache are a miss, never wrong data, on every backend.

Whatever sits under an instance's key (a truncated value, garbage, a value written by
another codec or by an older release, a value of the wrong type, the entry of another
model) the read returns the row as the database has it, counts one ``corrupt``, and
leaves a good value behind. Hypothesis draws the bad bytes.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drf_instcache import counters
from drf_instcache.cache import STAMP_FIELD
from drf_instcache.codecs import get_codec
from drf_instcache.leases import LEASE_PREFIX, is_marker
from example.polls.cache import PollCache
from example.polls.models import Choice, Question

pytestmark = pytest.mark.django_db


@pytest.fixture
def question() -> Question:
    question = Question.objects.create(
        question_text="Which codec?", pub_date=dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC)
    )
    Choice.objects.create(question=question, choice_text="json")
    return question


def good_entry(cache: PollCache, question: Question) -> bytes:
    native = cache.question_default_serializer(cache.question_default_loader(question.pk))
    return cache.encode_entry("question", "default", native)


def bad_values(cache: PollCache, question: Question) -> st.SearchStrategy[bytes]:
    """Every kind of unusable bytes the issue lists, for this question's key."""
    good = good_entry(cache, question)
    json = get_codec("json")
    unstamped = json.decode(good)
    del unstamped[STAMP_FIELD]
    stamped = json.decode(good)
    choice = Choice.objects.get(question=question)
    wrong_model = cache.encode_entry(
        "choice", "default", cache.choice_default_serializer(cache.choice_default_loader(choice.pk))
    )
    not_a_dict = st.one_of(
        st.lists(st.integers(), max_size=3), st.text(max_size=20), st.integers(), st.none()
    )
    return st.one_of(
        st.integers(0, len(good) - 1).map(lambda size: good[:size]),  # truncated
        st.binary(max_size=300),  # garbage
        st.binary(max_size=50).map(lambda tail: good[:2] + tail),  # our marker, bad payload
        st.binary(max_size=40).map(lambda tail: LEASE_PREFIX + tail),  # almost a lease
        st.sampled_from(["orjson", "msgpack"]).map(lambda name: get_codec(name).encode(stamped)),
        st.just(json.encode(unstamped)),  # written by a release without entry stamps
        st.just(b"J0" + good[2:]),  # an older codec format
        not_a_dict.map(json.encode),  # a value of the wrong type
        st.just(wrong_model),  # the entry of another model under this key
        st.just(json.encode({**stamped, STAMP_FIELD: "question:v0"})),  # another version
    ).filter(lambda raw: raw != good and not is_marker(raw))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_bad_bytes_are_a_counted_miss_and_are_replaced(backend, question, data):
    cache = PollCache(backend=backend)
    key = cache.key_for("default", "question", question.pk)
    good = good_entry(cache, question)
    bad = data.draw(bad_values(cache, question), label="bad bytes")
    backend.set_many({key: bad})
    corrupt_before = counters.snapshot()["corrupt"]

    found = cache.get_instances([("question", question.pk, None)])

    native, found_key, _ = found[("question", question.pk)]
    assert found_key == key
    assert (native["id"], native["question_text"]) == (question.pk, "Which codec?")
    assert native["pub_date"] == question.pub_date
    assert counters.snapshot()["corrupt"] == corrupt_before + 1
    assert backend.get_many([key]) == {key: good}, "the bad value is overwritten"


def test_each_bad_key_is_logged_once(backend, question, caplog):
    cache = PollCache(backend=backend)
    key = cache.key_for("default", "question", question.pk)
    spec = [("question", question.pk, None)]
    with caplog.at_level(logging.DEBUG, logger="drf_instcache"):
        for _ in range(3):
            backend.set_many({key: b"\xff garbage \x00"})
            assert cache.get_instances(spec)[("question", question.pk)][0]["id"] == question.pk
    warnings = [
        record
        for record in caplog.records
        if record.levelno == logging.WARNING and key in record.getMessage()
    ]
    assert len(warnings) == 1, [record.getMessage() for record in warnings]
    assert "unreadable" in warnings[0].getMessage()


def test_a_representation_cannot_use_the_reserved_field(backend):
    class BadCache(PollCache):
        def question_default_serializer(self, obj: Any) -> dict[str, Any]:
            return {"id": obj.pk, STAMP_FIELD: "mine"}

    question = Question.objects.create(
        question_text="?", pub_date=dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    )
    with pytest.raises(ValueError, match="reserved"):
        BadCache(backend=backend).get_instances([("question", question.pk, None)])
