"""BaseCache.update_instance / forget_instance: entries follow the database, cascades end."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import override_settings

from drf_instcache.backends.locmem import LocMemBackend
from drf_instcache.backends.redis import RedisBackend
from drf_instcache.cache import BaseCache
from drf_instcache.core import unsettled
from drf_instcache.exceptions import ImproperlyConfigured, UnknownModel
from drf_instcache.testing.ports import free_port
from example.polls.cache import PollCache
from example.polls.models import Choice, Question
from tests.core.conftest import CountingBackend

pytestmark = pytest.mark.django_db


def follow_cascade(cache: BaseCache, model_name: str, pk: Any, **kwargs: Any) -> list[tuple]:
    """Apply an update and everything it names, once each; return what was updated."""
    pending = [(model_name, pk, None)]
    done: list[tuple] = []
    while pending:
        name, each_pk, version = pending.pop(0)
        if (name.lower(), each_pk, version) in done:
            continue
        done.append((name.lower(), each_pk, version))
        pending.extend(cache.update_instance(name, each_pk, version=version, **kwargs))
        assert len(done) < 50, "the cascade does not terminate"
    return done


def cached(cache: BaseCache, backend: CountingBackend, model_name: str, pk: Any) -> dict | None:
    """The decoded entry of one instance, read straight from the backend."""
    key = cache.key_for("default", model_name, pk)
    raw = backend.inner.get_many([key]).get(key)
    return None if raw is None else cache.from_cached(cache.codec.decode(raw))


def pks(entry: dict, field: str) -> list:
    return entry[field].values_list("pk", flat=True)


def warm(cache: BaseCache, *specs: tuple[str, Any]) -> None:
    cache.get_instances([(name, pk, None) for name, pk in specs])


def test_unchanged_instance_writes_nothing_and_cascades_nothing(cache, backend, poll):
    warm(cache, ("Choice", poll["redis"].pk))
    backend.reset_counts()
    assert cache.update_instance("Choice", poll["redis"].pk) == []
    assert backend.calls == {"get_many": 1}


def test_changed_instance_is_rewritten(cache, backend, poll, django_assert_num_queries):
    question = poll["question"]
    warm(cache, ("Question", question.pk))
    Question._base_manager.filter(pk=question.pk).update(question_text="Fastest cache?")

    assert cache.update_instance("Question", question.pk) == []

    with django_assert_num_queries(0):
        result = cache.get_instances([("Question", question.pk, None)])
    assert result[("Question", question.pk)][0]["question_text"] == "Fastest cache?"


def test_new_choice_cascades_to_its_question(cache, backend, poll):
    question = poll["question"]
    warm(cache, ("Question", question.pk))
    disk = Choice.objects.create(question=question, choice_text="Disk")

    follow = cache.update_instance("Choice", disk.pk)

    assert follow == [("Question", question.pk, "default")]
    assert cached(cache, backend, "Question", question.pk) is None  # immediate: deleted now
    assert cache.update_instance("Question", question.pk) == []
    entry = cached(cache, backend, "Question", question.pk)
    assert pks(entry, "choices") == [poll["redis"].pk, poll["memcached"].pk, disk.pk]


def test_a_vote_cascades_from_the_choice_to_the_voter(cache, backend, poll):
    alice, memcached = poll["alice"], poll["memcached"]
    warm(cache, ("User", alice.pk), ("Choice", memcached.pk))
    memcached.voters.add(alice)

    updated = follow_cascade(cache, "Choice", memcached.pk)

    assert ("user", alice.pk, "default") in updated
    assert pks(cached(cache, backend, "User", alice.pk), "votes") == [
        poll["redis"].pk,
        memcached.pk,
    ]
    assert pks(cached(cache, backend, "Choice", memcached.pk), "voters") == [
        alice.pk,
        poll["bob"].pk,
    ]


def test_a_vote_cascades_from_the_voter_to_the_choice(cache, backend, poll):
    alice, memcached = poll["alice"], poll["memcached"]
    warm(cache, ("User", alice.pk), ("Choice", memcached.pk))
    alice.votes.add(memcached)

    follow = cache.update_instance("User", alice.pk)

    assert follow == [
        ("Choice", poll["redis"].pk, "default"),
        ("Choice", memcached.pk, "default"),
    ]
    for name, pk, _ in follow:
        follow_cascade(cache, name, pk)
    assert pks(cached(cache, backend, "Choice", memcached.pk), "voters") == [
        alice.pk,
        poll["bob"].pk,
    ]


def test_deleted_row_loses_its_entry(cache, backend, poll):
    question = poll["question"]
    warm(cache, ("Question", question.pk))
    Question.objects.filter(pk=question.pk).delete()

    assert cache.update_instance("Question", question.pk) == []

    assert cached(cache, backend, "Question", question.pk) is None
    assert cache.get_instances([("Question", question.pk, None)]) == {}


def test_deleted_instance_passed_by_a_post_delete_hook_is_not_written_back(cache, backend, poll):
    """The usage guide's post_delete receiver passes the deleted instance itself."""
    choice, question = poll["memcached"], poll["question"]
    warm(cache, ("Choice", choice.pk), ("Question", question.pk))
    pk = choice.pk
    Choice.objects.filter(pk=pk).delete()  # the receiver's copy is `choice`, pk still set

    follow = cache.update_instance("Choice", pk, choice)

    assert cached(cache, backend, "Choice", pk) is None
    assert follow == [("Question", question.pk, "default")]
    assert cached(cache, backend, "Question", question.pk) is None  # immediate
    follow_cascade(cache, "Question", question.pk)
    assert pks(cached(cache, backend, "Question", question.pk), "choices") == [poll["redis"].pk]


