"""The strategy core: what to cache for each model, and how to keep it correct.

A project subclasses :class:`BaseCache` and, for each model and API version, writes
three functions found by name (``{model}_{version}_{function}``):

* ``serializer(obj)`` turns an instance into a JSON-able dict (or None),
* ``loader(pk)`` loads the instance and what the serializer needs (or None),
* ``invalidator(obj)`` lists the cached entries that may change with it,

plus, optionally, ``loader_many(pks)`` loading many instances at once so a cold list
costs a constant number of queries. The core talks to storage only through the small
:class:`~drf_instcache.backends.base.Backend` protocol, one round trip per batch, and
never lets a cache failure fail a request: an unreachable server is logged and the data
comes from the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models

from drf_instcache import counters as stats
from drf_instcache import settings as instcache_settings
from drf_instcache import transactions, unsettled
from drf_instcache.backends.base import Backend, LeasingBackend, supports_leases
from drf_instcache.codecs import Codec, resolve_codec
from drf_instcache.exceptions import (
    BackendUnavailable,
    CorruptValue,
    ImproperlyConfigured,
    InstcacheError,
    UnknownModel,
    ValueTooLarge,
)
from drf_instcache.fields import TYPE_SEPARATOR, UnknownFieldType, get_converter, split_key
from drf_instcache.handle import CacheHandle
from drf_instcache.leases import (
    MARKER_HEAD,
    UNCACHEABLE,
    LeasePolicy,
    configured_policy,
    is_lease,
    is_marker,
    new_lease,
    wait_for_fills,
)

__all__ = [
    "BaseCache",
    "UnknownFieldType",
    "UnknownVersion",
    "load_many_with_related_pks",
]

logger = logging.getLogger("drf_instcache")

KEY_NAMESPACE = "dic"
"""First part of every instance key, so our keys are recognisable on a shared server."""

MODEL_FUNCTIONS = ("serializer", "loader", "invalidator")
OPTIONAL_MODEL_FUNCTIONS = ("loader_many",)

ObjectSpec = tuple[str, Any, Any]
InstanceMap = dict[tuple[str, Any], tuple[dict[str, Any], str, Any]]
Invalidation = tuple[str, Any, str]

STAMP_FIELD = "@entry"
"""Reserved field of every cached representation: the model and version it is for."""

_MISSING: Any = object()
_MAX_WARNED_KEYS = 1000
_too_large_warned: set[str] = set()
_corrupt_warned: set[str] = set()


class UnknownVersion(InstcacheError, LookupError):
    """A cache version was asked for that the cache class does not list in ``versions``."""


class BaseCache:
    """Base class of a project's cache strategy.

    ``backend`` defaults to the one built from ``DRF_INSTCACHE_BACKEND`` (looked up at
    each use, so ``override_settings`` swaps it); ``codec`` defaults to
    ``DRF_INSTCACHE_CODEC``. ``USE_DRF_INSTANCE_CACHE = False`` turns the backend off:
    everything then comes straight from the database.
    """

    versions: list[str] = ["default"]
    default_version: str = "default"
    timeout: float | None = None
    """Lifetime of written entries in seconds; None means the backend's TIMEOUT."""

    def __init__(self, backend: Backend | None = None, codec: str | Codec | None = None) -> None:
        if self.default_version not in self.versions:
            raise ImproperlyConfigured(
                f"{type(self).__name__}.default_version {self.default_version!r} is not in "
                f"its versions {self.versions!r}"
            )
        self._backend = backend
        self._codec = None if codec is None else resolve_codec(codec)
        transactions.install()

    # -- configuration ----------------------------------------------------------------
    @property
    def backend(self) -> Backend | None:
        """The storage backend, or None when caching is disabled by settings."""
        if not instcache_settings.enabled():
            return None
        if self._backend is not None:
            return self._backend
        return instcache_settings.get_backend()

    @property
    def codec(self) -> Codec:
        """The codec turning representations into bytes."""
        return self._codec if self._codec is not None else resolve_codec(None)

    @property
    def cache(self) -> CacheHandle | None:
        """Django-cache-style handle over the backend (drf-cached-instances' ``.cache``).

        None when caching is disabled (``USE_DRF_INSTANCE_CACHE = False``). Keys go to
        the backend unchanged, so an invalidator's raw key strings address entries
        written here. See :mod:`drf_instcache.handle`.
        """
        backend = self.backend
        if backend is None:
            return None
        handle = getattr(self, "_handle", None)
        if handle is None or handle.backend is not backend:
            handle = self._handle = CacheHandle(self, backend)
        return handle

    def resolve_version(self, version: str | None) -> str:
        """Return ``version`` (or the default one), checking that it is declared."""
        if version is None:
            return self.default_version
        if version not in self.versions:
            raise UnknownVersion(
                f"{type(self).__name__} has no cache version {version!r}; "
                f"versions: {', '.join(self.versions)}"
            )
        return version

    def key_for(self, version: str, model_name: str, pk: Any) -> str:
        """The cache key of one instance representation.

        Model names are case-insensitive ('User' and 'user' share entries). Keys need
        not be short or safe: every backend maps them through the safe-key rule.
        """
        return f"{KEY_NAMESPACE}:{version}:{model_name.lower()}:{pk}"

    # -- model functions --------------------------------------------------------------
    def model_function(
        self, model_name: str, version: str, func_name: str
    ) -> Callable[..., Any] | None:
        """Return ``{model}_{version}_{func_name}``, or None when the model is not cached.

        A model whose functions are set to None is "known but not cached": it may still
        take part in invalidation. A model with no functions at all raises
        :class:`UnknownModel`.
        """
        if func_name not in MODEL_FUNCTIONS + OPTIONAL_MODEL_FUNCTIONS:
            raise ValueError(
                f"unknown cache function {func_name!r}; expected one of "
                f"{', '.join(MODEL_FUNCTIONS + OPTIONAL_MODEL_FUNCTIONS)}"
            )
        version = version or self.default_version
        prefix = f"{model_name.lower()}_{version}_"
        function = getattr(self, prefix + func_name, _MISSING)
        if function is not _MISSING:
            return function
        defined = [name for name in MODEL_FUNCTIONS if hasattr(self, prefix + name)]
        if not defined:
            known = ", ".join(self._all_known_models()) or "none"
            raise UnknownModel(
                f"{type(self).__name__} has no cache functions for model {model_name!r} "
                f"(version {version!r}); known models: {known}. Define "
                f"{prefix}serializer/_loader/_invalidator, or set them to None."
            )
        if func_name in OPTIONAL_MODEL_FUNCTIONS:
            return None
        raise ImproperlyConfigured(
            f"{type(self).__name__} defines {', '.join(prefix + name for name in defined)} "
            f"but not {prefix}{func_name}; define it, or set it to None"
        )

    def known_models(self, version: str | None = None) -> list[str]:
        """Names (lower case) of the models that have a serializer in ``version``."""
        suffix = f"_{self.resolve_version(version)}_serializer"
        return sorted(
            name[: -len(suffix)]
            for name in dir(self)
            if name.endswith(suffix) and callable(getattr(self, name, None))
        )

    def _all_known_models(self) -> list[str]:
        """Every model with any cache function in any version (for error messages)."""
        suffixes = [f"_{v}_{f}" for v in self.versions for f in MODEL_FUNCTIONS]
        return sorted(
            {
                name[: -len(suffix)]
                for name in dir(self)
                for suffix in suffixes
                if name.endswith(suffix) and len(name) > len(suffix)
            }
        )

    # -- field conversion -------------------------------------------------------------
    def field_to_json(self, type_code: str, key: str, *args: Any, **kwargs: Any) -> tuple[str, Any]:
        """Return ``("key:Type", json_value)`` for a value JSON cannot hold as-is.

        A ``field_<type>_to_json`` method on the cache class wins over the registered
        converters, so a project can add or override types.
        """
        if not isinstance(key, str) or TYPE_SEPARATOR in key or not key:
            raise ValueError(f"field name {key!r} must be a non-empty str without ':'")
        method = getattr(self, f"field_{type_code.lower()}_to_json", None)
        if method is not None:
            value = method(*args, **kwargs)
        else:
            value = get_converter(type_code).to_json(self, *args, **kwargs)
        return f"{key}{TYPE_SEPARATOR}{type_code}", value

    def field_from_json(self, key_and_type: str, json_value: Any) -> tuple[str, Any]:
        """Return ``(key, python_value)`` for a ``"key:Type"`` entry of a representation."""
        key, type_code = split_key(key_and_type)
        method = getattr(self, f"field_{type_code.lower()}_from_json", None)
        if method is not None:
            return key, method(json_value)
        return key, get_converter(type_code).from_json(self, json_value)

    def from_cached(self, data: dict[str, Any]) -> dict[str, Any]:
        """A representation with its ``"key:Type"`` entries converted, order kept."""
        native: dict[str, Any] = {}
        for key, value in data.items():
            if TYPE_SEPARATOR in key:
                name, converted = self.field_from_json(key, value)
                native[name] = converted
            elif key != STAMP_FIELD:  # present when given a raw decoded entry
                native[key] = value
        return native

    # Built-in converters as methods: the extension points drf-cached-instances documented.
    # field_to_json finds them by name, so a subclass overriding one changes what is
    # cached; each delegates to the registered converter of its type code.
    def field_date_to_json(self, value: Any) -> Any:
        """A date (or a date string) as stored; None for None or a non-date string."""
        return get_converter("Date").to_json(self, value)

    def field_date_from_json(self, value: Any) -> Any:
        """The date stored by :meth:`field_date_to_json`."""
        return get_converter("Date").from_json(self, value)

    def field_datetime_to_json(self, value: Any) -> Any:
        """A datetime (or a datetime string) in UTC as stored; None if not a datetime."""
        return get_converter("DateTime").to_json(self, value)

    def field_datetime_from_json(self, value: Any) -> Any:
        """The aware UTC datetime stored by :meth:`field_datetime_to_json`."""
        return get_converter("DateTime").from_json(self, value)

    def field_timedelta_to_json(self, value: Any) -> Any:
        """A timedelta (or a duration string) as stored; None if not a duration."""
        return get_converter("TimeDelta").to_json(self, value)

    def field_timedelta_from_json(self, value: Any) -> Any:
        """The timedelta stored by :meth:`field_timedelta_to_json`."""
        return get_converter("TimeDelta").from_json(self, value)

    def field_pk_to_json(self, model: Any, pk: Any) -> Any:
        """A related object's model and primary key."""
        return get_converter("PK").to_json(self, model, pk)

    def field_pk_from_json(self, value: Any) -> Any:
        """A :class:`~drf_instcache.models.PkOnlyModel` for the stored primary key."""
        return get_converter("PK").from_json(self, value)

    def field_pklist_to_json(self, model: Any, pks: Any) -> Any:
        """Related objects' model and primary keys."""
        return get_converter("PKList").to_json(self, model, pks)

    def field_pklist_from_json(self, value: Any) -> Any:
        """A :class:`~drf_instcache.models.PkOnlyQueryset` for the stored primary keys."""
        return get_converter("PKList").from_json(self, value)

    # -- reading ----------------------------------------------------------------------
    def get_instances(
        self, object_specs: Iterable[ObjectSpec], version: str | None = None
    ) -> InstanceMap:
        """Return cached representations, loading and caching the missing ones.

        ``object_specs`` holds ``(model_name, pk, obj_or_None)``. The result maps
        ``(model_name, pk)`` to ``(native_dict, key, obj_or_None)``; instances that do
        not exist (or whose serializer returns nothing) are absent. One ``get_many``
        reads every key, one ``set_many`` writes every miss.
        """
        version = self.resolve_version(version)
        specs_by_key: dict[str, list[tuple[str, Any]]] = {}
        given: dict[str, Any] = {}
        model_of_key: dict[str, str] = {}
        serializers: dict[str, Callable[..., Any] | None] = {}
        for model_name, pk, obj in object_specs:
            name = model_name.lower()
            if name not in serializers:
                serializers[name] = self.model_function(model_name, version, "serializer")
            if serializers[name] is None:
                continue  # known but not cached: there is no representation to give
            key = self.key_for(version, model_name, pk)
            specs_by_key.setdefault(key, []).append((model_name, pk))
            model_of_key[key] = model_name
            if obj is not None:
                given[key] = obj
        if not specs_by_key:
            return {}

        backend = None if transactions.dirty() else self.backend
        codec = self.codec
        keys = list(specs_by_key)
        stamp_of = {name: self.entry_stamp(name, version) for name in set(model_of_key.values())}
        stamps = {key: stamp_of[model_of_key[key]] for key in keys}
        raw_values: dict[str, bytes] = {}
        writable = backend is not None
        if backend is not None:
            self._settle(backend)
            try:
                raw_values = backend.get_many(keys)
            except BackendUnavailable as error:
                writable = False  # a second call would only wait for the same timeout
                self._warn_unavailable("read", error)
                stats.incr_per_model("fallbacks", model_of_key.values())

        # Sort every key: a hit, empty, unreadable, being filled by another, or too large.
        stored: dict[str, dict[str, Any]] = {}
        empty: list[str] = []
        corrupt: dict[str, bytes] = {}
        leased_by_others: list[str] = []
        for key in keys:
            raw = raw_values.get(key)
            if raw is None:
                empty.append(key)
            elif raw[:1] == MARKER_HEAD and is_marker(raw):  # never an encoded entry
                if is_lease(raw):
                    leased_by_others.append(key)
                # else too large to cache: load it, store nothing
            else:
                try:
                    stored[key] = self._decode_entry(codec, raw, stamps[key])
                except CorruptValue as error:
                    self._warn_corrupt(key, error)
                    corrupt[key] = raw

        # Claim the keys to fill. With leases, a fill is stored only if no write (and no
        # other reader) took the key meanwhile; without, fills are plain writes.
        policy = self._lease_policy(backend) if writable else None
        leases: dict[str, bytes] = {}
        plain_fills: set[str] = set()
        if writable and backend is not None:
            if policy is not None:
                try:
                    leases = self._claim(backend, empty, corrupt, policy)  # type: ignore[arg-type]
                except BackendUnavailable as error:
                    writable = False
                    self._warn_unavailable("lease", error)
                leased_by_others += [k for k in [*empty, *corrupt] if k not in leases]
            else:
                plain_fills = {*empty, *corrupt}
        if leased_by_others and writable and backend is not None and policy is not None:
            stored.update(self._wait_for_fills(backend, leased_by_others, stamps, policy))

        missing = [key for key in keys if key not in stored]
        stats.incr_per_model("hits", (model_of_key[key] for key in stored))
        stats.incr_per_model("misses", (model_of_key[key] for key in missing))

        objects = dict(given)
        to_fill: dict[str, bytes] = {}
        gone: list[str] = []
        for model_name, miss_keys in self._group_by_model(missing, model_of_key).items():
            serializer = serializers[model_name.lower()]
            loaded = self._load(
                model_name,
                version,
                [(key, specs_by_key[key][0][1], given.get(key)) for key in miss_keys],
            )
            for key, obj in loaded.items():
                native = serializer(obj) if obj is not None and serializer is not None else None
                if obj is not None:
                    objects[key] = obj
                if not native:
                    gone.append(key)
                    continue
                encoded = self._encode_entry(codec, native, stamps[key])
                # Hand out exactly what a later hit will decode, so hits and misses agree.
                stored[key] = self._decode_entry(codec, encoded, stamps[key])
                to_fill[key] = encoded
        stats.incr("loaded", len(to_fill))

        if writable and backend is not None:
            transactions.unless_rolled_back(
                lambda: self._write_back(backend, to_fill, gone, leases, corrupt, plain_fills)
            )

        result: InstanceMap = {}
        for key, specs in specs_by_key.items():
            if key not in stored:
                continue
            native = self.from_cached(stored[key])
            for index, spec in enumerate(specs):
                result[spec] = (native if index == 0 else dict(native), key, objects.get(key))
        return result

    def _write_back(
        self,
        backend: Backend,
        to_fill: dict[str, bytes],
        gone: list[str],
        leases: dict[str, bytes],
        corrupt: dict[str, bytes],
        plain_fills: set[str],
    ) -> None:
        """Store what a read loaded: over our leases, or as plain writes without them."""
        # A claimed key whose row is gone must not keep others waiting on its lease.
        emptied = [key for key in gone if key in leases or key in corrupt]
        if emptied:
            self._delete(backend, emptied)
        if leases:
            self._fill(backend, {k: (leases[k], v) for k, v in to_fill.items() if k in leases})
        elif plain_fills:
            self._store(backend, {k: v for k, v in to_fill.items() if k in plain_fills})

    # -- entries ----------------------------------------------------------------------
    def entry_stamp(self, model_name: str, version: str) -> str:
        """What an entry records about itself: which model and version it represents.

        A value found under a key but stamped for another model or version (a custom
        ``key_for`` collision, another application on the same prefix) or not stamped at
        all (written by an older release) is treated as unreadable, not handed out.
        """
        return f"{model_name.lower()}:{version}"

    def encode_entry(self, model_name: str, version: str, native: dict[str, Any]) -> bytes:
        """The bytes cached for a serializer's representation of one instance."""
        return self._encode_entry(self.codec, native, self.entry_stamp(model_name, version))

    def decode_entry(self, model_name: str, version: str, raw: bytes) -> dict[str, Any]:
        """The representation in cached bytes, or :class:`CorruptValue` if unusable."""
        return self._decode_entry(self.codec, raw, self.entry_stamp(model_name, version))

    @staticmethod
    def _encode_entry(codec: Codec, native: dict[str, Any], stamp: str) -> bytes:
        if STAMP_FIELD in native:
            raise ValueError(
                f"cache serializers must not return the reserved field {STAMP_FIELD!r}"
            )
        return codec.encode({STAMP_FIELD: stamp, **native})

    @staticmethod
    def _decode_entry(codec: Codec, raw: bytes, stamp: str) -> dict[str, Any]:
        data = codec.decode(raw)
        if not isinstance(data, dict):
            raise CorruptValue(f"cached value is a {type(data).__name__}, not a dict")
        found = data.pop(STAMP_FIELD, None)
        if found != stamp:
            if found is None:
                raise CorruptValue("cached value has no entry stamp (an older format)")
            raise CorruptValue(f"cached value is an entry of {found!r}, not of {stamp!r}")
        return data

    # -- leases -----------------------------------------------------------------------
    @staticmethod
    def _lease_policy(backend: Backend | None) -> LeasePolicy | None:
        """The lease policy, when it is on and the backend can do conditional writes."""
        if backend is None or not supports_leases(backend):
            return None
        return configured_policy()

    @staticmethod
    def _claim(
        backend: LeasingBackend,
        empty: Sequence[str],
        corrupt: dict[str, bytes],
        policy: LeasePolicy,
    ) -> dict[str, bytes]:
        """Put a lease of ours on each key still empty (or still unreadable): key -> lease."""
        wanted = {key: new_lease() for key in [*empty, *corrupt]}
        won: list[str] = []
        if empty:
            won += backend.add_many({key: wanted[key] for key in empty}, timeout=policy.ttl)
        if corrupt:
            won += backend.compare_and_set_many(
                {key: (raw, wanted[key]) for key, raw in corrupt.items()}, timeout=policy.ttl
            )
        return {key: wanted[key] for key in won}

    def _wait_for_fills(
        self,
        backend: Backend,
        keys: Sequence[str],
        stamps: dict[str, str],
        policy: LeasePolicy,
    ) -> dict[str, dict[str, Any]]:
        """Wait (boundedly) for other readers' fills; return the representations that came."""
        stats.incr("waited", len(keys))
        try:
            found = wait_for_fills(backend.get_many, keys, policy.wait)
        except BackendUnavailable as error:
            self._warn_unavailable("read", error)
            return {}
        decoded: dict[str, dict[str, Any]] = {}
        for key, raw in found.items():
            if is_marker(raw):
                continue
            try:
                decoded[key] = self._decode_entry(self.codec, raw, stamps[key])
            except CorruptValue as error:
                self._warn_corrupt(key, error)
        return decoded

    def _fill(
        self,
        backend: Backend,
        items: dict[str, tuple[bytes, bytes]],
        invalidating: bool = False,
    ) -> None:
        """Store loaded values over our own leases; refused fills lost to a newer write.

        ``invalidating``: a writer's fill; if it fails, the key holds our lease or an
        older value, so it is deleted once the backend answers again.
        """
        if not items:
            return
        leasing: LeasingBackend = backend  # type: ignore[assignment]
        try:
            stored = leasing.compare_and_set_many(items, timeout=self.timeout)
        except ValueTooLarge as error:
            stats.incr("stored", len(items) - len(error.keys))
            stats.incr("too_large", len(error.keys))
            self._warn_too_large(error)
            markers = {key: (items[key][0], UNCACHEABLE) for key in error.keys if key in items}
            try:
                leasing.compare_and_set_many(markers, timeout=self.timeout)
            except BackendUnavailable as unavailable:
                self._warn_unavailable("write", unavailable)
                if invalidating:
                    unsettled.remember(backend, markers)
            return
        except BackendUnavailable as error:
            self._warn_unavailable("write", error)
            if invalidating:
                unsettled.remember(backend, items)
            return
        stats.incr("stored", len(stored))
        refused = len(items) - len(stored)
        if refused:
            stats.incr("fills_refused", refused)
            logger.debug(
                "drf-instcache: %d fill(s) refused: the entries changed while loading", refused
            )

    @staticmethod
    def _group_by_model(keys: Sequence[str], model_of_key: dict[str, str]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for key in keys:
            groups.setdefault(model_of_key[key], []).append(key)
        return groups

    def _load(
        self, model_name: str, version: str, entries: Sequence[tuple[str, Any, Any]]
    ) -> dict[str, Any]:
        """Load ``(key, pk, given_obj)`` entries: in one batch when the model allows."""
        result = {key: obj for key, _, obj in entries if obj is not None}
        needed = [(key, pk) for key, pk, obj in entries if obj is None]
        if not needed:
            return result
        loader_many = self.model_function(model_name, version, "loader_many")
        if loader_many is not None:
            loaded = loader_many([pk for _, pk in needed]) or {}
            # Match by key, not pk: a caller's "5" and the database's 5 are the same row.
            by_key = {self.key_for(version, model_name, pk): obj for pk, obj in loaded.items()}
            for key, _ in needed:
                result[key] = by_key.get(key)
            return result
        loader = self.model_function(model_name, version, "loader")
        for key, pk in needed:
            result[key] = self._load_one(loader, pk)
        return result

    @staticmethod
    def _load_one(loader: Callable[[Any], Any] | None, pk: Any) -> Any:
        """Call a per-pk loader; a loader that raises DoesNotExist means "gone"."""
        if loader is None:
            return None
        try:
            return loader(pk)
        except ObjectDoesNotExist:
            return None

    # -- writing ----------------------------------------------------------------------
    def update_instance(
        self,
        model_name: str,
        pk: Any,
        instance: Any = None,
        version: str | None = None,
        update_only: bool = False,
    ) -> list[Invalidation]:
        """Bring one instance's cached representations up to date.

        For each version (``version``, or all of them): the instance is loaded afresh
        (the caller's copy may be stale, or deleted), serialized, and written when its
        representation changed, or deleted when the row is gone. ``update_only`` writes
        only entries already cached; an uncached entry is then left alone and causes no
        cascade, unless the row was deleted.

        When the representation changed (or cannot be compared), the invalidator runs:
        a plain string entry is a raw key deleted now; ``(model, pk, immediate)`` is an
        instance to update next, deleted now when ``immediate``. The deleted row's
        cascade uses the caller's ``instance``, since it can no longer be loaded.

        Returns the ``(model_name, pk, version)`` triples to update next.
        """
        versions = [self.resolve_version(version)] if version else list(self.versions)
        plans: list[tuple[str, dict[str, Callable[..., Any] | None]]] = []
        for each_version in versions:
            functions = {
                name: self.model_function(model_name, each_version, name)
                for name in MODEL_FUNCTIONS
            }
            if any(function is not None for function in functions.values()):
                plans.append((each_version, functions))
        backend = self.backend
        if not plans or backend is None:
            return []

        codec = self.codec
        keys = {
            each_version: self.key_for(each_version, model_name, pk)
            for each_version, functions in plans
            if functions["serializer"] is not None
        }
        self._settle(backend)
        reachable = True
        try:
            current = backend.get_many(list(keys.values())) if keys else {}
        except BackendUnavailable as error:
            self._warn_unavailable("update", error)
            if update_only:
                return []  # nothing can be known to be cached
            current, reachable = {}, False

        # With leases, our own lease replaces each entry BEFORE the row is loaded: a
        # reader's (or an earlier writer's) fill prepared from older data is then
        # refused, and our fill is refused in turn if a later write comes first.
        policy = self._lease_policy(backend) if reachable else None
        leases: dict[str, bytes] = {}
        if policy is not None:
            leases = {
                key: new_lease()
                for key in keys.values()
                if not (update_only and current.get(key) is None)
            }
            if leases:
                try:
                    backend.set_many(leases, timeout=policy.ttl)
                except BackendUnavailable as error:
                    self._warn_unavailable("lease", error)
                    unsettled.remember(backend, leases)
                    leases, reachable = {}, False

        to_set: dict[str, bytes] = {}
        to_fill: dict[str, tuple[bytes, bytes]] = {}
        to_delete: list[str] = []
        invalid: list[Invalidation] = []
        for each_version, functions in plans:
            serializer = functions["serializer"]
            loader = functions["loader"]
            invalidator = functions["invalidator"]
            key = keys.get(each_version)
            raw = current.get(key) if key is not None else None
            fresh = self._load_one(loader, pk) if loader is not None else instance
            changed = True
            if serializer is not None and key is not None:
                native = serializer(fresh) if fresh is not None else None
                if not native:
                    to_delete.append(key)  # gone, or no longer cacheable
                elif update_only and raw is None:
                    continue  # not cached: do not populate, do not cascade
                else:
                    encoded = self._encode_entry(
                        codec, native, self.entry_stamp(model_name, each_version)
                    )
                    changed = raw is None or is_marker(raw) or not self._same(codec, raw, encoded)
                    if key in leases:
                        to_fill[key] = (leases[key], encoded)  # our lease replaced it
                    elif not reachable:
                        to_delete.append(key)  # cannot know what is there: drop it
                    elif changed:
                        to_set[key] = encoded
            source = fresh if fresh is not None else instance
            if changed and source is not None and invalidator is not None:
                self._collect_invalidations(invalidator(source), each_version, to_delete, invalid)

        writes = {*to_set, *to_fill}
        self._delete(backend, [key for key in to_delete if key not in writes], invalidating=True)
        self._fill(backend, to_fill, invalidating=True)
        # The old value is stale and the new one does not fit: drop the entry.
        refused = self._store(backend, to_set, invalidating=True)
        self._delete(backend, refused, invalidating=True)
        return list(dict.fromkeys(invalid))

    def forget_instance(
        self,
        model_name: str,
        pk: Any,
        instance: Any = None,
        version: str | None = None,
    ) -> list[Invalidation]:
        """Delete the entries of a row known to be deleted; return what to update next.

        Unlike :meth:`update_instance` nothing is loaded: the row is gone. The
        invalidator runs on the caller's ``instance`` (its foreign keys, and any
        ``_<name>_pks`` attached before the delete, say which entries embedded it).
        """
        versions = [self.resolve_version(version)] if version else list(self.versions)
        backend = self.backend
        if backend is None:
            return []
        to_delete: list[str] = []
        invalid: list[Invalidation] = []
        for each_version in versions:
            functions = {
                name: self.model_function(model_name, each_version, name)
                for name in MODEL_FUNCTIONS
            }
            if functions["serializer"] is not None:
                to_delete.append(self.key_for(each_version, model_name, pk))
            invalidator = functions["invalidator"]
            if instance is not None and invalidator is not None:
                self._collect_invalidations(invalidator(instance), each_version, to_delete, invalid)
        self._settle(backend)
        self._delete(backend, to_delete, invalidating=True)
        return list(dict.fromkeys(invalid))

    def _collect_invalidations(
        self,
        entries: Iterable[Any] | None,
        version: str,
        to_delete: list[str],
        invalid: list[Invalidation],
    ) -> None:
        """Sort an invalidator's entries into keys to delete now and instances to update."""
        for entry in entries or ():
            if isinstance(entry, str):
                to_delete.append(entry)
                continue
            related_model, related_pk, immediate = self._invalidation(entry)
            if immediate:
                to_delete.append(self.key_for(version, related_model, related_pk))
            invalid.append((related_model, related_pk, version))

    def delete_all_versions(self, model_name: str, obj_pk: Any) -> None:
        """Delete the entries of one instance in every version."""
        backend = self.backend
        if backend is None:
            return
        self._settle(backend)
        self._delete(
            backend,
            [self.key_for(version, model_name, obj_pk) for version in self.versions],
            invalidating=True,
        )

    def delete_keys(self, keys: Iterable[str]) -> None:
        """Delete raw keys (an invalidator's strings); if the backend is down, the keys
        are deleted once it answers again, so a stale entry cannot outlive the outage."""
        backend = self.backend
        if backend is not None:
            self._settle(backend)
            self._delete(backend, list(keys), invalidating=True)

    @staticmethod
    def _invalidation(entry: Any) -> tuple[str, Any, bool]:
        try:
            related_model, related_pk, immediate = entry
        except (TypeError, ValueError):
            raise TypeError(
                "an invalidator must return raw key strings or (model_name, pk, immediate) "
                f"triples, not {entry!r}"
            ) from None
        return related_model, related_pk, bool(immediate)

    @staticmethod
    def _same(codec: Codec, raw: bytes, encoded: bytes) -> bool:
        """Whether a cached value already holds this representation."""
        if bytes(raw) == encoded:
            return True
        try:
            return codec.decode(raw) == codec.decode(encoded)
        except CorruptValue:
            return False

    def _delete(self, backend: Backend, keys: Sequence[str], invalidating: bool = False) -> None:
        """Delete keys; a failure is logged, not raised. Deleting is always safe: at worst
        it costs a miss, and it ends any lease on the key, so no older fill can land.

        ``invalidating``: the keys may hold stale data, so a failed delete is retried
        once the backend answers again (:mod:`drf_instcache.unsettled`).
        """
        keys = list(dict.fromkeys(keys))
        if not keys:
            return
        try:
            backend.delete_many(keys)
            stats.incr("deleted", len(keys))
        except BackendUnavailable as error:
            self._warn_unavailable("delete", error)
            if invalidating:
                unsettled.remember(backend, keys)

    def _settle(self, backend: Backend) -> None:
        """Delete the keys earlier invalidations could not reach, now that we call again."""
        if not unsettled.pending(backend):
            return
        keys = unsettled.take(backend)
        try:
            backend.delete_many(keys)
        except BackendUnavailable as error:
            unsettled.remember(backend, keys)
            logger.debug("drf-instcache: %d stale key(s) still to delete: %s", len(keys), error)
            return
        stats.incr("deleted", len(keys))
        logger.warning(
            "drf-instcache: the cache answers again; deleted %d key(s) whose invalidation "
            "had failed",
            len(keys),
        )

    def _store(
        self, backend: Backend, items: dict[str, bytes], invalidating: bool = False
    ) -> list[str]:
        """``set_many`` with the core's error policy; returns the keys refused for size.

        This is the path of backends without conditional writes: the refused keys are
        simply not cached (the caller deletes the stale value they replace).
        """
        if not items:
            return []
        try:
            backend.set_many(items, timeout=self.timeout)
        except ValueTooLarge as error:
            stats.incr("stored", len(items) - len(error.keys))
            stats.incr("too_large", len(error.keys))
            self._warn_too_large(error)
            return list(error.keys)
        except BackendUnavailable as error:
            self._warn_unavailable("write", error)
            if invalidating:
                unsettled.remember(backend, items)
            return []
        stats.incr("stored", len(items))
        return []

    # -- logging ----------------------------------------------------------------------
    @staticmethod
    def _warn_unavailable(operation: str, error: BackendUnavailable) -> None:
        stats.incr("errors")
        logger.warning(
            "drf-instcache: cache %s failed, serving from the database: %s", operation, error
        )

    @staticmethod
    def _warn_corrupt(key: str, error: CorruptValue) -> None:
        """Count an unreadable value; warn once per key and process, then stay quiet."""
        stats.incr("corrupt")
        if key in _corrupt_warned:
            logger.debug("drf-instcache: %s is unreadable again, reloading: %s", key, error)
            return
        if len(_corrupt_warned) < _MAX_WARNED_KEYS:
            _corrupt_warned.add(key)
        logger.warning(
            "drf-instcache: cached value of %s is unreadable (%s); treated as a miss and "
            "replaced from the database",
            key,
            error,
        )

    @staticmethod
    def _warn_too_large(error: ValueTooLarge) -> None:
        """Warn once per key and process: an oversized instance stays oversized."""
        new = [key for key in error.keys if key not in _too_large_warned]
        if not new:
            logger.debug("drf-instcache: still too large to cache: %s", error.keys)
            return
        if len(_too_large_warned) < _MAX_WARNED_KEYS:
            _too_large_warned.update(new)
        logger.warning(
            "drf-instcache: %d instance(s) too large to cache (limit %d bytes), served from "
            "the database: %s",
            len(new),
            error.limit,
            ", ".join(new[:5]),
        )


# -- batch loading -------------------------------------------------------------------
def _relation(model: type[models.Model], name: str) -> Any:
    """Find a relation by field name, related query name or reverse accessor name."""
    for field in model._meta.get_fields():
        if not field.is_relation:
            continue
        accessor = field.get_accessor_name() if hasattr(field, "get_accessor_name") else None
        if name in (field.name, accessor):
            return field
    relations = sorted(
        (field.get_accessor_name() if hasattr(field, "get_accessor_name") else field.name) or ""
        for field in model._meta.get_fields()
        if field.is_relation
    )
    raise FieldDoesNotExist(
        f"{model.__name__} has no relation {name!r}; relations: {', '.join(relations)}"
    )


def load_many_with_related_pks(
    queryset: models.QuerySet | type[models.Model],
    pks: Iterable[Any],
    related_names: Iterable[str] = (),
) -> dict[Any, models.Model]:
    """Load rows by primary key, with the pks of their to-many relations attached.

    One query loads the rows (``in_bulk``); then, for each name in ``related_names``,
    ONE query reads the (owner pk, related pk) pairs of every row, stored on each
    instance as ``_<name>_pks`` (sorted). Serializers that read those attributes, as
    the usage guide's ``add_related_pks`` functions do, then cost no query per row: a
    cold list of any length costs ``1 + len(related_names)`` queries.

    Returns ``{pk: instance}`` for the rows that exist.
    """
    if isinstance(queryset, type) and issubclass(queryset, models.Model):
        queryset = queryset._default_manager.all()
    wanted = list(dict.fromkeys(pks))
    if not wanted:
        return {}
    objects = queryset.in_bulk(wanted)
    if not objects:
        return {}
    model = queryset.model
    for name in related_names:
        relation = _relation(model, name)
        related: dict[Any, list[Any]] = {pk: [] for pk in objects}
        pairs = (
            model._base_manager.using(queryset.db)
            .filter(pk__in=list(objects))
            .values_list("pk", relation.name)
            .order_by()
        )
        for owner_pk, related_pk in pairs:
            if related_pk is not None:
                related[owner_pk].append(related_pk)
        attribute = f"_{name}_pks"
        for pk, obj in objects.items():
            setattr(obj, attribute, sorted(related[pk]))
    return objects
