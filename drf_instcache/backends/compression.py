"""Compress large cached values with zstd, marked so that every reader can tell.

Large representations (a question embedding hundreds of choices) cost memory on the
server and bytes on the wire on every read. With ``DRF_INSTCACHE_COMPRESSION`` set, a
value of at least ``MIN_BYTES`` is stored as :data:`ZSTD_HEAD` followed by a zstd frame
(only when that is smaller). Compression is a layer around the backend
(:class:`CompressedBackend`), so it applies identically to every adapter and to every
kind of value the core stores: instance entries, rendered JSON, cached list queries.

Reading does not depend on the setting: a value led by :data:`ZSTD_HEAD` is always
decompressed, and any other value is returned as stored. So processes with compression
off, or with another threshold, share one cache, and values written before compression
was turned on stay readable. A marked value that does not decompress is returned as
stored: it matches no codec marker or stamp, so the core treats it as corrupt (a miss,
rewritten), like any other bytes it cannot read.

The head starts with the NUL byte the core reserves for its markers
(:data:`drf_instcache.backends.markers.MARKER_HEAD`), which no codec output starts with. Markers
(leases) are never compressed, so a compare-and-set over a lease compares the exact
stored bytes.

``zstandard`` comes with the ``zstd`` extra and is imported at first use, so a bare
install works as long as compression is off and nothing compressed is read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from drf_instcache.backends.base import (
    Backend,
    LeasingBackend,
    fill_many,
    fill_many_quietly,
    get_many_claiming,
    supports_leases,
)
from drf_instcache.backends.markers import MARKER_HEAD, is_marker
from drf_instcache.exceptions import CorruptValue, ImproperlyConfigured

logger = logging.getLogger(__name__)

COMPRESSION_SETTING = "DRF_INSTCACHE_COMPRESSION"
ALGORITHMS = ("zstd",)
DEFAULT_MIN_BYTES = 1024
DEFAULT_LEVEL = 3
_KEYS = {"ALGORITHM", "MIN_BYTES", "LEVEL"}

ZSTD_HEAD = MARKER_HEAD + b"zstd:"
"""Leads every compressed value; the zstd frame follows."""

INSTALL_HINT = "pip install 'drf-instcache[zstd]'"


@dataclass(frozen=True)
class CompressionPolicy:
    """Which values are written compressed, and how hard zstd tries."""

    min_bytes: int = DEFAULT_MIN_BYTES
    level: int = DEFAULT_LEVEL
    algorithm: str = "zstd"


def parse_policy(value: Any) -> CompressionPolicy | None:
    """Turn a ``DRF_INSTCACHE_COMPRESSION`` value into a policy (None: writes uncompressed)."""
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping) or set(value) - _KEYS:
        raise ImproperlyConfigured(
            f"{COMPRESSION_SETTING} must be None or a dict with keys ALGORITHM, MIN_BYTES and "
            f"LEVEL, e.g. {{'ALGORITHM': 'zstd', 'MIN_BYTES': 1024}}; got {value!r}"
        )
    algorithm = value.get("ALGORITHM", "zstd")
    min_bytes = value.get("MIN_BYTES", DEFAULT_MIN_BYTES)
    level = value.get("LEVEL", DEFAULT_LEVEL)
    if algorithm not in ALGORITHMS:
        raise ImproperlyConfigured(
            f"{COMPRESSION_SETTING} ALGORITHM {algorithm!r} is not supported; use 'zstd'"
        )
    integers = all(
        isinstance(number, int) and not isinstance(number, bool) for number in (min_bytes, level)
    )
    if not integers or min_bytes < 1 or not 1 <= level <= 22:
        raise ImproperlyConfigured(
            f"{COMPRESSION_SETTING}: MIN_BYTES must be an integer >= 1 and LEVEL an integer "
            f"1-22; got {value!r}"
        )
    _zstandard()  # fail at start-up, naming the extra, when the library is missing
    return CompressionPolicy(min_bytes=min_bytes, level=level, algorithm=algorithm)


def _zstandard() -> Any:
    try:
        import zstandard
    except ModuleNotFoundError as error:
        raise ImproperlyConfigured(
            f"{COMPRESSION_SETTING} needs the 'zstandard' package: {INSTALL_HINT}"
        ) from error
    return zstandard


_local = threading.local()
"""zstd (de)compressor objects must not be shared by threads: one of each per thread."""


def _compressor(level: int) -> Any:
    compressors = _local.__dict__.setdefault("compressors", {})
    found = compressors.get(level)
    if found is None:
        found = compressors[level] = _zstandard().ZstdCompressor(level=level)
    return found


def _decompressor() -> Any:
    found = getattr(_local, "decompressor", None)
    if found is None:
        found = _local.decompressor = _zstandard().ZstdDecompressor()
    return found


def compress(value: bytes, policy: CompressionPolicy | None) -> bytes:
    """The bytes to store for ``value``: compressed and marked, or ``value`` itself.

    Left as they are: values under ``min_bytes``, the core's markers (leases), bytes
    already led by :data:`ZSTD_HEAD` (an unreadable value read back for a
    compare-and-set), and values that zstd does not make smaller.
    """
    if (
        policy is None
        or not isinstance(value, bytes)  # the adapter refuses it with its own error
        or len(value) < policy.min_bytes
        or (value[:1] == MARKER_HEAD and (is_marker(value) or value.startswith(ZSTD_HEAD)))
    ):
        return value
    packed = ZSTD_HEAD + _compressor(policy.level).compress(value)
    return packed if len(packed) < len(value) else value


def decompress(stored: bytes) -> bytes:
    """The value behind stored bytes; raises :class:`CorruptValue` for a bad frame."""
    if not stored.startswith(ZSTD_HEAD):
        return stored
    try:
        return bytes(_decompressor().decompress(memoryview(stored)[len(ZSTD_HEAD) :]))
    except ImproperlyConfigured as error:
        raise CorruptValue(f"compressed value, but {error}") from error
    except Exception as error:  # zstandard.ZstdError, or a frame without its size
        raise CorruptValue(f"compressed value does not decompress: {error}") from error


class CompressedBackend:
    """Wrap a :class:`Backend`: compress what is written per the policy, decompress reads.

    ``policy=None`` writes values unchanged but still reads compressed ones. Wrapping a
    backend with conditional writes gives a :class:`LeasingCompressedBackend`, so the
    wrapper neither hides nor adds a capability (as the circuit breaker does).
    """

    def __new__(cls, backend: Backend, policy: CompressionPolicy | None = None) -> Any:
        if cls is CompressedBackend and supports_leases(backend):
            cls = LeasingCompressedBackend
        return super().__new__(cls)

    def __init__(self, backend: Backend, policy: CompressionPolicy | None = None) -> None:
        self.backend = backend
        self.policy = policy

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        return self._read(self.backend.get_many(keys))

    def _read(self, found: dict[str, bytes]) -> dict[str, bytes]:
        """Decompress what a read found (markers and plain values are left as stored)."""
        marked = [key for key, value in found.items() if value[:1] == MARKER_HEAD]
        for key in marked:
            try:
                found[key] = decompress(found[key])
            except CorruptValue as error:
                # Kept as stored: the core finds it matches no codec, counts it as
                # corrupt and rewrites it (a compare-and-set over these exact bytes).
                logger.warning("cache value %r is unreadable: %s", key, error)
        return found

    def _stored(self, items: Mapping[str, bytes]) -> dict[str, bytes]:
        policy = self.policy
        if policy is None:
            return dict(items)
        return {key: compress(value, policy) for key, value in items.items()}

    def set_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> None:
        self.backend.set_many(self._stored(items), timeout)

    def delete_many(self, keys: Sequence[str]) -> None:
        self.backend.delete_many(keys)

    def clear(self) -> None:
        self.backend.clear()

    def close(self) -> None:
        self.backend.close()

    def __getattr__(self, name: str) -> Any:
        # Optional capabilities of the wrapped adapter (server_key, stats...) stay reachable.
        return getattr(self.backend, name)

    def __repr__(self) -> str:
        policy = self.policy
        how = "reads only" if policy is None else f"zstd>={policy.min_bytes}B"
        return f"<CompressedBackend {how} {self.backend!r}>"


class LeasingCompressedBackend(CompressedBackend):
    """The compression layer over a backend that offers conditional writes."""

    backend: LeasingBackend

    def add_many(self, items: Mapping[str, bytes], timeout: float | None = None) -> list[str]:
        return self.backend.add_many(self._stored(items), timeout)

    def compare_and_set_many(
        self, items: Mapping[str, tuple[bytes, bytes]], timeout: float | None = None
    ) -> list[str]:
        """``expected`` is compared with what is stored: a marker or an unreadable value
        as read, a value as this policy would have written it (deterministic per level)."""
        policy = self.policy
        if policy is None:
            return self.backend.compare_and_set_many(items, timeout)
        swaps = {
            key: (compress(pair[0], policy), compress(pair[1], policy))
            if isinstance(pair, tuple) and len(pair) == 2
            else pair  # malformed: the adapter refuses it with its own error
            for key, pair in items.items()
        }
        return self.backend.compare_and_set_many(swaps, timeout)

    def get_many_claiming(
        self, keys: Sequence[str], lease: bytes, timeout: float | None
    ) -> tuple[dict[str, bytes], list[str]]:
        """A lease is a marker, stored as is (as ``add_many`` stores it uncompressed)."""
        found, won = get_many_claiming(self.backend, keys, lease, timeout)
        return self._read(found), won

    def fill_many(
        self, lease: bytes, items: Mapping[str, bytes], timeout: float | None = None
    ) -> list[str]:
        """The lease is a marker, compared as stored; the values are written compressed."""
        return fill_many(self.backend, lease, self._stored(items), timeout)

    def fill_many_quietly(
        self, lease: bytes, items: Mapping[str, bytes], timeout: float | None = None
    ) -> None:
        fill_many_quietly(self.backend, lease, self._stored(items), timeout)
