"""drf-cached-instances' cache behaviour, exercised through the ``drf_cached_instances`` shim.

Our own versions of the original project's cache tests: the assertions are about what
callers see (representations, return values, query counts, which entries survive), not
about key strings, stored layouts or mock call lists, which differ by design.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import Group, User
from django.test import TestCase, override_settings

from drf_cached_instances.models import PkOnlyQueryset
from drf_instcache.testing.isolation import InstcacheTestMixin
from example.polls.models import Choice, Question
from tests.compat.cache import USER_COUNT_KEY, CompatCache

JOINED = dt.datetime(2014, 9, 22, 9, 11, tzinfo=dt.UTC)


class SharedCacheTests:
    """What holds whether the cache is on, has two versions, or is off."""

    cache: CompatCache

    def test_get_instances_no_specs(self) -> None:
        self.assertEqual({}, self.cache.get_instances([]))

    def forget_writes(self) -> None:
        """Drop what the example app's signal hooks cached for rows a test just made.

        Its PollCache shares these keys, and with InstcacheTestMixin a test's writes
        refresh them at once, as committed writes do.
        """
        if self.cache.cache is not None:
            self.cache.cache.clear()

    def test_get_instances_cache_miss_no_obj(self) -> None:
        user = User.objects.create(username="the_user", date_joined=JOINED)
        self.forget_writes()
        with self.assertNumQueries(2):  # the user, then its votes
            instances = self.cache.get_instances([("User", user.pk, None)])
        native, _key, obj = instances[("User", user.pk)]
        self.assertEqual(user, obj)
        votes = native.pop("votes")
        self.assertEqual({"id": user.pk, "username": "the_user", "date_joined": JOINED}, native)
        self.assertIsInstance(votes, PkOnlyQueryset)
        self.assertEqual([], list(votes.pks))

    def test_get_instances_cache_miss_with_obj(self) -> None:
        pk = User.objects.create(username="the_user", date_joined=JOINED).pk
        user = self.cache.user_default_loader(pk)
        with self.assertNumQueries(0):
            instances = self.cache.get_instances([("User", pk, user)])
        native = instances[("User", pk)][0]
        self.assertEqual(("the_user", JOINED), (native["username"], native["date_joined"]))

    def test_get_instances_invalid_pk(self) -> None:
        self.assertFalse(User.objects.filter(pk=666).exists())
        self.assertEqual({}, self.cache.get_instances([("User", 666, None)]))

    def test_update_instance_invalid_model(self) -> None:
        self.assertRaises(AttributeError, self.cache.update_instance, "Foo", 1)

    def test_update_instance_unhandled_model(self) -> None:
        self.assertEqual([], self.cache.update_instance("Bar", 666))


@override_settings(USE_DRF_INSTANCE_CACHE=True)
class TestCache(SharedCacheTests, InstcacheTestMixin, TestCase):
    """The cache is on."""

    def setUp(self) -> None:
        self.cache = CompatCache()
        self.handle = self.cache.cache
        assert self.handle is not None
        self.handle.clear()

    def test_cache_is_available(self) -> None:
        self.assertIsNotNone(self.cache.cache)

    def test_get_instance_cache_hit(self) -> None:
        user = User.objects.create(username="cached", date_joined=JOINED)
        first = self.cache.get_instances([("User", user.pk, None)])
        with self.assertNumQueries(0):
            second = self.cache.get_instances([("User", user.pk, None)])
        self.assertEqual(first[("User", user.pk)][0]["username"], "cached")
        self.assertEqual(second[("User", user.pk)][0]["username"], "cached")
        self.assertEqual(first[("User", user.pk)][1], second[("User", user.pk)][1])

    def test_update_instance_invalidator_only(self) -> None:
        user = User.objects.create(username="A user")
        group = Group.objects.create(name="g")
        group.user_set.add(user)
        self.assertEqual(
            [("User", user.pk, "default")], self.cache.update_instance("Group", group.pk)
        )

    def test_update_instance_deleted_model(self) -> None:
        key = self.cache.key_for("default", "User", 666)
        self.handle.set(key, "left over")
        self.assertEqual([], self.cache.update_instance("User", 666))
        self.assertIsNone(self.handle.get(key))

    def test_update_instance_cache_string(self) -> None:
        """An invalidator's raw key deletes the entry the application wrote under it."""
        user = User.objects.create(username="username")
        self.forget_writes()
        self.handle.set(USER_COUNT_KEY, 41)
        self.assertEqual(41, self.handle.get(USER_COUNT_KEY))
        self.assertEqual([], self.cache.update_instance("User", user.pk))
        self.assertIsNone(self.handle.get(USER_COUNT_KEY))

    def test_update_instance_no_changes(self) -> None:
        """An unchanged representation neither cascades nor runs the invalidator."""
        user = User.objects.create(username="username", date_joined=JOINED)
        self.cache.get_instances([("User", user.pk, None)])
        self.handle.set(USER_COUNT_KEY, 7)
        self.assertEqual([], self.cache.update_instance("User", user.pk, user))
        self.assertEqual(7, self.handle.get(USER_COUNT_KEY))

    def test_update_instance_with_loaded_instance(self) -> None:
        pk = User.objects.create(username="username").pk
        self.forget_writes()
        user = self.cache.user_default_loader(pk)
        self.handle.set(USER_COUNT_KEY, 1)
        self.assertEqual([], self.cache.update_instance("User", pk, user))
        self.assertIsNone(self.handle.get(USER_COUNT_KEY))
        with self.assertNumQueries(0):
            native = self.cache.get_instances([("User", pk, None)])[("User", pk)][0]
        self.assertEqual("username", native["username"])

    def test_delete_called_on_immediate_invalidate(self) -> None:
        user = User.objects.create(username="voter")
        question = Question.objects.create(question_text="Colour?", pub_date=JOINED)
        choice = Choice.objects.create(question=question, choice_text="Blue. No, Green!")
        choice.voters.add(user)
        self.cache.get_instances([("Question", question.pk, None)])
        question_key = self.cache.key_for("default", "Question", question.pk)
        self.assertIn(question_key, self._stored([question_key]))
        self.assertEqual(
            [("Question", question.pk, True), ("User", user.pk, False)],
            self.cache.choice_default_invalidator(choice),
        )
        self.assertEqual(
            [("Question", question.pk, "default"), ("User", user.pk, "default")],
            self.cache.update_instance("Choice", choice.pk),
        )
        self.assertNotIn(question_key, self._stored([question_key]))

    def test_update_instance_cache_miss_update_only(self) -> None:
        user = User.objects.create(username="voter")
        question = Question.objects.create(question_text="Colour?", pub_date=JOINED)
        choice = Choice.objects.create(question=question, choice_text="Blue")
        choice.voters.add(user)
        self.handle.clear()
        self.assertEqual([], self.cache.update_instance("Choice", choice.pk, update_only=True))

    def test_delete_all_versions_one_version(self) -> None:
        user = User.objects.create(username="u")
        self.cache.get_instances([("User", user.pk, None)])
        key = self.cache.key_for("default", "User", user.pk)
        self.assertTrue(self._stored([key]))
        self.cache.delete_all_versions("User", user.pk)
        self.assertFalse(self._stored([key]))

    def _stored(self, keys: list[str]) -> dict[str, object]:
        backend = self.cache.backend
        assert backend is not None
        return backend.get_many(keys)


