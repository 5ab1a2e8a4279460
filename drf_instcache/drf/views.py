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

With ``cache_rendered = True`` (the fast path) the view caches its own serializer's
*output* per instance, as JSON bytes, and assembles list bodies from them without running
the serializer on a hit; see :mod:`drf_instcache.fastview`.

A view that leaves ``cache_class`` unset (as the usage guide's example does) uses the
class named by ``DRF_INSTCACHE_CACHE_CLASS``; when no cache class knows the view's
model, the view serves from the database and logs a warning once, instead of failing.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import QuerySet

from drf_instcache import settings as instcache_settings
from drf_instcache.core import counters, shared_stats, transactions
from drf_instcache.core.classes import default_cache_class
from drf_instcache.core.lookalikes import CachedQueryset
from drf_instcache.core.strategy import BaseCache
from drf_instcache.drf.actions import FastAction
from drf_instcache.drf.fastviews import list_response, retrieve_response
from drf_instcache.exceptions import UnknownModel
from drf_instcache.fastpath.fastjson import with_splicing

logger = logging.getLogger(__name__)

CACHED_METHODS = frozenset({"GET", "HEAD"})
"""Methods whose objects are read from the cache; every other method sees the database."""


_warned: set[tuple[type, str]] = set()


class CachedViewMixin:
    """Serve ``list`` and ``retrieve`` from cached instances; keep writes on the database.

    ``cache_class`` is the :class:`~drf_instcache.cache.BaseCache` subclass that knows how
    to serialize this view's model (left as ``BaseCache``: the project's
    ``DRF_INSTCACHE_CACHE_CLASS``); ``cache_version`` picks one of its ``versions``
    (``None``: its ``default_version``). With ``USE_DRF_INSTANCE_CACHE = False`` the view
    is plain DRF.
    """

    cache_class: type[BaseCache] = BaseCache
    cache_version: str | None = None

    cache_rendered: bool = False
    """Fast path: cache this view serializer's output per instance, as JSON bytes."""
    rendered_version: str = "1"
    """Part of the rendered keys: change it to drop every entry of this serializer."""
    rendered_dependencies: dict[str, list[str]] | None = None
    """``{field: [ORM paths]}`` the serializer reads that its fields do not show."""
    rendered_context_key: Any = None
    """``def rendered_context_key(self, request) -> str``: declare it when the output
    depends on the request (``request.user``...); its value is part of the key."""
    cache_list_queries: bool | None = None
    """Fast path: cache the list's count and page keys too (None: the
    ``DRF_INSTCACHE_CACHE_LIST_QUERIES`` setting; False opts this view out)."""

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        """Count this request's cache lookups and report them when the response is ready.

        The counts go to a DEBUG log line (logger ``drf_instcache.stats``), to the
        ``X-Instcache: hits=.. misses=.. fallbacks=.. errors=..`` header when
        ``DRF_INSTCACHE_DEBUG_HEADERS = True``, and to the shared statistics when a
        flush is due.
        """
        with counters.tracking() as counts:
            response = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        return shared_stats.finish_request(request, response, counts)

    def serves_rendered(self) -> bool:
        """True when this request is answered from rendered entries (the fast path)."""
        return self.cache_rendered and self.reads_from_cache()

    # The fast path's actions; they exist only where DRF's list/retrieve do (see actions.py).
    list = FastAction(list_response)
    retrieve = FastAction(retrieve_response)

    def get_renderers(self) -> Any:
        """The view's renderers; on the fast path DRF's JSON one splices cached bytes."""
        renderers = super().get_renderers()  # type: ignore[misc]
        if not self.cache_rendered:
            return renderers
        return with_splicing(renderers)

    def get_cache(self) -> BaseCache:
        """The cache strategy for this request (override to share or configure one)."""
        cache_class = self.cache_class
        if cache_class is BaseCache:
            cache_class = default_cache_class()
        return cache_class()

    def reads_from_cache(self) -> bool:
        """True when this request's objects should come from the cache."""
        request = getattr(self, "request", None)
        return (
            request is not None
            and request.method in CACHED_METHODS
            and instcache_settings.enabled()
            and not transactions.dirty()
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
        if self.cache_rendered or not (isinstance(queryset, QuerySet) and self.reads_from_cache()):
            return queryset  # the fast path reads keys of the real queryset itself
        cache = self.get_cache()
        if not self._caches_model(cache, queryset.model):
            return queryset
        return CachedQueryset(cache, queryset, version=self.cache_version)

    def _caches_model(self, cache: BaseCache, model: type) -> bool:
        """Whether ``cache`` has a serializer for ``model``; warn once when it knows nothing.

        A model whose functions are set to None is deliberately uncached: no warning.
        """
        version = cache.resolve_version(self.cache_version)
        try:
            return cache.model_function(model.__name__, version, "serializer") is not None
        except UnknownModel:
            if (type(self), model.__name__) not in _warned:
                _warned.add((type(self), model.__name__))
                logger.warning(
                    "%s reads %s from the database: %s has no cache functions for it. "
                    "Set cache_class on the view, or DRF_INSTCACHE_CACHE_CLASS.",
                    type(self).__name__,
                    model.__name__,
                    type(cache).__name__,
                )
            return False
