"""The Backend protocol every adapter implements, and the helpers they share.

The strategy core talks to storage only through :class:`Backend`. Values are opaque
``bytes``: encoding is the core's job, and an adapter stores exactly what it is given.

Semantics every adapter honours identically (the conformance suite checks them):

* ``get_many`` returns hits only; a missing key is simply absent from the result.
* One call is one round trip to each server involved, where the server allows it.
* An empty input is a no-op that makes no round trip.
* ``timeout=None`` means the backend's configured default (``TIMEOUT``, 3600 s unless
  set; a configured ``None`` means "never expire"). A positive number is a lifetime in
  seconds (rounded up to whole seconds on servers that only count seconds). ``0`` or a
  negative number means "already expired": the items are not stored and any previous
  value under those keys is deleted, as Django's cache API does.
* Keys may be any ``str``: the adapter prefixes them with its namespace and applies the
  safe-key rule of :mod:`drf_instcache.keys`.
* ``clear`` removes only this backend's namespace, never other data on the server.
* Connection errors, timeouts and server errors raise
  :class:`~drf_instcache.exceptions.BackendUnavailable`; a value larger than the
  server's item limit raises :class:`~drf_instcache.exceptions.ValueTooLarge` after the
  other items were stored.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol, cast, runtime_checkable

from drf_instcache.backends.keys import prefixed, validate_prefix
from drf_instcache.exceptions import BackendUnavailable, ImproperlyConfigured, ValueTooLarge

DEFAULT_TIMEOUT = 3600.0
"""Default lifetime of an entry, in seconds: a safety net behind signal invalidation."""

DEFAULT_KEY_PREFIX = "instcache"

_SERVER_KEY_MEMO_SIZE = 50_000
"""Server-key mappings a backend remembers before starting afresh."""


@runtime_checkable
class Backend(Protocol):
    """What the strategy core needs from a cache server (fixed public contract)."""

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """Return the stored bytes of every key present; misses are omitted."""
        ...

    def set_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> None:
        """Store every item, with ``timeout`` seconds to live (``None``: the default)."""
        ...

    def delete_many(self, keys: Sequence[str]) -> None:
        """Delete every key; absent keys are ignored."""
        ...

    def clear(self) -> None:
        """Delete every key of this backend's namespace, and nothing else."""
        ...

    def close(self) -> None:
        """Release connections; the backend reconnects if used again."""
        ...


@runtime_checkable
class LeasingBackend(Backend, Protocol):
    """Optional capability: conditional writes, so a slow reader cannot cache old data.

    The core keeps entries correct under concurrency with *leases* stored in the value
    key itself (see :mod:`drf_instcache.leases`): a reader that misses claims the key
    with :meth:`add_many`, loads the row, and stores it with :meth:`compare_and_set_many`
    only if the key still holds its own lease; a writer replaces or deletes the key,
    which makes every older lease's fill fail. Adapters implement both methods with
    what their server offers (Lua on Redis, ``add``/``cas`` on memcached, a transaction
    on disk, a lock in memory); a backend without them still works, with plain
    ``set_many`` fills and the cache-aside race they allow.

    Both methods follow ``set_many``'s rules for keys, timeouts and item limits:
    ``timeout=None`` is the default lifetime, ``0`` or less stores nothing, an item over
    the limit is not stored and :class:`~drf_instcache.exceptions.ValueTooLarge` is
    raised after the others were handled. Each is one round trip per server involved
    (memcached's compare-and-set needs two: ``gets`` then the pipelined ``cas``).

    Three more methods are optional and only save round trips: ``get_many_claiming`` (a
    read that leases the empty keys), ``fill_many`` (the fill over one lease) and
    ``fill_many_quietly`` (the same fill, sent without waiting for the server's answer);
    the core calls them through :func:`get_many_claiming`, :func:`fill_many` and
    :func:`fill_many_quietly`, which fall back to the two methods above.
    """

    def add_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> list[str]:
        """Store each item whose key holds nothing; return the keys stored."""
        ...

    def compare_and_set_many(
        self, items: Mapping[str, tuple[bytes, bytes]], timeout: float | None = None
    ) -> list[str]:
        """Store ``new`` where the key holds exactly ``expected`` (``{key: (expected, new)}``).

        Returns the keys stored. A key holding anything else, or nothing, is left alone.
        """
        ...


_LEASE_METHODS = ("add_many", "compare_and_set_many")
_leasing_types: dict[type, bool] = {}


