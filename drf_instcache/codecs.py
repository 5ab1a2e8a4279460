"""Face of :mod:`drf_instcache.core.codecs`, kept so the old import path works."""

from drf_instcache.core.codecs import (
    CODEC_CHOICES,
    CODEC_SETTING,
    DEFAULT_CODEC,
    Codec,
    get_codec,
    resolve_codec,
)

__all__ = [
    "CODEC_CHOICES",
    "CODEC_SETTING",
    "DEFAULT_CODEC",
    "Codec",
    "get_codec",
    "resolve_codec",
]
