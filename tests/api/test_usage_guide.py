"""Every piece of code in the usage guide, verbatim except for the import path.

The guide (``usage.rst``, written for drf-cached-instances) shows a cache class, a
serializer, a viewset and signal hooks. They are pasted below between ``fmt: off``
markers, with ``drf_cached_instances`` replaced by ``drf_instcache`` and nothing else
changed, then exercised through DRF's APIClient.

Two things the guide leaves to the project, configured here by settings only:

* its viewset sets no ``cache_class``: ``DRF_INSTCACHE_CACHE_CLASS`` names ``MyCache``;
* its ``created = DateField(source='date_joined')`` predates DRF 3, which refuses to
  render a datetime with a DateField (for plain DRF just as for cached reads);
  ``REST_FRAMEWORK["DATE_FORMAT"] = None`` makes DRF pass the value through.
"""
# The guide's code is verbatim: repeated imports, an unused one, imports mid-module.
# ruff: noqa: E402, F401, F811, I001

import pytest

# fmt: off
from django.contrib.auth.models import User
from drf_instcache.cache import BaseCache

class MyCache(BaseCache):

    """Cache for my application."""

    def user_default_serializer(self, obj):
        """Convert a User to a cached instance representation."""
        if not obj:
            return None
        self.user_default_add_related_pks(obj)
        return dict((
            ('id', obj.id),
            ('username', obj.username),
            self.field_to_json('DateTime', 'date_joined', obj.date_joined),
        ))

    def user_default_loader(self, pk):
        """Load a User from the database."""
        try:
            obj = User.objects.get(pk=pk)
        except User.DoesNotExist:
            return None
        else:
            self.user_default_add_related_pks(obj)
            return obj

    def user_default_add_related_pks(self, obj):
        """Add related primary keys to a User instance."""
        if not hasattr(obj, '_votes_pks'):
            obj._votes_pks = list(obj.votes.values_list('pk', flat=True))

    def user_default_invalidator(self, obj):
        """Invalidate cached items when the User changes."""
        return []

from django.contrib.auth.models import User
from drf_instcache.mixins import CachedViewMixin
from rest_framework.viewsets import ModelViewSet
from rest_framework.serializers import DateField, ModelSerializer

class UserSerializer(ModelSerializer):

    """DRF serializer for Users."""

    created = DateField(source='date_joined', read_only=True)

    class Meta:
        model = User
        fields = ('id', 'username', 'created')

class UserViewSet(CachedViewMixin, ModelViewSet):

    """API endpoint that allows users to be viewed or edited."""

    queryset = User.objects.all()
    serializer_class = UserSerializer

from django.contrib.auth.models import User
from django.db.models.signals import post_delete, post_save, m2m_changed
from django.dispatch import receiver
# (the guide imports its cache class here with "from .cache import MyCache")

def update_cache_for_instance(model_name, instance_pk, instance):
    cache = MyCache()
    version = cache.default_version
    to_update = cache.update_instance(
        model_name, instance_pk, instance, version)
    for related_name, related_pk, related_version in to_update:
        update_cache_for_instance(
            related_name, related_pk, version=related_version)

@receiver(post_delete, sender=User, dispatch_uid='post_delete_update_cache')
def post_delete_user_update_cache(sender, instance, **kwargs):
    update_cache_for_instance('User', instance.pk, instance)

@receiver(post_save, sender=User, dispatch_uid='post_save_update_cache')
def post_save_user_update_cache(sender, instance, created, raw, **kwargs):
    if raw:
        return
    update_cache_for_instance('User', instance.pk, instance)
# fmt: on

# ---- end of the guide's code ----------------------------------------------------------

import logging
from collections.abc import Iterator

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from drf_instcache import signals
from drf_instcache import settings as instcache_settings
from example.polls.cache import PollCache
from tests.api.conftest import Polls

GUIDE_RECEIVERS = (
    (post_save, post_save_user_update_cache, "post_save_update_cache"),
    (post_delete, post_delete_user_update_cache, "post_delete_update_cache"),
)

# The @receiver lines connected the guide's hooks on import; keep them (and only them)
# connected while this module's tests run, so other modules never see them.
for _signal, _receiver, _uid in GUIDE_RECEIVERS:
    _signal.disconnect(sender=User, dispatch_uid=_uid)


class PlainUserViewSet(ModelViewSet):
    """The guide's viewset without the mixin: the reference answers."""

    queryset = User.objects.all()
    serializer_class = UserSerializer


