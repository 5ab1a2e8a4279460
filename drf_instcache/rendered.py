"""Public face of the fast path's rendered entries: plans, ``connect``, ``fetch``, ``invalidate``.

Plans live in :mod:`drf_instcache.fastpath.plans`, the read-through in
:mod:`drf_instcache.fastpath.fetch`, the invalidation in
:mod:`drf_instcache.invalidation.rendered`.
"""

from drf_instcache.fastpath.fetch import Preread, fetch, read_ahead_keys
from drf_instcache.fastpath.plans import (
    DEFAULT_VERSION,
    KEY_NAMESPACE,
    Render,
    RenderedPlan,
    plan_for_view,
    view_model,
)
from drf_instcache.invalidation.rendered import (
    Registry,
    connect,
    entry_keys,
    invalidate,
    invalidate_instances,
    is_connected,
    registry,
)

__all__ = [
    "DEFAULT_VERSION",
    "KEY_NAMESPACE",
    "Preread",
    "Registry",
    "Render",
    "RenderedPlan",
    "connect",
    "entry_keys",
    "fetch",
    "invalidate",
    "invalidate_instances",
    "is_connected",
    "plan_for_view",
    "read_ahead_keys",
    "registry",
    "view_model",
]
