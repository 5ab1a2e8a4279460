"""Instance entries: a representation as cached bytes, led by the stamp of its model.

Every entry records which model and version it represents (the reserved field
``@entry``), so a value found under a key but written for another model, another
version or by an older release reads as unusable, never as someone else's data.
"""

from __future__ import annotations

from typing import Any

from drf_instcache.core.codecs import Codec
from drf_instcache.exceptions import CorruptValue

STAMP_FIELD = "@entry"
"""Reserved field of every cached representation: the model and version it is for."""


def stamp(model_name: str, version: str) -> str:
    """What an entry records about itself: ``"<model>:<version>"``."""
    return f"{model_name.lower()}:{version}"


def encode(codec: Codec, native: dict[str, Any], stamp: str) -> bytes:
    """The bytes cached for a serializer's representation, stamped."""
    if STAMP_FIELD in native:
        raise ValueError(f"cache serializers must not return the reserved field {STAMP_FIELD!r}")
    return codec.encode({STAMP_FIELD: stamp, **native})


def decode(codec: Codec, raw: bytes, stamp: str) -> dict[str, Any]:
    """The representation in cached bytes, or :class:`CorruptValue` if unusable."""
    data = codec.decode(raw)
    if not isinstance(data, dict):
        raise CorruptValue(f"cached value is a {type(data).__name__}, not a dict")
    found = data.pop(STAMP_FIELD, None)
    if found != stamp:
        if found is None:
            raise CorruptValue("cached value has no entry stamp (an older format)")
        raise CorruptValue(f"cached value is an entry of {found!r}, not of {stamp!r}")
    return data


def same(codec: Codec, raw: bytes, encoded: bytes) -> bool:
    """Whether a cached value already holds this representation."""
    if bytes(raw) == encoded:
        return True
    try:
        return codec.decode(raw) == codec.decode(encoded)
    except CorruptValue:
        return False
