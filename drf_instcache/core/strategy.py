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

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from drf_instcache import settings as instcache_settings
from drf_instcache.backends.base import Backend
from drf_instcache.backends.observed import observing
from drf_instcache.core import counters as stats
from drf_instcache.core import entries, transactions, write
from drf_instcache.core.codecs import Codec, resolve_codec
from drf_instcache.core.fields import TYPE_SEPARATOR, UnknownFieldType, get_converter, split_key
from drf_instcache.core.handle import CacheHandle
from drf_instcache.core.leases import MARKER_HEAD, is_lease, is_marker
from drf_instcache.core.loading import load_many_with_related_pks, load_misses
from drf_instcache.core.namespaces import (
    INSTANCE_NAMESPACE,
    MODEL_FUNCTIONS,
    OPTIONAL_MODEL_FUNCTIONS,
)
from drf_instcache.core.store import Store, warn_corrupt
from drf_instcache.core.write import Invalidation
from drf_instcache.exceptions import (
    BackendUnavailable,
    CorruptValue,
    ImproperlyConfigured,
    InstcacheError,
    UnknownModel,
)

__all__ = [
    "MODEL_FUNCTIONS",
    "OPTIONAL_MODEL_FUNCTIONS",
    "BaseCache",
    "Invalidation",
    "UnknownFieldType",
    "UnknownVersion",
    "load_many_with_related_pks",
]

KEY_NAMESPACE = INSTANCE_NAMESPACE
"""First part of every instance key, so our keys are recognisable on a shared server."""

ObjectSpec = tuple[str, Any, Any]
InstanceMap = dict[tuple[str, Any], tuple[dict[str, Any], str, Any]]

_MISSING: Any = object()


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
    cascade_policies: dict[str, str] = {}
    """Model name -> ``"refresh"`` or ``"drop"`` for its entries an invalidator names."""

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
            return observing(self._backend)  # outage logs and metrics see it too
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
            elif key != entries.STAMP_FIELD:  # present when given a raw decoded entry
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
        claimed: dict[str, bytes] | None = None  # the leases the read put on empty keys
        writable = backend is not None
        store = None if backend is None else self.store(backend)
        if store is not None:
            store.settle()
            scope = f"i:{version}:{sorted(stamp_of)}:{len(keys) > 1}"  # level, models, list?
            try:
                raw_values, claimed = store.read(keys, scope)
            except BackendUnavailable as error:
                writable = False  # a second call would only wait for the same timeout
                store.warn("read", error)
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
                    stored[key] = entries.decode(codec, raw, stamps[key])
                except CorruptValue as error:
                    warn_corrupt(key, error)
                    corrupt[key] = raw

        # Claim the keys to fill; take what other readers' fills brought meanwhile.
        claim = None
        if store is not None:
            claim = store.claim(empty, corrupt, leased_by_others, writable, claimed)
            for key, raw in claim.landed.items():
                try:
                    stored[key] = entries.decode(codec, raw, stamps[key])
                except CorruptValue as error:
                    warn_corrupt(key, error)

        missing = [key for key in keys if key not in stored]
        stats.incr_per_model("hits", (model_of_key[key] for key in stored))
        stats.incr_per_model("misses", (model_of_key[key] for key in missing))

        objects = dict(given)
        to_fill: dict[str, bytes] = {}
        gone: list[str] = []
        for model_name, miss_keys in _group_by_model(missing, model_of_key).items():
            serializer = serializers[model_name.lower()]
            loaded = load_misses(
                self,
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
                encoded = entries.encode(codec, native, stamps[key])
                # Hand out exactly what a later hit will decode, so hits and misses agree.
                stored[key] = entries.decode(codec, encoded, stamps[key])
                to_fill[key] = encoded
        stats.incr("loaded", len(to_fill))

        if claim is not None:
            claim.write_back(to_fill, gone)

        result: InstanceMap = {}
        for key, specs in specs_by_key.items():
            if key not in stored:
                continue
            native = self.from_cached(stored[key])
            for index, spec in enumerate(specs):
                result[spec] = (native if index == 0 else dict(native), key, objects.get(key))
        return result

    # -- entries ----------------------------------------------------------------------
    def entry_stamp(self, model_name: str, version: str) -> str:
        """What an entry records about itself: which model and version it represents.

        A value found under a key but stamped for another model or version (a custom
        ``key_for`` collision, another application on the same prefix) or not stamped at
        all (written by an older release) is treated as unreadable, not handed out.
        """
        return entries.stamp(model_name, version)

    def encode_entry(self, model_name: str, version: str, native: dict[str, Any]) -> bytes:
        """The bytes cached for a serializer's representation of one instance."""
        return entries.encode(self.codec, native, self.entry_stamp(model_name, version))

    def decode_entry(self, model_name: str, version: str, raw: bytes) -> dict[str, Any]:
        """The representation in cached bytes, or :class:`CorruptValue` if unusable."""
        return entries.decode(self.codec, raw, self.entry_stamp(model_name, version))

    # -- writing ----------------------------------------------------------------------
    def store(self, backend: Backend) -> Store:
        """``backend`` with the core's error policy and this class's entry lifetime."""
        return Store(backend, self.timeout)

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
        return write.update_instance(self, model_name, pk, instance, version, update_only)

    def update_instances(
        self,
        model_name: str,
        pks: Sequence[Any],
        version: str | None = None,
        update_only: bool = False,
        instances: Mapping[Any, Any] | None = None,
    ) -> write.Outcome:
        """:meth:`update_instance` for many instances of one model: one ``get_many``, one
        batch load, one write. The outcome: what next, or that the backend failed."""
        return write.update_instances(self, model_name, pks, version, update_only, instances)

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
        return write.forget_instance(self, model_name, pk, instance, version)

    def delete_all_versions(self, model_name: str, obj_pk: Any) -> None:
        """Delete the entries of one instance in every version."""
        backend = self.backend
        if backend is None:
            return
        store = self.store(backend)
        store.settle()
        store.delete(
            [self.key_for(version, model_name, obj_pk) for version in self.versions],
            invalidating=True,
        )

    def delete_keys(self, keys: Iterable[str]) -> None:
        """Delete raw keys (an invalidator's strings); if the backend is down, the keys
        are deleted once it answers again, so a stale entry cannot outlive the outage."""
        backend = self.backend
        if backend is not None:
            store = self.store(backend)
            store.settle()
            store.delete(list(keys), invalidating=True)


def _group_by_model(keys: Sequence[str], model_of_key: dict[str, str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(model_of_key[key], []).append(key)
    return groups
