"""``CachedViewMixin``: DRF viewsets whose reads come from cached instances.

Add the mixin in front of a generic view or viewset::

    class UserViewSet(CachedViewMixin, ModelViewSet):
        queryset = User.objects.all()
        serializer_class = UserSerializer
        cache_class = MyCache

For ``GET`` and ``HEAD`` the filtered queryset is wrapped in a
:class:`~drf_instcache.models.CachedQueryset`: the database is asked only for primary
keys (and a count when paginated), the instances come from the cache. Everything that
decides *which* rows a request sees stays plain DRF on the real queryset: ``get_queryset``
(per-user filtering), the filter backends (ordering, search, django-filter) and the
paginator's slicing. Writes (``POST``, ``PUT``, ``PATCH``, ``DELETE``, any other method)
never see the wrapper, so serializers save real model instances.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from drf_instcache import settings as instcache_settings
from drf_instcache.cache import BaseCache
from drf_instcache.models import CachedQueryset

CACHED_METHODS = frozenset({"GET", "HEAD"})
"""Methods whose objects are read from the cache; every other method sees the database."""


class CachedViewMixin:
    """Serve ``list`` and ``retrieve`` from cached instances; keep writes on the database.

    ``cache_class`` is the :class:`~drf_instcache.cache.BaseCache` subclass that knows how
    to serialize this view's model; ``cache_version`` picks one of its ``versions``
    (``None``: its ``default_version``). With ``USE_DRF_INSTANCE_CACHE = False`` the view
    is plain DRF.
    """

    cache_class: type[BaseCache] = BaseCache
    cache_version: str | None = None

    def get_cache(self) -> BaseCache:
        """The cache strategy for this request (override to share or configure one)."""
        return self.cache_class()

    def reads_from_cache(self) -> bool:
        """True when this request's objects should come from the cache."""
        request = getattr(self, "request", None)
        return (
            request is not None
            and request.method in CACHED_METHODS
            and instcache_settings.enabled()
        )

    def filter_queryset(self, queryset: Any) -> Any:
        """Apply DRF's filter backends to the real queryset, then wrap it for cached reads.

        Wrapping after filtering keeps the backends working on a genuine ``QuerySet``
        (django-filter, search and ordering build SQL), and leaves only the primary-key
        query for the database. ``list`` paginates the result and ``get_object`` looks the
        object up in it, so both read through the cache with DRF's own code paths: a
        missing or malformed key is a 404 and ``check_object_permissions`` sees the
        cached instance.
        """
        queryset = super().filter_queryset(queryset)  # type: ignore[misc]
        if isinstance(queryset, QuerySet) and self.reads_from_cache():
            return CachedQueryset(self.get_cache(), queryset, version=self.cache_version)
        return queryset
