"""Turn cached instance representations into bytes and back.

Backends store opaque bytes; the core picks how a representation becomes bytes. Three
codecs exist: the standard library's ``json`` (always available), ``orjson`` (several
times faster) and ``msgpack`` (smaller); the last two come with the ``fast`` extra.

Every encoded value starts with a short marker naming its codec. Processes configured
with different codecs may share one cache during a rolling deploy; the marker makes a
value written by one codec a clean miss (:class:`CorruptValue`) for another, instead of
garbage handed to a serializer. The same goes for any bytes this library did not write.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from drf_instcache.exceptions import CorruptValue, ImproperlyConfigured

CODEC_SETTING = "DRF_INSTCACHE_CODEC"
DEFAULT_CODEC = "json"


class Codec:
    """A named pair of functions between JSON-able values and marked bytes."""

    def __init__(
        self,
        name: str,
        marker: bytes,
        dumps: Callable[[Any], bytes],
        loads: Callable[[bytes], Any],
    ) -> None:
        self.name = name
        self.marker = marker
        self._dumps = dumps
        self._loads = loads

    def encode(self, value: Any) -> bytes:
        """Return ``value`` as bytes led by this codec's marker.

        A value the codec cannot represent raises ``TypeError``: that is a bug in a
        cache serializer (it returned something not JSON-able), not a cache failure.
        """
        try:
            return self.marker + self._dumps(value)
        except (TypeError, ValueError, OverflowError) as error:
            raise TypeError(
                f"the {self.name} codec cannot encode this value ({error}); cache "
                "serializers must return JSON-able data (use field_to_json for dates, "
                "decimals, UUIDs and related objects)"
            ) from error

    def decode(self, data: bytes) -> Any:
        """Return the value encoded in ``data``, or raise :class:`CorruptValue`.

        Bytes without this codec's marker, or that fail to parse, are corrupt as far as
        this process is concerned; the core counts them as a miss and rewrites them.
        """
        raw = bytes(data)
        if not raw.startswith(self.marker):
            raise CorruptValue(
                f"value does not start with the {self.name} codec marker {self.marker!r}"
                f" (starts with {raw[: len(self.marker)]!r})"
            )
        try:
            return self._loads(raw[len(self.marker) :])
        except Exception as error:  # each library raises its own error types
            raise CorruptValue(f"{self.name} could not decode the value: {error}") from error

    def __repr__(self) -> str:
        return f"<Codec {self.name}>"


def _json_codec() -> Codec:
    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Codec(
        "json",
        b"J1",
        lambda value: encoder.encode(value).encode("utf-8"),
        json.loads,
    )


def _orjson_codec() -> Codec:
    import orjson

    return Codec("orjson", b"O1", orjson.dumps, orjson.loads)


def _msgpack_codec() -> Codec:
    import msgpack

    def dumps(value: Any) -> bytes:
        return msgpack.packb(value, use_bin_type=True)

    def loads(data: bytes) -> Any:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)

    return Codec("msgpack", b"M1", dumps, loads)


_FACTORIES: dict[str, Callable[[], Codec]] = {
    "json": _json_codec,
    "orjson": _orjson_codec,
    "msgpack": _msgpack_codec,
}
CODEC_CHOICES: tuple[str, ...] = tuple(_FACTORIES)


def get_codec(name: str | None = None) -> Codec:
    """Return the codec called ``name`` (default: the ``DRF_INSTCACHE_CODEC`` setting).

    Raises :class:`ImproperlyConfigured` for an unknown name, or when the library a
    codec needs is not installed.
    """
    if name is None:
        return _configured_codec()
    if not isinstance(name, str) or name.lower() not in _FACTORIES:
        raise ImproperlyConfigured(
            f"{CODEC_SETTING} {name!r} is not a codec; choose one of {', '.join(CODEC_CHOICES)}"
        )
    return _build_codec(name.lower())


@functools.cache
def _build_codec(name: str) -> Codec:
    """Build each codec once per process (its library is imported on first use)."""
    try:
        return _FACTORIES[name]()
    except ModuleNotFoundError as error:
        raise ImproperlyConfigured(
            f"{CODEC_SETTING} {name!r} needs the {error.name!r} package: "
            "pip install 'drf-instcache[fast]'"
        ) from error


def _configured_codec() -> Codec:
    """The codec named by the settings, read at each call so override_settings applies."""
    from drf_instcache.settings import get_setting

    return get_codec(get_setting("CODEC", DEFAULT_CODEC) or DEFAULT_CODEC)


def resolve_codec(codec: str | Codec | None) -> Codec:
    """Accept a Codec, a codec name, or None (the configured codec)."""
    if isinstance(codec, Codec):
        return codec
    if codec is None:
        return _configured_codec()
    return get_codec(codec)
