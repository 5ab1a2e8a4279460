"""Face of :mod:`drf_instcache.core.relations`, kept so the old import path works."""

from drf_instcache.core.relations import (
    forward_many_to_many,
    m2m_field,
    m2m_through,
)

__all__ = [
    "forward_many_to_many",
    "m2m_field",
    "m2m_through",
]
