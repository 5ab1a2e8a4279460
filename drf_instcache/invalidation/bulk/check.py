"""System check ``drf_instcache.I030``: a cached model whose bulk writes invalidate nothing.

A model cached by a connected cache class or shown by a connected fast-path plan, whose
default manager's querysets lack the mixin, has ``update()``, ``bulk_update()`` and
``bulk_create()`` that leave entries stale without a word. The check says so at start-up
(an Info: a project may call :func:`~drf_instcache.invalidation.bulk.raw.invalidate`
itself); :data:`drf_instcache.checks.EVERY_CHECK` lists it.
"""

from __future__ import annotations

from django.core import checks
from django.db.models import Model

from drf_instcache.invalidation.bulk.queryset import has_mixin
from drf_instcache.invalidation.instances import connected
from drf_instcache.invalidation.rendered import registry


def watched_models() -> list[type[Model]]:
    """Models whose writes invalidate something: connected cache classes, fast-path plans."""
    found: set[type[Model]] = set()
    for models in list(connected().values()):
        found.update(models)
    found.update(registry.own)
    found.update(registry.dependents)
    return sorted(
        (model for model in found if not model._meta.auto_created),
        key=lambda model: model._meta.label,
    )


def check_bulk_managers() -> list[checks.CheckMessage]:
    """``drf_instcache.I030``: a cached model whose bulk writes invalidate nothing."""
    return [
        checks.Info(
            f"{model._meta.label} is cached, but its default manager's querysets lack "
            "InstcacheQuerySetMixin: its QuerySet.update(), bulk_update() and "
            "bulk_create() leave cached entries stale.",
            hint="Use objects = drf_instcache.bulk.InstcacheManager() (or mix "
            "InstcacheQuerySetMixin into its QuerySet class), or call "
            f"drf_instcache.bulk.install({model.__name__}) in an AppConfig.ready() for a "
            "model you cannot edit. See README, 'Bulk writes'.",
            obj=model,
            id="drf_instcache.I030",
        )
        for model in watched_models()
        if not has_mixin(model)
    ]
