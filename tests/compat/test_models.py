"""The model look-alikes as drf-cached-instances code uses them (through the shim)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.test import TestCase

from drf_cached_instances.models import (
    CachedModel,
    CachedQueryset,
    PkOnlyQueryset,
    PkOnlyValuesList,
)
from drf_instcache.testing.isolation import InstcacheTestMixin
from tests.compat.cache import CompatCache


class TestCachedModel(InstcacheTestMixin, TestCase):
    def test_has_data(self) -> None:
        self.assertEqual("frank", CachedModel(User, {"username": "frank"}).username)

    def test_missing_data_is_attribute_error(self) -> None:
        cm = CachedModel(User, {"username": "frank"})
        self.assertRaises(AttributeError, getattr, cm, "email")


class TestCachedQueryset(InstcacheTestMixin, TestCase):
    def setUp(self) -> None:
        self.cache = CompatCache()
        assert self.cache.cache is not None
        self.cache.cache.clear()

    def create_users(self, number: int) -> list[int]:
        return [User.objects.create(username=f"user{n}").pk for n in range(number)]

    def test_get_existing_instance(self) -> None:
        user = User.objects.create(username="frank")
        cq = CachedQueryset(self.cache, User.objects.all())
        self.assertEqual("frank", cq.get(pk=user.pk).username)

    def test_get_nonexisting_instance(self) -> None:
        cq = CachedQueryset(self.cache, User.objects.all())
        self.assertRaises(User.DoesNotExist, cq.get, pk=666)

    def test_none(self) -> None:
        self.assertEqual([], list(CachedQueryset(self.cache, User.objects.all()).none().pks))

    def test_pks_by_queryset(self) -> None:
        self.create_users(10)
        cq = CachedQueryset(self.cache, User.objects.all())
        with self.assertNumQueries(1):
            self.assertEqual(10, len(cq.pks))

    def test_pks_by_pks(self) -> None:
        self.create_users(10)
        cq = CachedQueryset(self.cache, User.objects.all(), [1, 2, 3])
        with self.assertNumQueries(0):
            self.assertEqual([1, 2, 3], list(cq.pks))

    def test_count_by_queryset(self) -> None:
        self.create_users(10)
        cq = CachedQueryset(self.cache, User.objects.all())
        with self.assertNumQueries(1):
            self.assertEqual(10, cq.count())

    def test_count_by_pks(self) -> None:
        cq = CachedQueryset(self.cache, User.objects.all(), range(5))
        with self.assertNumQueries(0):
            self.assertEqual(5, cq.count())

    def test_get_slice_by_queryset(self) -> None:
        self.create_users(10)
        cq = CachedQueryset(self.cache, User.objects.all())
        with self.assertNumQueries(0):
            users = cq[0:5]
        with self.assertNumQueries(1):
            self.assertEqual(5, users.count())

    def test_get_slice_by_pks(self) -> None:
        cq = CachedQueryset(self.cache, User.objects.all(), range(5))
        with self.assertNumQueries(0):
            self.assertEqual(5, cq[0:5].count())

    def test_iteration_reads_every_instance_in_order(self) -> None:
        pks = self.create_users(3)
        names = [user.username for user in CachedQueryset(self.cache, User.objects.order_by("pk"))]
        self.assertEqual(["user0", "user1", "user2"], names)
        with self.assertNumQueries(1):  # the primary keys; the users come from the cache
            again = [u.pk for u in CachedQueryset(self.cache, User.objects.order_by("pk"))]
        self.assertEqual(pks, again)

    def test_the_01_name_of_pk_only_querysets(self) -> None:
        self.assertIs(PkOnlyQueryset, PkOnlyValuesList)
