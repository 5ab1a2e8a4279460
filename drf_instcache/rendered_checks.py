"""Face of :mod:`drf_instcache.ops.view_checks`, kept so the old import path works."""

from drf_instcache.ops.view_checks import (
    HINT_CONNECT,
    HINT_CONTEXT,
    HINT_OPAQUE,
    HINT_PLAIN,
    check_rendered_views,
    check_view,
    fast_views_in_urlconf,
)

__all__ = [
    "HINT_CONNECT",
    "HINT_CONTEXT",
    "HINT_OPAQUE",
    "HINT_PLAIN",
    "check_rendered_views",
    "check_view",
    "fast_views_in_urlconf",
]
