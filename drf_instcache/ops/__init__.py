"""Operations: warm, clear, verify and inspect the cache (:mod:`.maintenance`), discovery of
what it holds (:mod:`.discovery`), and the fast-path checks (:mod:`.view_checks`).

The maintenance API is re-exported here, its home before the package existed.
"""

from drf_instcache.ops.maintenance import (
    CORRUPT,
    DEFAULT_BATCH_SIZE,
    STALE,
    UNEXPECTED,
    Difference,
    Inspection,
    Progress,
    VerifyReport,
    WarmReport,
    backend_of,
    clear,
    clear_namespace,
    differing_fields,
    fresh_entry,
    inspect,
    load_rows,
    pk_batches,
    row_count,
    server_key,
    verify,
    warm,
)

__all__ = [
    "CORRUPT",
    "DEFAULT_BATCH_SIZE",
    "STALE",
    "UNEXPECTED",
    "Difference",
    "Inspection",
    "Progress",
    "VerifyReport",
    "WarmReport",
    "backend_of",
    "clear",
    "clear_namespace",
    "differing_fields",
    "fresh_entry",
    "inspect",
    "load_rows",
    "pk_batches",
    "row_count",
    "server_key",
    "verify",
    "warm",
]