def test_forget_instance_deletes_without_loading(cache, backend, poll, django_assert_num_queries):
    choice, question = poll["redis"], poll["question"]
    warm(cache, ("Choice", choice.pk), ("Question", question.pk))
    cache.choice_default_add_related_pks(choice)  # what a pre_delete hook would do
    pk = choice.pk
    choice.delete()

    with django_assert_num_queries(0):
        follow = cache.forget_instance("Choice", pk, choice)

    assert follow == [
        ("Question", question.pk, "default"),
        ("User", poll["alice"].pk, "default"),
        ("User", poll["bob"].pk, "default"),
    ]
    assert cached(cache, backend, "Choice", pk) is None
    assert cached(cache, backend, "Question", question.pk) is None


def test_update_only_leaves_uncached_entries_alone(cache, backend, poll):
    assert cache.update_instance("Question", poll["question"].pk, update_only=True) == []
    assert backend.calls == {"get_many": 1}
    assert cached(cache, backend, "Question", poll["question"].pk) is None


def test_update_only_rewrites_cached_entries(cache, backend, poll):
    question = poll["question"]
    warm(cache, ("Question", question.pk))
    Question._base_manager.filter(pk=question.pk).update(question_text="Edited?")

    cache.update_instance("Question", question.pk, update_only=True)

    assert cached(cache, backend, "Question", question.pk)["question_text"] == "Edited?"


def test_update_only_still_cascades_a_deletion(cache, backend, poll):
    choice, question = poll["memcached"], poll["question"]
    pk = choice.pk
    Choice.objects.filter(pk=pk).delete()
    follow = cache.update_instance("Choice", pk, choice, update_only=True)
    assert follow == [("Question", question.pk, "default")]


def test_without_update_only_an_uncached_entry_is_written(cache, backend, poll):
    follow = cache.update_instance("Choice", poll["redis"].pk)
    assert cached(cache, backend, "Choice", poll["redis"].pk)["choice_text"] == "Redis"
    assert ("Question", poll["question"].pk, "default") in follow


class CountingQuestionsCache(PollCache):
    """Questions invalidate a raw key holding a question count."""

    COUNT_KEY = "polls:question-count"

    def question_default_invalidator(self, obj):
        return [self.COUNT_KEY]


def test_raw_key_invalidation_deletes_the_key(backend, poll):
    cache = CountingQuestionsCache(backend=backend)
    question = poll["question"]
    warm(cache, ("Question", question.pk))
    backend.inner.set_many({cache.COUNT_KEY: b"1"})

    assert cache.update_instance("Question", question.pk) == []  # unchanged: key kept
    assert backend.inner.get_many([cache.COUNT_KEY]) == {cache.COUNT_KEY: b"1"}

    Question._base_manager.filter(pk=question.pk).update(question_text="Changed?")
    assert cache.update_instance("Question", question.pk) == []
    assert backend.inner.get_many([cache.COUNT_KEY]) == {}


class GroupsNotCached(PollCache):
    group_default_serializer = None
    group_default_loader = None
    group_default_invalidator = None


class GroupsInvalidateUsers(PollCache):
    """Groups are not cached, but a Group change refreshes its members (cascade only)."""

    group_default_serializer = None

    def group_default_loader(self, pk):
        return Group.objects.filter(pk=pk).first()

    def group_default_invalidator(self, obj):
        return [("User", pk, False) for pk in obj.user_set.values_list("pk", flat=True)]


def test_known_but_uncached_model_updates_nothing(backend):
    group = Group.objects.create(name="staff")
    assert GroupsNotCached(backend=backend).update_instance("Group", group.pk) == []
    assert backend.calls == {}


def test_uncached_model_may_still_cascade(backend, poll):
    group = Group.objects.create(name="staff")
    group.user_set.add(poll["alice"])
    cache = GroupsInvalidateUsers(backend=backend)
    assert cache.update_instance("Group", group.pk) == [("User", poll["alice"].pk, "default")]