class V2Cache(CompatCache):
    versions = ["default", "v2"]
    bar_v2_serializer = None
    bar_v2_loader = None
    bar_v2_invalidator = None
    user_v2_serializer = CompatCache.user_default_serializer
    user_v2_loader = CompatCache.user_default_loader
    user_v2_invalidator = CompatCache.user_default_invalidator


@override_settings(USE_DRF_INSTANCE_CACHE=True)
class TestVersionsCache(SharedCacheTests, InstcacheTestMixin, TestCase):
    """Two versions."""

    def setUp(self) -> None:
        self.cache = V2Cache()
        assert self.cache.cache is not None
        self.cache.cache.clear()

    def test_delete_all_versions_two_versions(self) -> None:
        user = User.objects.create(username="u")
        for version in self.cache.versions:
            self.cache.get_instances([("User", user.pk, None)], version=version)
        keys = [self.cache.key_for(v, "User", user.pk) for v in self.cache.versions]
        backend = self.cache.backend
        assert backend is not None
        self.assertEqual(2, len(backend.get_many(keys)))
        self.cache.delete_all_versions("User", user.pk)
        self.assertEqual({}, backend.get_many(keys))


@override_settings(USE_DRF_INSTANCE_CACHE=False)
class TestCacheDisabled(SharedCacheTests, InstcacheTestMixin, TestCase):
    """The cache is off: everything comes from the database."""

    def setUp(self) -> None:
        self.cache = CompatCache()

    def test_cache_is_none(self) -> None:
        self.assertIsNone(self.cache.cache)

    def test_invalidate_returns_none(self) -> None:
        with self.assertNumQueries(0):
            self.assertEqual([], self.cache.update_instance("User", 123))

    def test_delete_all_versions(self) -> None:
        self.cache.delete_all_versions("Model", 86)
