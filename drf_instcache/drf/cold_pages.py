"""A cold page read from its rows, as plain DRF reads them, with its entries leased first.

The usual fast list asks the database for the page's keys, reads their entries, then
loads the missing rows by key: one query more than plain DRF, which a page that mostly
misses pays for nothing. When the last read of a plan's pages was cold and this process
has seen the requested page before, the entries of the keys it held then are read and
the empty ones leased (one round trip); the paginator then loads the page's rows as in
plain DRF (count, rows, prefetches), and the misses are rendered from those rows and
stored over the leases.

Why that is safe: the rows are read after the leases were taken, so a write that
commits after the rows were read deletes the lease and the fill is refused, as on the
usual path. A row that joined the page since it was seen holds no lease of this read:
it is rendered and not stored. A lease on a key that left the page is released. When
the read finds most entries present, the page went warm: the usual path runs, with
what was read and leased.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from rest_framework.pagination import LimitOffsetPagination, PageNumberPagination

from drf_instcache.backends.base import supports_leases
from drf_instcache.core import counters as stats
from drf_instcache.core import transactions
from drf_instcache.core.identity import serial
from drf_instcache.core.store import Claim, Store
from drf_instcache.drf import paging
from drf_instcache.exceptions import BackendUnavailable
from drf_instcache.fastpath import fetch
from drf_instcache.fastpath.fastjson import encode_representation
from drf_instcache.fastpath.plans import Render, RenderedPlan

__all__ = ["ColdPage", "encode_rows", "prepare"]

_SIZE = 1024
_seen: dict[tuple[int, int, bytes, tuple[int, int]], list[str]] = {}
"""The pks each remembered page held when this process last listed it, by backend, plan,
query and window (bounded; a new backend, as after new settings, remembers nothing)."""


def encode_rows(view: Any, objects: list[Any]) -> dict[str, bytes]:
    """The view serializer's JSON of each row, by pk (one serializer for the batch)."""
    if not objects:
        return {}
    if len(objects) == 1:  # a retrieve: the serializer DRF's own would build
        serializer = view.get_serializer(objects[0])
    else:
        serializer = view.get_serializer(objects, many=True).child
    encode, represent = encode_representation, serializer.to_representation
    return {str(obj.pk): encode(represent(obj)) for obj in objects}


@dataclass
class ColdPage:
    """One cold list request that may be read from its rows: the page's identity in this
    process, and the pks it held when last listed (None: not seen yet)."""

    core: Any
    plan: RenderedPlan
    store: Store
    seen_as: tuple[int, int, bytes, tuple[int, int]]
    guessed: list[str] | None

    def remember(self, pks: list[Any]) -> None:
        if len(_seen) >= _SIZE:
            _seen.clear()
        _seen[self.seen_as] = [str(pk) for pk in pks]

    def read(
        self, view: Any, queryset: QuerySet, render: Render
    ) -> list[Any] | fetch.Preread | None:
        """The page's JSON chunks read from its rows; or, when the page went warm, what
        the read found and leased (for the usual path); None when there is no guess."""
        if not self.guessed:
            return None
        plan, store = self.plan, self.store
        keys = fetch.read_ahead_keys(plan, self.guessed)
        store.settle()
        try:
            found, claimed = store.read(list(keys), page_scope(plan))
        except BackendUnavailable as error:
            fetch.warn_unavailable("read", error)
            rows = self._rows(view, queryset, {})
            stats.incr("fallbacks", len(rows), model=plan.model_name)
            return list(encode_rows(view, rows).values())
        if claimed is None or 2 * len(found) > len(keys):
            return fetch.Preread(keys, found, claimed)
        rows = self._rows(view, queryset, claimed)
        return self._fill(view, keys, rows, found, claimed, render)

    def _rows(self, view: Any, queryset: QuerySet, claimed: dict[str, bytes]) -> list[Any]:
        """The paginator's rows, as plain DRF loads them; leases released if it raises."""
        try:
            rows = view.paginate_queryset(queryset)
        except BaseException:
            Claim(self.store, True, leases=claimed).write_back({}, list(claimed))
            raise
        self.remember([obj.pk for obj in rows])
        return list(rows)

    def _fill(
        self,
        view: Any,
        keys: dict[str, str],
        rows: list[Any],
        found: dict[str, bytes],
        claimed: dict[str, bytes],
        render: Render,
    ) -> list[Any]:
        plan = self.plan
        page = {str(obj.pk): obj for obj in rows}
        chunks: dict[str, Any] = {}
        missing: list[Any] = []
        joined: list[str] = []
        for pk, obj in page.items():
            key = plan.prefix + pk
            raw = found.get(key)
            payload = None if raw is None else plan.payload(raw)
            if payload is not None:
                chunks[pk] = payload
            elif key in claimed:
                missing.append(obj)
            else:  # joined the page since, or leased by another reader: not ours to fill
                joined.append(pk)
        if joined:  # the usual read-through for them: lease, load by pk, store
            chunks.update(fetch.fetch(self.core, plan, joined, "", render))
            missing += [page[pk] for pk in joined if pk not in chunks]  # gone since: shown
        rendered = encode_rows(view, missing)
        stats.incr("hits", len(chunks), model=plan.model_name)
        stats.incr("misses", len(missing), model=plan.model_name)
        stats.incr("loaded", len(rendered))
        stamp = plan.stamp
        filled = {
            plan.prefix + pk: stamp + body
            for pk, body in rendered.items()
            if plan.prefix + pk in claimed
        }  # (a row gone since the usual read is shown as loaded, not stored)
        left = [key for key in claimed if keys[key] not in page]
        Claim(self.store, True, leases=claimed).write_back(filled, left)
        chunks.update(rendered)
        return [chunks[pk] for pk in page]