def test_unknown_model_is_refused(cache):
    with pytest.raises(UnknownModel, match="known models: choice, question, user"):
        cache.update_instance("Answer", 1)


class HalfDefined(PollCache):
    def group_default_serializer(self, obj):
        return {"id": obj.pk}


def test_half_defined_model_names_what_is_missing(backend):
    with pytest.raises(ImproperlyConfigured, match="group_default_loader"):
        HalfDefined(backend=backend).update_instance("Group", 1)


class BadInvalidator(PollCache):
    def question_default_invalidator(self, obj):
        return [("Choice", 1)]


def test_malformed_invalidator_entry_is_a_clear_error(backend, poll):
    with pytest.raises(TypeError, match=r"\(model_name, pk, immediate\)"):
        BadInvalidator(backend=backend).update_instance("Question", poll["question"].pk)


def test_disabled_cache_updates_nothing(backend, poll):
    cache = PollCache(backend=backend)
    with override_settings(USE_DRF_INSTANCE_CACHE=False):
        assert cache.update_instance("Choice", poll["redis"].pk) == []
        assert cache.forget_instance("Choice", poll["redis"].pk, poll["redis"]) == []
        cache.delete_all_versions("Choice", poll["redis"].pk)
    assert backend.calls == {}


class TwoVersions(PollCache):
    """A v2 API whose question entries omit the choices."""

    versions = ["default", "v2"]

    def question_v2_serializer(self, obj):
        if not obj:
            return None
        return {"id": obj.pk, "text": obj.question_text}

    question_v2_loader = PollCache.question_default_loader
    question_v2_invalidator = PollCache.question_default_invalidator

    def choice_v2_serializer(self, obj):
        return None if not obj else {"id": obj.pk}

    choice_v2_loader = PollCache.choice_default_loader
    choice_v2_invalidator = PollCache.choice_default_invalidator


def test_every_version_is_updated_and_deleted(backend, poll):
    cache = TwoVersions(backend=backend)
    question = poll["question"]
    default_key = cache.key_for("default", "Question", question.pk)
    v2_key = cache.key_for("v2", "Question", question.pk)
    assert default_key != v2_key

    cache.update_instance("Question", question.pk)
    assert set(backend.inner.get_many([default_key, v2_key])) == {default_key, v2_key}
    v2 = cache.get_instances([("Question", question.pk, None)], version="v2")
    assert v2[("Question", question.pk)][0] == {"id": question.pk, "text": "Best cache?"}

    follow = cache.update_instance("Choice", poll["redis"].pk)
    assert ("Question", question.pk, "default") in follow
    assert ("Question", question.pk, "v2") in follow

    cache.delete_all_versions("Question", question.pk)
    assert backend.inner.get_many([default_key, v2_key]) == {}


def test_only_the_given_version_is_updated(backend, poll):
    cache = TwoVersions(backend=backend)
    question = poll["question"]
    cache.update_instance("Question", question.pk, version="v2")
    keys = [cache.key_for(v, "Question", question.pk) for v in ("default", "v2")]
    assert list(backend.inner.get_many(keys)) == [keys[1]]


def test_oversized_update_drops_the_stale_entry(poll):
    backend = CountingBackend(LocMemBackend(f"core-{uuid.uuid4().hex}", max_value_size=300))
    cache = PollCache(backend=backend)
    question = poll["question"]
    warm(cache, ("Question", question.pk))
    assert cached(cache, backend, "Question", question.pk) is not None
    Question._base_manager.filter(pk=question.pk).update(question_text="?" * 200)

    cache.update_instance("Question", question.pk)

    assert cached(cache, backend, "Question", question.pk) is None  # not the old text


def test_unreachable_server_during_update_is_logged_not_raised(
    poll, caplog, django_assert_num_queries
):
    """Nothing is loaded or walked while the server is down; the refresh is deferred."""
    backend = RedisBackend(
        f"redis://127.0.0.1:{free_port()}/0", options={"socket_connect_timeout": 0.2}
    )
    cache = PollCache(backend=backend)
    with caplog.at_level(logging.WARNING, logger="drf_instcache"), django_assert_num_queries(0):
        assert cache.update_instance("Choice", poll["redis"].pk) == []
        assert cache.update_instance("Choice", poll["redis"].pk, update_only=True) == []
    (warning,) = [r.getMessage() for r in caplog.records]  # the outage, once
    assert "redis is unavailable" in warning
    assert unsettled.pending(cache.backend)  # replayed, keys first, once the server answers
    unsettled.forget_all()
    backend.close()


def test_users_created_by_helpers_are_cacheable(cache):
    user = User.objects.create_user("carol")
    result = cache.get_instances([("User", user.pk, None)])
    assert pks(result[("User", user.pk)][0], "votes") == []
