"""Maintenance operations behind ``manage.py instcache``: warm, clear, verify, inspect.

Each works on :class:`~drf_instcache.discovery.Target` objects (a cache class and a
model) and walks the model's table by primary key in batches, so memory stays flat and
a batch costs a constant number of queries and round trips, whatever the table size.
They talk to the cache only through the cache class and the Backend protocol, so they
work on every backend.

Entries of rows deleted behind the cache's back (no signal) cannot be found by walking
the table: no backend can list keys portably. They expire with the backend's TIMEOUT;
``clear`` without a model removes them at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Model

from drf_instcache import settings as instcache_settings
from drf_instcache.backends.base import Backend, LeasingBackend, supports_leases
from drf_instcache.core import counters, shared_stats
from drf_instcache.core.leases import is_lease, is_marker
from drf_instcache.core.strategy import BaseCache
from drf_instcache.exceptions import (
    BackendUnavailable,
    CorruptValue,
    ImproperlyConfigured,
    ValueTooLarge,
)
from drf_instcache.ops.discovery import Target

DEFAULT_BATCH_SIZE = 500

Progress = Callable[[int], None]
"""Called with the number of rows each batch covered."""


def _no_progress(rows: int) -> None:
    pass


# -- shared helpers ----------------------------------------------------------------------
def backend_of(cache: BaseCache) -> Backend:
    """The cache's backend, or a clear error when caching is switched off."""
    backend = cache.backend
    if backend is None:
        raise ImproperlyConfigured(
            "caching is disabled (USE_DRF_INSTANCE_CACHE = False): nothing to act on"
        )
    return backend


def row_count(model: type[Model]) -> int:
    """Rows of the model's table (for progress bars)."""
    return model._default_manager.count()