def supports_leases(backend: object) -> bool:
    """Whether ``backend`` offers the :class:`LeasingBackend` conditional writes.

    Decided by the backend's class (it must define both methods), and remembered per
    class: an ``isinstance`` check against a runtime protocol costs ~15 us, paid on
    every read otherwise. Wrappers that forward attributes (the circuit breaker) pick a
    leasing or a plain class at construction, so the class always tells.
    """
    kind = type(backend)
    answer = _leasing_types.get(kind)
    if answer is None:
        answer = _leasing_types[kind] = all(
            callable(getattr(kind, name, None)) for name in _LEASE_METHODS
        )
    return answer


_native_methods: dict[tuple[type, str], bool] = {}


def _has_own(backend: object, name: str) -> bool:
    """Whether ``backend``'s class defines ``name`` (remembered per class, as
    :func:`supports_leases` is: wrappers forward unknown attributes, the class tells)."""
    memo_key = (type(backend), name)
    answer = _native_methods.get(memo_key)
    if answer is None:
        answer = _native_methods[memo_key] = callable(getattr(type(backend), name, None))
    return answer


def claims_natively(backend: object) -> bool:
    """Whether ``backend`` has its own ``get_many_claiming``."""
    return _has_own(backend, "get_many_claiming")


def get_many_claiming(
    backend: LeasingBackend, keys: Sequence[str], lease: bytes, timeout: float | None
) -> tuple[dict[str, bytes], list[str]]:
    """Read ``keys`` and put ``lease`` (living ``timeout`` seconds) on each one found empty.

    Returns what was found (as ``get_many``) and the keys the lease was put on. A cold
    read-through needs both, and a backend that can do them in one round trip (a Redis
    script) offers ``get_many_claiming`` itself; any other leasing backend gets
    ``get_many`` followed by ``add_many`` of the empty keys, which is what the core did
    before (two round trips; a key someone else claimed in between is simply not won).
    """
    if claims_natively(backend):
        return backend.get_many_claiming(keys, lease, timeout)  # type: ignore[attr-defined, no-any-return]
    found = backend.get_many(keys)
    empty = [key for key in keys if key not in found]
    won = backend.add_many(dict.fromkeys(empty, lease), timeout=timeout) if empty else []
    return found, won


def fill_many(
    backend: LeasingBackend, lease: bytes, items: Mapping[str, bytes], timeout: float | None
) -> list[str]:
    """Store each item whose key still holds ``lease``; return the keys stored.

    A read's fill: every key it claimed holds the same lease, so a backend that offers
    ``fill_many`` itself (Redis: one script, the lease sent once) does it cheaper than
    ``compare_and_set_many`` with a pair per key, which is the fallback.
    """
    if _has_own(backend, "fill_many"):
        return backend.fill_many(lease, items, timeout)  # type: ignore[attr-defined, no-any-return]
    return backend.compare_and_set_many(
        {key: (lease, value) for key, value in items.items()}, timeout
    )


def fill_many_quietly(
    backend: LeasingBackend, lease: bytes, items: Mapping[str, bytes], timeout: float | None
) -> None:
    """:func:`fill_many` without waiting to learn which keys were stored.

    A reader's write-back changes nothing it answers: the server compares each key with
    the lease (so a write that came first still wins) whether or not anyone waits for
    the result. A backend that can send a command and skip its reply (Redis: ``CLIENT
    REPLY SKIP``) offers ``fill_many_quietly`` and a cold read saves a round trip; any
    other backend answers through :func:`fill_many`. Errors the sending meets are
    raised as ``fill_many``'s are; what the server refuses is not known.
    """
    if _has_own(backend, "fill_many_quietly"):
        backend.fill_many_quietly(lease, items, timeout)  # type: ignore[attr-defined]
    else:
        fill_many(backend, lease, items, timeout)


