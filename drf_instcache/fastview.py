"""Face of :mod:`drf_instcache.drf.fastviews`, kept so the old import path works."""

from drf_instcache.drf.fastviews import (
    filtered_queryset,
    list_response,
    refuse,
    retrieve_response,
    usable_plan,
    variant_of,
)

__all__ = [
    "filtered_queryset",
    "list_response",
    "refuse",
    "retrieve_response",
    "usable_plan",
    "variant_of",
]
