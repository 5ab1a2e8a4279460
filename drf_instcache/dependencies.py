"""Face of :mod:`drf_instcache.fastpath.dependencies`, kept so the old import path works."""

from drf_instcache.fastpath.analysis import analyze, reads_context
from drf_instcache.fastpath.dependencies import (
    FORWARD,
    M2M,
    REVERSE,
    Analysis,
    Dependency,
    Finding,
    Step,
    is_column,
    parse_path,
    query_step,
    relation_step,
    walk,
)

__all__ = [
    "FORWARD",
    "M2M",
    "REVERSE",
    "Analysis",
    "Dependency",
    "Finding",
    "Step",
    "analyze",
    "is_column",
    "parse_path",
    "query_step",
    "reads_context",
    "relation_step",
    "walk",
]