class BaseBackend:
    """Shared plumbing for adapters: namespacing, timeouts, size limits, error mapping.

    Subclasses set :attr:`unavailable_errors` to the client library's exception types
    that mean "the server is not answering", and wrap each network call in
    :meth:`translate_errors`.
    """

    unavailable_errors: ClassVar[tuple[type[BaseException], ...]] = (OSError,)
    scheme: ClassVar[str] = ""
    option_names: ClassVar[frozenset[str]] = frozenset()
    """Options the adapter accepts besides ``max_value_size``; others are refused."""
    option_hint: ClassVar[str] = ""
    """Appended to the unknown-option error, e.g. where client arguments belong."""
    delete_many: Callable[[Sequence[str]], None]
    """Every adapter's own; :meth:`store` deletes with it when a lifetime is already over."""

    def __init__(
        self,
        location: Any = None,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_value_size: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.location = location
        self.key_prefix = validate_prefix(key_prefix)
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
            raise ValueError(
                f"TIMEOUT must be a positive number of seconds or None, not {timeout!r}"
            )
        self.default_timeout = timeout
        if max_value_size is not None and max_value_size <= 0:
            raise ValueError(f"max_value_size must be positive, not {max_value_size!r}")
        self.options: dict[str, Any] = dict(options or {})
        self._server_key_memo: dict[str, str] = {}
        self._refuse_unknown_options()
        if max_value_size is None:
            max_value_size = self.number_option(
                "max_value_size", None, minimum=1, allow_none=True, integer=True
            )
        self._max_value_size = max_value_size

    # -- options ----------------------------------------------------------------------
    def _refuse_unknown_options(self) -> None:
        """Fail at start-up on a misspelt option instead of silently ignoring it."""
        known = self.option_names | {"max_value_size"}
        unknown = set(self.options) - known
        if unknown:
            raise ImproperlyConfigured(
                f"{type(self).__name__} got unknown option(s) {sorted(unknown)}; "
                f"known: {sorted(known)}{self.option_hint}"
            )

    def number_option(
        self,
        name: str,
        default: float | None,
        *,
        minimum: float = 0,
        allow_none: bool = False,
        integer: bool = False,
    ) -> Any:
        """Read a numeric option, refusing wrong types and out-of-range values up front."""
        value = self.options.get(name, default)
        if value is None and allow_none:
            return None
        kinds = int if integer else int | float
        if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
            kind = "an integer" if integer else "a number"
            raise ImproperlyConfigured(
                f"{type(self).__name__} option {name!r} must be {kind} >= {minimum}"
                f"{' or None' if allow_none else ''}, not {value!r}"
            )
        return value

    # -- keys -------------------------------------------------------------------------
    def server_key(self, key: str) -> str:
        """Map a caller's key to the key stored on the server (namespaced, safe)."""
        return prefixed(self.key_prefix, key)

    def server_keys(self, keys: Sequence[str]) -> dict[str, str]:
        """Map server keys back to the caller's keys, in the caller's order.

        Hot keys are mapped on every read of a list, and the safe-key rule costs about
        half a microsecond a key, so recent mappings are remembered (a bounded dict,
        emptied when full; the mapping is a pure function, so a stale entry is
        impossible).
        """
        memo = self._server_key_memo
        if len(memo) > _SERVER_KEY_MEMO_SIZE:
            memo.clear()
        known: list[str | None] = list(map(memo.get, keys))
        if None in known:
            server_key = self.server_key
            known = [
                found if found is not None else memo.setdefault(key, server_key(key))
                for key, found in zip(keys, known, strict=True)
            ]
        return dict(zip(cast("list[str]", known), keys, strict=True))

    @property
    def namespace_pattern(self) -> str:
        """Glob matching every key of this namespace (and nothing of another one)."""
        return f"{self.key_prefix}:*"

    # -- timeouts ---------------------------------------------------------------------
    def resolve_timeout(self, timeout: float | None) -> float | None:
        """Return the lifetime to apply: seconds > 0, ``None`` for never, or <= 0 for expired."""
        if timeout is None:
            return self.default_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise TypeError(f"timeout must be a number of seconds or None, not {timeout!r}")
        return float(timeout)

    @staticmethod
    def whole_seconds(timeout: float) -> int:
        """Round a positive lifetime up to whole seconds, for servers that count seconds."""
        return max(1, math.ceil(timeout))

    # -- sizes ------------------------------------------------------------------------
    @property
    def max_value_size(self) -> int | None:
        """Largest value, in bytes, this backend stores (``None``: no limit enforced)."""
        return self._max_value_size

    def split_oversized(
        self, items: Mapping[str, bytes]
    ) -> tuple[dict[str, bytes], ValueTooLarge | None]:
        """Separate the items that fit from those that exceed :attr:`max_value_size`.

        Returns the items to store and the error to raise once they are stored (or None).
        Also checks that every value is bytes, since a str would be silently re-encoded.
        """
        for key, value in items.items():
            _check_bytes(key, value)
        limit = self.max_value_size
        if limit is None:
            return dict(items), None
        fitting: dict[str, bytes] = {}
        too_large: dict[str, int] = {}
        for key, value in items.items():
            if len(value) > limit:
                too_large[key] = len(value)
            else:
                fitting[key] = value
        if not too_large:
            return fitting, None
        return fitting, ValueTooLarge(list(too_large), limit, list(too_large.values()))

    def split_oversized_swaps(
        self, items: Mapping[str, tuple[bytes, bytes]]
    ) -> tuple[dict[str, tuple[bytes, bytes]], ValueTooLarge | None]:
        """:meth:`split_oversized` for ``compare_and_set_many``'s ``(expected, new)`` pairs."""
        for key, pair in items.items():
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise TypeError(
                    f"compare_and_set_many takes (expected, new) pairs, not {pair!r} (key {key!r})"
                )
            _check_bytes(key, pair[0])
        fitting, too_large = self.split_oversized(
            {key: new for key, (_expected, new) in items.items()}
        )
        return {key: (bytes(items[key][0]), bytes(new)) for key, new in fitting.items()}, too_large

    # -- conditional writes -----------------------------------------------------------
    def store(
        self,
        items: Mapping[str, bytes],
        timeout: float | None,
        write: Callable[[dict[str, bytes], float | None], ValueTooLarge | None],
    ) -> None:
        """The frame every adapter's ``set_many`` shares.

        Resolves the lifetime (an already expired one deletes the keys instead), keeps
        back the values over :attr:`max_value_size`, and calls ``write(fitting,
        lifetime)`` inside the error translation when something fits. ``write`` returns
        the error for values the server itself refused (memcached's item limit), or
        None; kept-back and refused keys are raised together in one
        :class:`~drf_instcache.exceptions.ValueTooLarge`.
        """
        if not items:
            return
        lifetime = self.resolve_timeout(timeout)
        if lifetime is not None and lifetime <= 0:
            self.delete_many(list(items))
            return
        fitting, too_large = self.split_oversized(items)
        refused = None
        if fitting:
            with self.translate_errors("set_many"):
                refused = write(fitting, lifetime)
        if too_large is not None and refused is not None:
            raise ValueTooLarge(
                [*too_large.keys, *refused.keys],
                too_large.limit,
                [*too_large.sizes, *refused.sizes],
            )
        if refused is not None:
            raise refused
        if too_large is not None:
            raise too_large

    def conditional_write(
        self,
        operation: str,
        items: Mapping[str, Any],
        timeout: float | None,
        write: Callable[[dict[str, Any], float | None], list[str]],
        *,
        swaps: bool = False,
    ) -> list[str]:
        """The frame ``add_many`` and ``compare_and_set_many`` share on every adapter (as
        :meth:`store` is ``set_many``'s).

        Checks the values, keeps back the oversized ones, resolves the lifetime, and calls
        ``write(fitting, lifetime)`` (inside the error translation) only when something
        fits and the lifetime is not already over; then raises
        :class:`~drf_instcache.exceptions.ValueTooLarge` for the kept-back items. With
        ``swaps`` the items are ``(expected, new)`` pairs. Returns the keys ``write``
        stored.
        """
        if not items:
            return []
        split = self.split_oversized_swaps if swaps else self.split_oversized
        fitting, too_large = split(items)
        lifetime = self.resolve_timeout(timeout)
        stored: list[str] = []
        if fitting and (lifetime is None or lifetime > 0):
            with self.translate_errors(operation):
                stored = write(fitting, lifetime)
        if too_large:
            raise too_large
        return stored

    # -- errors -----------------------------------------------------------------------
    @contextlib.contextmanager
    def translate_errors(self, operation: str) -> Iterator[None]:
        """Re-raise the client's connection and server errors as BackendUnavailable."""
        try:
            yield
        except BackendUnavailable:
            raise
        except self.unavailable_errors as error:
            raise BackendUnavailable(
                f"{type(self).__name__} {operation} failed on {self.describe()}: {error}"
            ) from error

    def describe(self) -> str:
        """A short human description of where this backend stores data."""
        return f"{self.location!r} (prefix {self.key_prefix!r})"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    # -- protocol defaults ------------------------------------------------------------
    def close(self) -> None:
        """Nothing to release by default."""

    def __enter__(self) -> BaseBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _check_bytes(key: str, value: object) -> None:
    """Refuse a non-bytes value: a str would be silently re-encoded by some clients."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"backend values must be bytes, not {type(value).__name__} (key {key!r})")