router = SimpleRouter()
router.register("users", UserViewSet, basename="guide-user")
plain_router = SimpleRouter()
plain_router.register("users", PlainUserViewSet, basename="guide-plain-user")
urlpatterns = [path("plain/", include(plain_router.urls)), path("", include(router.urls))]

pytestmark = [
    pytest.mark.urls(__name__),
    # The guide's queryset is unordered: the paginator warns, with or without the cache.
    pytest.mark.filterwarnings("ignore::django.core.paginator.UnorderedObjectListWarning"),
]


@pytest.fixture(scope="module", autouse=True)
def only_the_guides_hooks() -> Iterator[None]:
    """The guide's app has MyCache alone: PollCache's hooks would share its user keys."""
    signals.disconnect(PollCache)
    for signal, receiver_function, uid in GUIDE_RECEIVERS:
        signal.connect(receiver_function, sender=User, dispatch_uid=uid)
    yield
    for signal, _, uid in GUIDE_RECEIVERS:
        signal.disconnect(sender=User, dispatch_uid=uid)
    signals.connect(PollCache)


@pytest.fixture
def guide_settings(settings) -> None:
    settings.DRF_INSTCACHE_CACHE_CLASS = f"{__name__}.MyCache"
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DATE_FORMAT": None}


def cached_username(pk) -> str | None:
    cache = MyCache()
    key = cache.key_for(cache.default_version, "User", pk)
    raw = instcache_settings.get_backend().get_many([key]).get(key)
    return None if raw is None else cache.codec.decode(raw)["username"]


def test_the_guides_cache_class_serializes_loads_and_invalidates(polls: Polls):
    user = polls.users[0]
    cache = MyCache()
    native, key, obj = cache.get_instances([("User", user.pk, None)])[("User", user.pk)]
    assert native == {"id": user.pk, "username": user.username, "date_joined": user.date_joined}
    assert key == cache.key_for("default", "User", user.pk)
    assert obj._votes_pks == list(user.votes.values_list("pk", flat=True))
    assert cache.user_default_loader(10**9) is None
    assert cache.user_default_invalidator(user) == []


def test_the_guides_viewset_lists_and_retrieves_like_plain_drf(
    api, polls: Polls, guide_settings, django_assert_num_queries
):
    plain = api.get("/plain/users/").json()
    assert plain["count"] == len(polls.users)
    assert api.get("/users/").json() == plain  # cold
    assert api.get("/users/").json() == plain  # warm
    for user in polls.users:
        expected = api.get(f"/plain/users/{user.pk}/").json()
        assert expected["created"] == user.date_joined.isoformat().replace("+00:00", "Z")
        with django_assert_num_queries(0):
            assert api.get(f"/users/{user.pk}/").json() == expected
    assert api.get("/users/0/").status_code == 404


def test_the_guides_hooks_keep_the_viewset_current(api, polls: Polls, guide_settings):
    user = polls.users[1]
    api.get(f"/users/{user.pk}/")

    response = api.patch(f"/users/{user.pk}/", {"username": "renamed"}, format="json")
    assert response.status_code == 200
    assert cached_username(user.pk) == "renamed"
    assert api.get(f"/users/{user.pk}/").json()["username"] == "renamed"

    created = api.post("/users/", {"username": "newcomer"}, format="json")
    assert created.status_code == 201
    assert cached_username(created.json()["id"]) == "newcomer"  # written by the save hook

    assert api.delete(f"/users/{user.pk}/").status_code == 204
    assert cached_username(user.pk) is None
    assert api.get(f"/users/{user.pk}/").status_code == 404
    assert api.get("/users/").json() == api.get("/plain/users/").json()


def test_without_a_cache_class_the_viewset_reads_the_database(api, polls: Polls, settings, caplog):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DATE_FORMAT": None}
    with caplog.at_level(logging.WARNING, logger="drf_instcache.drf.views"):
        assert api.get("/users/").json() == api.get("/plain/users/").json()
    assert "DRF_INSTCACHE_CACHE_CLASS" in caplog.text
    assert cached_username(polls.users[0].pk) is None


def test_drf3_refuses_the_guides_date_field_with_or_without_the_cache(api, polls: Polls, settings):
    settings.DRF_INSTCACHE_CACHE_CLASS = f"{__name__}.MyCache"
    user = polls.users[0]
    for url in (f"/plain/users/{user.pk}/", f"/users/{user.pk}/"):
        with pytest.raises(AssertionError, match="Expected a `date`, but got a `datetime`"):
            api.get(url)