def page_scope(plan: RenderedPlan) -> str:
    """The scope :meth:`Store.read` remembers a page read's coldness under."""
    return f"{plan.base}:True"


def prepare(
    view: Any, request: Any, core: Any, plan: RenderedPlan, queryset: QuerySet
) -> ColdPage | None:
    """A :class:`ColdPage` for this list request, or None when it must take the usual
    path: a warm plan, a cursor or no paginator, a plan whose keys vary per request, no
    leases, uncommitted writes, rows a filter backend reshaped (annotations, deferred
    fields: entries are rendered from ``get_queryset()``'s rows), a query that cannot be
    pickled."""
    backend = core.backend
    paginator = view.paginator
    if (
        backend is None
        or plan.variants is not None
        or not isinstance(paginator, PageNumberPagination | LimitOffsetPagination)
        or not supports_leases(backend)
    ):
        return None
    store = Store(backend, core.timeout, fetch.warn_unavailable)
    # A warm plan (the common case) leaves after one dict lookup.
    if not store.last_read_cold(page_scope(plan)) or store.lease_policy() is None:
        return None
    if transactions.dirty():
        return None
    window = paging.expected_window(paginator, request)
    if window is None or not _same_rows(queryset, view.get_queryset()):
        return None
    try:
        state = pickle.dumps(
            (queryset.db, timezone.get_current_timezone(), queryset.query),
            protocol=pickle.HIGHEST_PROTOCOL,
        )
    except Exception:  # unpicklable values in the query: no identity to remember it by
        return None
    seen_as = (serial(backend), serial(plan), state, window)
    return ColdPage(core, plan, store, seen_as, _seen.get(seen_as))


def _same_rows(queryset: Any, base: Any) -> bool:
    """Whether ``queryset`` loads rows as ``get_queryset()`` does (filters may differ)."""
    if not isinstance(base, QuerySet) or base.model is not queryset.model:
        return False
    query, base_query = queryset.query, base.query
    return (
        query.select_related == base_query.select_related
        and query.deferred_loading == base_query.deferred_loading
        and query.annotations == base_query.annotations
        and query.extra == base_query.extra
        and not query.values_select
        and queryset._iterable_class is base._iterable_class
        and queryset._prefetch_related_lookups == base._prefetch_related_lookups  # type: ignore[attr-defined]
    )
