"""BaseCache.get_instances: one round trip per batch, constant queries, graceful failure."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from drf_instcache import counters as stats
from drf_instcache import settings as instcache_settings
from drf_instcache.backends.locmem import LocMemBackend
from drf_instcache.backends.redis import RedisBackend
from drf_instcache.cache import BaseCache, UnknownVersion
from drf_instcache.codecs import get_codec
from drf_instcache.exceptions import BackendUnavailable, UnknownModel
from drf_instcache.models import PkOnlyModel, PkOnlyQueryset
from drf_instcache.testing.ports import free_port
from example.polls.cache import PollCache
from example.polls.models import Question
from tests.core.conftest import PUB_DATE, CountingBackend, make_questions

pytestmark = pytest.mark.django_db


def question_specs(questions):
    return [("Question", question.pk, None) for question in questions]


class PerPkCache(PollCache):
    """The poll cache without batch loaders: every miss is loaded on its own."""

    question_default_loader_many = None
    choice_default_loader_many = None
    user_default_loader_many = None


class GroupsNotCached(PollCache):
    """Groups are known to the cache (they may invalidate) but not cached themselves."""

    group_default_serializer = None
    group_default_loader = None
    group_default_invalidator = None


def count_queries(function, *args):
    with CaptureQueriesContext(connection) as context:
        result = function(*args)
    return len(context), result


def test_warm_list_costs_no_query_and_one_get_many(cache, backend, django_assert_num_queries):
    questions = make_questions(100)
    cache.get_instances(question_specs(questions))
    backend.reset_counts()

    with django_assert_num_queries(0):
        result = cache.get_instances(question_specs(questions))

    assert backend.calls == {"get_many": 1}
    assert len(result) == 100
    native, key, obj = result[("Question", questions[7].pk)]
    assert key == cache.key_for("default", "Question", questions[7].pk)
    assert obj is None  # nothing was loaded
    assert native["question_text"] == "Question 7?"
    assert native["pub_date"] == PUB_DATE + dt.timedelta(hours=7)
    assert isinstance(native["choices"], PkOnlyQueryset)
    assert native["choices"].values_list("pk", flat=True) == sorted(
        questions[7].choices.values_list("pk", flat=True)
    )


def test_cold_list_with_loader_many_costs_the_same_queries_for_10_and_100(cache, backend):
    small, large = make_questions(10), make_questions(100)

    small_queries, small_result = count_queries(cache.get_instances, question_specs(small))
    backend.reset_counts()
    large_queries, large_result = count_queries(cache.get_instances, question_specs(large))

    assert small_queries == large_queries == 2  # the rows, then their choices
    assert (len(small_result), len(large_result)) == (10, 100)
    assert backend.calls == {"get_many": 1, "set_many": 1}
    assert sorted(backend.keys_of("set_many")) == sorted(
        cache.key_for("default", "Question", q.pk) for q in large
    )


def test_without_loader_many_each_miss_is_loaded_on_its_own(backend):
    cache = PerPkCache(backend=backend)
    questions = make_questions(10)

    queries, result = count_queries(cache.get_instances, question_specs(questions))

    assert queries == 2 * 10  # the row and its choices, per question
    assert len(result) == 10
    assert backend.calls == {"get_many": 1, "set_many": 1}


def test_hits_and_misses_give_the_same_data(cache, poll):
    specs = [("Choice", poll["redis"].pk, None), ("User", poll["bob"].pk, None)]
    cold = cache.get_instances(specs)
    warm = cache.get_instances(specs)

    for spec in (("Choice", poll["redis"].pk), ("User", poll["bob"].pk)):
        assert cold[spec][0] == warm[spec][0]
    choice = warm[("Choice", poll["redis"].pk)][0]
    assert choice["question"] == PkOnlyModel(None, Question, poll["question"].pk)
    assert choice["voters"].values_list("pk", flat=True) == [poll["alice"].pk, poll["bob"].pk]
    user = warm[("User", poll["bob"].pk)][0]
    assert user["votes"].values_list("pk", flat=True) == [poll["redis"].pk, poll["memcached"].pk]
    assert user["date_joined"] == poll["bob"].date_joined


def test_misses_return_the_loaded_object(cache, poll):
    result = cache.get_instances([("Question", poll["question"].pk, None)])
    assert result[("Question", poll["question"].pk)][2] == poll["question"]


def test_several_models_share_one_get_many_and_one_set_many(cache, backend, poll):
    specs = [
        ("Question", poll["question"].pk, None),
        ("Choice", poll["redis"].pk, None),
        ("Choice", poll["memcached"].pk, None),
        ("User", poll["alice"].pk, None),
    ]
    queries, result = count_queries(cache.get_instances, specs)
    assert len(result) == 4
    assert queries == 6  # two per model, thanks to each model's loader_many
    assert backend.calls == {"get_many": 1, "set_many": 1}


def test_missing_rows_are_absent_and_not_cached(cache, backend, poll):
    specs = [("Question", poll["question"].pk, None), ("Question", 999_999, None)]
    result = cache.get_instances(specs)
    assert list(result) == [("Question", poll["question"].pk)]
    assert backend.keys_of("set_many") == [
        cache.key_for("default", "Question", poll["question"].pk)
    ]


def test_a_given_object_is_serialized_without_loading(cache, poll, django_assert_num_queries):
    question = poll["question"]
    question._choices_pks = [poll["redis"].pk]  # what a loader would have attached
    with django_assert_num_queries(0):
        result = cache.get_instances([("Question", question.pk, question)])
    native, _, obj = result[("Question", question.pk)]
    assert obj is question
    assert native["choices"].values_list("pk", flat=True) == [poll["redis"].pk]


def test_spellings_of_one_instance_share_one_key(cache, backend, poll):
    pk = poll["question"].pk
    result = cache.get_instances([("Question", pk, None), ("question", str(pk), None)])
    assert set(result) == {("Question", pk), ("question", str(pk))}
    assert result[("Question", pk)][0] == result[("question", str(pk))][0]
    assert result[("Question", pk)][0] is not result[("question", str(pk))][0]
    assert len(backend.keys_of("get_many")) == 1


def test_text_primary_keys_match_rows_loaded_in_batch(cache, poll):
    pk = poll["question"].pk
    result = cache.get_instances([("Question", str(pk), None)])
    assert result[("Question", str(pk))][0]["id"] == pk


def test_corrupt_value_is_a_miss_and_is_overwritten(cache, backend, poll):
    key = cache.key_for("default", "Question", poll["question"].pk)
    backend.inner.set_many({key: b"\x00garbage from elsewhere"})
    before = stats.snapshot()["corrupt"]

    result = cache.get_instances([("Question", poll["question"].pk, None)])

    assert result[("Question", poll["question"].pk)][0]["question_text"] == "Best cache?"
    assert stats.snapshot()["corrupt"] == before + 1
    assert get_codec("json").decode(backend.inner.get_many([key])[key])["id"] == (
        poll["question"].pk
    )


def test_value_written_by_another_codec_is_reloaded(backend, poll):
    specs = [("Choice", poll["redis"].pk, None)]
    PollCache(backend=backend, codec="msgpack").get_instances(specs)
    reader = PollCache(backend=backend, codec="orjson")

    queries, result = count_queries(reader.get_instances, specs)

    assert queries == 2  # a miss: the msgpack value was not trusted
    assert result[("Choice", poll["redis"].pk)][0]["choice_text"] == "Redis"
    queries, _ = count_queries(reader.get_instances, specs)
    assert queries == 0  # rewritten in orjson


def test_too_large_instances_are_served_uncached_and_warned_once(poll, caplog):
    Question._base_manager.filter(pk=poll["question"].pk).update(question_text="?" * 200)
    backend = CountingBackend(LocMemBackend(f"core-{uuid.uuid4().hex}", max_value_size=250))
    cache = PollCache(backend=backend)
    specs = [("Question", poll["question"].pk, None), ("Choice", poll["redis"].pk, None)]

    with caplog.at_level(logging.WARNING, logger="drf_instcache"):
        first = cache.get_instances(specs)
        queries, second = count_queries(cache.get_instances, specs)

    assert (
        first.keys()
        == second.keys()
        == {("Question", poll["question"].pk), ("Choice", poll["redis"].pk)}
    )
    stored = backend.inner.get_many([first[spec][1] for spec in first])
    assert list(stored) == [first[("Choice", poll["redis"].pk)][1]]  # the small one only
    assert queries == 2  # the question is loaded again each time
    warnings = [record for record in caplog.records if "too large" in record.getMessage()]
    assert len(warnings) == 1


def test_unreachable_server_serves_from_the_database(poll, caplog):
    backend = RedisBackend(
        f"redis://127.0.0.1:{free_port()}/0", options={"socket_connect_timeout": 0.2}
    )
    cache = PollCache(backend=backend)
    errors = stats.snapshot()["errors"]
    specs = [("Question", poll["question"].pk, None), ("User", poll["alice"].pk, None)]

    with caplog.at_level(logging.WARNING, logger="drf_instcache"):
        result = cache.get_instances(specs)

    assert result[("User", poll["alice"].pk)][0]["username"] == "alice"
    assert len(result) == 2
    assert stats.snapshot()["errors"] == errors + 1  # no write attempted after a failed read
    assert any("serving from the database" in r.getMessage() for r in caplog.records)
    backend.close()


class WriteFailingBackend(LocMemBackend):
    """Reads work, writes fail: a server that went away between two calls."""

    def set_many(self, items, timeout=None):
        raise BackendUnavailable("server went away")

    def compare_and_set_many(self, items, timeout=None):  # the fill path with leases
        raise BackendUnavailable("server went away")


def test_failed_write_still_returns_the_data(poll, caplog):
    cache = PollCache(backend=WriteFailingBackend(f"core-{uuid.uuid4().hex}"))
    with caplog.at_level(logging.WARNING, logger="drf_instcache"):
        result = cache.get_instances([("Choice", poll["memcached"].pk, None)])
    assert result[("Choice", poll["memcached"].pk)][0]["choice_text"] == "Memcached"
    (warning,) = [r.getMessage() for r in caplog.records]  # the outage, once
    # The fill over the read's lease, not waited for where the adapter could skip the
    # answer (here: compare_and_set_many).
    assert "is unavailable (fill_many_quietly failed: server went away)" in warning


def test_disabled_cache_reads_the_database_and_never_the_backend(backend, poll):
    cache = PollCache(backend=backend)
    with override_settings(USE_DRF_INSTANCE_CACHE=False):
        assert cache.backend is None
        result = cache.get_instances([("Question", poll["question"].pk, None)])
        again = cache.get_instances([("Question", poll["question"].pk, None)])
    assert result[("Question", poll["question"].pk)][0]["question_text"] == "Best cache?"
    assert again.keys() == result.keys()
    assert backend.calls == {}


def test_default_backend_comes_from_the_settings(poll):
    location = f"core-default-{uuid.uuid4().hex}"
    with override_settings(DRF_INSTCACHE_BACKEND=f"locmem://{location}"):
        cache = PollCache()
        cache.get_instances([("Question", poll["question"].pk, None)])
        key = cache.key_for("default", "Question", poll["question"].pk)
        assert key in instcache_settings.get_backend().get_many([key])
        instcache_settings.get_backend().clear()


def test_unknown_model_lists_the_known_ones(cache):
    with pytest.raises(UnknownModel, match=r"'Poll'.*known models: choice, question, user"):
        cache.get_instances([("Poll", 1, None)])


def test_unknown_version_is_refused(cache):
    with pytest.raises(UnknownVersion, match=r"'v9'.*default"):
        cache.get_instances([("Question", 1, None)], version="v9")


def test_known_but_uncached_models_give_nothing(backend):
    group = Group.objects.create(name="staff")
    cache = GroupsNotCached(backend=backend)
    assert cache.get_instances([("Group", group.pk, None)]) == {}
    assert backend.calls == {}


def test_no_specs_no_round_trip(cache, backend):
    assert cache.get_instances([]) == {}
    assert backend.calls == {}


def test_known_models():
    assert PollCache().known_models() == ["choice", "question", "user"]
    assert GroupsNotCached().known_models() == ["choice", "question", "user"]
    assert BaseCache().known_models() == []
