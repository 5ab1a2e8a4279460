"""Face of :mod:`drf_instcache.core.transactions`, kept so the old import path works."""

from drf_instcache.core.transactions import (
    after_commit,
    clear_baseline,
    dirty,
    in_transaction,
    install,
    set_baseline,
    unless_rolled_back,
)

__all__ = [
    "after_commit",
    "clear_baseline",
    "dirty",
    "in_transaction",
    "install",
    "set_baseline",
    "unless_rolled_back",
]