def pk_batches(model: type[Model], batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[list[Any]]:
    """Every primary key of the table, ascending, ``batch_size`` at a time.

    Keyset pagination (``pk > last``) keeps each query cheap on a large table, unlike
    ``OFFSET``, and rows added during the walk are picked up rather than skipped.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size!r}")
    pks = model._default_manager.order_by("pk").values_list("pk", flat=True)
    last = None
    while True:
        page = pks if last is None else pks.filter(pk__gt=last)
        batch = list(page[:batch_size])
        if not batch:
            return
        yield batch
        last = batch[-1]


def load_rows(cache: BaseCache, model_name: str, version: str, pks: Sequence[Any]) -> dict:
    """Load rows as the cache class does: ``{pk: obj or None}`` for each requested pk.

    Uses ``loader_many`` when defined (matched by cache key, as the core does), else the
    per-pk loader; a loader raising ``DoesNotExist`` means the row is gone.
    """
    loader_many = cache.model_function(model_name, version, "loader_many")
    if loader_many is not None:
        loaded = loader_many(list(pks)) or {}
        by_key = {cache.key_for(version, model_name, pk): obj for pk, obj in loaded.items()}
        return {pk: by_key.get(cache.key_for(version, model_name, pk)) for pk in pks}
    loader = cache.model_function(model_name, version, "loader")
    rows: dict[Any, Any] = {}
    for pk in pks:
        try:
            rows[pk] = loader(pk) if loader is not None else None
        except ObjectDoesNotExist:
            rows[pk] = None
    return rows


def fresh_entry(
    cache: BaseCache, model_name: str, version: str, obj: Any
) -> tuple[bytes, dict[str, Any]] | None:
    """What the cache should hold for ``obj``: its bytes and their decoded form.

    None when the row should have no entry (gone, or its serializer returns nothing).
    The decoded form is compared, since that is what a cache hit hands out.
    """
    if obj is None:
        return None
    serializer = cache.model_function(model_name, version, "serializer")
    native = serializer(obj) if serializer is not None else None
    if not native:
        return None
    encoded = cache.encode_entry(model_name, version, native)
    return encoded, cache.decode_entry(model_name, version, encoded)


# -- warm --------------------------------------------------------------------------------
@dataclass
class WarmReport:
    """What warming one target in one version did."""

    target: Target
    version: str
    rows: int = 0
    already_cached: int = 0
    stored: int = 0
    not_cacheable: int = 0
    """Rows the cache class gives no entry (serializer returned nothing)."""


def warm(
    target: Target,
    batch_size: int = DEFAULT_BATCH_SIZE,
    versions: Sequence[str] | None = None,
    progress: Progress = _no_progress,
) -> list[WarmReport]:
    """Fill the cache with every row of ``target``'s model, batch by batch.

    Each batch is one ``get_instances`` call: one read for all its keys, the misses
    loaded with the model's ``loader_many`` and written back with one write. Entries
    already cached are left as they are (``verify`` checks them). ``versions`` defaults
    to the versions the target is served in. Raises :class:`BackendUnavailable` when the
    backend fails, rather than silently warming nothing.
    """
    cache = target.cache()
    backend_of(cache)
    reports = []
    for version in versions or target.versions:
        report = WarmReport(target, version)
        for batch in pk_batches(target.model, batch_size):
            specs = [(target.model_name, pk, None) for pk in batch]
            with counters.tracking() as counts:
                found = cache.get_instances(specs, version=version)
            if counts["errors"]:
                raise BackendUnavailable(
                    f"the cache backend failed while warming {target}; see the log"
                )
            report.rows += len(batch)
            report.already_cached += counts["hits"]
            report.stored += counts["stored"]
            report.not_cacheable += len(batch) - len(found)
            progress(len(batch))
        reports.append(report)
    return reports


# -- clear -------------------------------------------------------------------------------
def clear_namespace() -> None:
    """Delete every entry of the configured namespace; the shared statistics survive."""
    if not instcache_settings.enabled():
        raise ImproperlyConfigured(
            "caching is disabled (USE_DRF_INSTANCE_CACHE = False): nothing to clear"
        )
    backend = instcache_settings.get_backend()
    with shared_stats.kept_across_clear(backend):
        backend.clear()


def clear(
    target: Target, batch_size: int = DEFAULT_BATCH_SIZE, progress: Progress = _no_progress
) -> int:
    """Delete the entries of every row of ``target``'s model, in every cached version.

    Returns how many keys were deleted (present or not: backends do not say).
    """
    cache = target.cache()
    backend = backend_of(cache)
    versions = target.cached_versions()
    deleted = 0
    for batch in pk_batches(target.model, batch_size):
        keys = [cache.key_for(v, target.model_name, pk) for v in versions for pk in batch]
        backend.delete_many(keys)
        deleted += len(keys)
        progress(len(batch))
    return deleted


# -- verify ------------------------------------------------------------------------------
STALE = "stale"
"""The entry differs from a fresh serialization of its row."""
CORRUPT = "corrupt"
"""The entry cannot be decoded (garbage, truncated, or another codec's value)."""
UNEXPECTED = "unexpected"
"""There is an entry, but the row has none to give (its loader or serializer says so)."""


@dataclass(frozen=True)
class Difference:
    """One cached entry that does not match its row."""

    target: Target
    version: str
    pk: Any
    key: str
    kind: str
    fields: tuple[str, ...] = ()
    """For ``stale`` entries: the fields whose values differ, are missing or extra."""
    detail: str = ""

    def __str__(self) -> str:
        what = f"fields {', '.join(self.fields)}" if self.fields else self.detail
        return f"{self.kind}: {self.key} ({self.target.label} pk={self.pk}): {what}"


@dataclass
class VerifyReport:
    """The outcome of verifying one target."""

    target: Target
    rows: int = 0
    entries: int = 0
    """Cached entries compared (rows not cached are not differences)."""
    differences: list[Difference] = field(default_factory=list)
    fixed: int = 0


_ABSENT = object()


def differing_fields(stored: dict[str, Any], expected: dict[str, Any]) -> tuple[str, ...]:
    """Names of the fields that differ between two representations (union of keys)."""
    names = list(dict.fromkeys([*expected, *stored]))
    return tuple(name for name in names if stored.get(name, _ABSENT) != expected.get(name, _ABSENT))


def verify(
    target: Target,
    fix: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress = _no_progress,
) -> VerifyReport:
    """Compare each cached entry of ``target`` with a fresh serialization of its row.

    For every batch and cached version: one read of the batch's keys, one batch load of
    the rows that have an entry. ``fix=True`` rewrites stale and corrupt entries and
    deletes unexpected ones (one write and one delete per batch). A row written while
    the check runs may be reported once; run it again to confirm.
    """
    cache = target.cache()
    backend = backend_of(cache)
    report = VerifyReport(target)
    versions = target.cached_versions()
    name = target.model_name
    for batch in pk_batches(target.model, batch_size):
        report.rows += len(batch)
        for version in versions:
            keys = {cache.key_for(version, name, pk): pk for pk in batch}
            raw = backend.get_many(list(keys))
            if not raw:
                continue
            # Markers are not entries: a lease (a fill in progress) or "too large".
            entries = {key: value for key, value in raw.items() if not is_marker(value)}
            report.entries += len(entries)
            rows = load_rows(cache, name, version, [keys[key] for key in entries])
            to_set: dict[str, tuple[bytes, bytes]] = {}
            to_delete: list[str] = []
            for key, value in entries.items():
                pk = keys[key]
                difference, fresh = _compare(cache, target, version, pk, key, value, rows)
                if difference is None:
                    continue
                report.differences.append(difference)
                if fresh is None:
                    to_delete.append(key)
                else:
                    to_set[key] = (value, fresh)
            if fix:
                report.fixed += _repair(backend, to_set, to_delete, cache.timeout)
        progress(len(batch))
    return report


def _repair(
    backend: Backend,
    to_set: dict[str, tuple[bytes, bytes]],
    to_delete: list[str],
    timeout: float | None,
) -> int:
    """Replace wrong entries (``{key: (wrong, fresh)}``), delete unwanted ones.

    On a backend with conditional writes an entry is replaced only if it still holds
    the wrong value: a write committed meanwhile (which replaces the key) wins over
    this repair, which may be based on the row as read a moment earlier. An entry
    whose fresh value is too large for the server is deleted: the old value is wrong.
    Returns how many entries were repaired.
    """
    backend.delete_many(to_delete)
    repaired = len(to_delete)
    try:
        if supports_leases(backend):
            leasing = cast(LeasingBackend, backend)
            repaired += len(leasing.compare_and_set_many(to_set, timeout=timeout))
        else:
            backend.set_many({key: new for key, (_old, new) in to_set.items()}, timeout=timeout)
            repaired += len(to_set)
    except ValueTooLarge as error:
        backend.delete_many(error.keys)
        repaired += len(to_set)
    return repaired


def _compare(
    cache: BaseCache,
    target: Target,
    version: str,
    pk: Any,
    key: str,
    value: bytes,
    rows: dict[Any, Any],
) -> tuple[Difference | None, bytes | None]:
    """The difference between one entry and its row (None if equal), and the fresh bytes."""
    fresh = fresh_entry(cache, target.model_name, version, rows.get(pk))
    fresh_bytes = fresh[0] if fresh is not None else None
    try:
        stored = cache.decode_entry(target.model_name, version, value)
    except CorruptValue as error:
        return Difference(target, version, pk, key, CORRUPT, detail=str(error)), fresh_bytes
    if fresh is None:
        detail = "the row gives no entry (gone, or its serializer returns nothing)"
        return Difference(target, version, pk, key, UNEXPECTED, detail=detail), None
    changed = differing_fields(stored, fresh[1])
    if not changed:
        return None, fresh_bytes
    return Difference(target, version, pk, key, STALE, fields=changed), fresh_bytes


# -- inspect -----------------------------------------------------------------------------
@dataclass
class Inspection:
    """One instance's entry in one version, as stored and as its row would give it."""

    version: str
    key: str
    server_key: str | None
    """The key actually sent to the server (namespace prefix, safe-key rule applied)."""
    size: int | None
    """Stored bytes, or None when not cached."""
    stored: dict[str, Any] | None = None
    """The decoded entry (``"name:Type"`` fields as stored), or None."""
    native: dict[str, Any] | None = None
    """The entry with its typed fields converted, as views receive it."""
    error: str = ""
    """Why the stored bytes could not be decoded, if they could not."""
    expected: dict[str, Any] | None = None
    """A fresh serialization of the row (decoded), or None when it gives no entry."""

    @property
    def cached(self) -> bool:
        """Whether the backend holds an entry for this key."""
        return self.size is not None

    @property
    def matches(self) -> bool:
        """Whether the stored entry equals a fresh serialization of its row."""
        return self.cached and not self.error and self.stored == self.expected


def server_key(backend: Any, key: str) -> str | None:
    """The server-side key of ``key`` when the backend (or the one it wraps) says."""
    for candidate in (backend, getattr(backend, "backend", None)):
        method = getattr(candidate, "server_key", None)
        if callable(method):
            return str(method(key))
    return None


def inspect(target: Target, pk: Any, version: str | None = None) -> list[Inspection]:
    """The key(s) and decoded entries of one instance, in ``version`` or every version."""
    cache = target.cache()
    backend = backend_of(cache)
    versions = [cache.resolve_version(version)] if version else target.cached_versions()
    keys = {v: cache.key_for(v, target.model_name, pk) for v in versions}
    raw = backend.get_many(list(keys.values()))
    found = []
    for each, key in keys.items():
        value = raw.get(key)
        rows = load_rows(cache, target.model_name, each, [pk])
        fresh = fresh_entry(cache, target.model_name, each, rows.get(pk))
        inspection = Inspection(
            version=each,
            key=key,
            server_key=server_key(backend, key),
            size=None if value is None else len(value),
            expected=fresh[1] if fresh is not None else None,
        )
        if value is not None and is_marker(value):
            inspection.error = "a marker, not an entry: " + (
                "a fill in progress (lease)" if is_lease(value) else "too large to cache"
            )
        elif value is not None:
            try:
                inspection.stored = cache.decode_entry(target.model_name, each, value)
                inspection.native = cache.from_cached(inspection.stored)
            except CorruptValue as error:
                inspection.error = str(error)
        found.append(inspection)
    return found
