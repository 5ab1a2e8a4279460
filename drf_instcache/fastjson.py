"""Face of :mod:`drf_instcache.fastpath.fastjson`, kept so the old import path works."""

from drf_instcache.fastpath.fastjson import (
    Rendered,
    RenderedItems,
    RenderedObject,
    SplicingJSONRenderer,
    decode,
    encode_representation,
    materialize,
    splices,
    with_splicing,
)

__all__ = [
    "Rendered",
    "RenderedItems",
    "RenderedObject",
    "SplicingJSONRenderer",
    "decode",
    "encode_representation",
    "materialize",
    "splices",
    "with_splicing",
]
