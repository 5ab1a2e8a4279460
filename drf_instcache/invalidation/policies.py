"""Cascade policies: refresh what an invalidator names, or drop it unloaded.

``refresh`` (the default, the predecessor's behaviour) reloads each named entry that is
cached and rewrites it when its representation changed; an unchanged one stops the
cascade. It keeps entries warm, at the cost of a batch load per model and level: the
choice for read-heavy data. ``drop`` deletes the named entries in one ``delete_many``
and loads nothing; readers refill them in batch. It is the cheaper write for
write-heavy data, or where one row is shown by thousands of others, and it stops the
cascade at the dropped entries (their own dependents hold them by primary key).

Choose per process with ``DRF_INSTCACHE_CASCADE`` and per model with a cache class's
``cascade_policies = {"book": "drop"}`` (the model whose entries are named).
"""

from __future__ import annotations

from typing import Any

from django.core import checks

from drf_instcache import settings as instcache_settings
from drf_instcache.exceptions import ImproperlyConfigured

CASCADE_SETTING = "CASCADE"
"""``DRF_INSTCACHE_CASCADE``: ``"refresh"`` (default) or ``"drop"``."""

REFRESH, DROP = "refresh", "drop"
POLICIES = (REFRESH, DROP)


def _valid(value: Any, where: str) -> str:
    if value not in POLICIES:
        raise ImproperlyConfigured(
            f"{where} is {value!r}; expected one of {', '.join(map(repr, POLICIES))}"
        )
    return str(value)


def default_policy() -> str:
    """The process-wide policy, ``DRF_INSTCACHE_CASCADE``."""
    return _valid(instcache_settings.get_setting(CASCADE_SETTING, REFRESH), "DRF_INSTCACHE_CASCADE")


class CascadePolicies:
    """The policy of each model a cache class names, read once per cascade."""

    def __init__(self, cache: Any) -> None:
        self.default = default_policy()
        where = f"{type(cache).__name__}.cascade_policies"
        self.per_model = {
            str(name).lower(): _valid(value, f"{where}[{name!r}]")
            for name, value in (getattr(cache, "cascade_policies", None) or {}).items()
        }

    def drops(self, model_name: str) -> bool:
        """Whether entries of ``model_name`` named by an invalidator are dropped unloaded."""
        return self.per_model.get(model_name.lower(), self.default) == DROP


def check_cascade_policies(cache_classes: Any = ()) -> list[checks.Error]:
    """The setting and each connected cache class's ``cascade_policies`` must be known."""
    errors: list[checks.Error] = []
    try:
        default_policy()
    except ImproperlyConfigured as error:
        errors.append(
            checks.Error(
                str(error),
                hint="Set DRF_INSTCACHE_CASCADE to 'refresh' (reload what an invalidator "
                "names) or 'drop' (delete it unloaded), or leave it unset.",
                id="drf_instcache.E008",
            )
        )
        return errors
    for cache_class in cache_classes:
        try:
            CascadePolicies(cache_class)
        except ImproperlyConfigured as error:
            errors.append(
                checks.Error(
                    str(error),
                    hint="Map model names to 'refresh' or 'drop'.",
                    obj=cache_class,
                    id="drf_instcache.E008",
                )
            )
    return errors
