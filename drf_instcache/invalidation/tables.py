"""Table invalidation: every committed write bumps the generations of its tables.

A cached list-query result (:mod:`drf_instcache.fastpath.listqueries`) is served only
while the generations it recorded still stand; a save, delete or many-to-many change
deletes the generations of the model's tables once the transaction commits. The
receivers are connected only while ``DRF_INSTCACHE_CACHE_LIST_QUERIES`` is on, one per
model and never on Django's own many-to-many tables: a ``post_delete`` receiver costs
a model Django's fast delete (one ``DELETE``, against a ``SELECT`` of the rows and a
``DELETE`` per hundred of them with a signal per row).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.core.signals import setting_changed
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save

from drf_instcache.core import transactions
from drf_instcache.core.classes import default_cache_class
from drf_instcache.fastpath.listqueries import enabled, generation_key
from drf_instcache.invalidation.bulk.state import handled as bulk_handled


def tables_of(model: type[Model]) -> list[str]:
    """The tables a write to ``model`` changes: its own and its parents' (multi-table)."""
    meta = model._meta
    tables = [meta.db_table]
    tables += [parent._meta.db_table for parent in meta.get_parent_list()]
    return list(dict.fromkeys(tables))


def tables_changed(tables: Iterable[str]) -> None:
    """Invalidate every cached list query reading ``tables`` (now; after a commit).

    The generations are deleted through the core, so a failed delete is retried as soon
    as the backend answers again.
    """
    core = default_cache_class()()
    backend = core.backend
    if backend is None:
        return
    core.store(backend).delete([generation_key(table) for table in tables], invalidating=True)


def _schedule(model: type[Model], using: str | None) -> None:
    if not enabled():
        return
    tables = tables_of(model)
    transactions.after_commit(lambda: tables_changed(tables), using=using)


def _on_save_or_delete(sender: type[Model], using: str | None = None, **kwargs: Any) -> None:
    if not bulk_handled(kwargs.get("instance")):  # a bulk delete bumps its tables once
        _schedule(sender, using)


def _on_m2m_changed(sender: type[Model], action: str, using: str | None = None, **kwargs):
    if action in ("post_add", "post_remove", "post_clear"):
        _schedule(sender, using)


_UID = "drf_instcache.listqueries"


def listen() -> None:
    """Connect the generation receivers while list queries are cached; follow the setting
    (the app config calls this once)."""
    _follow_setting()
    setting_changed.connect(_on_setting_changed, weak=False, dispatch_uid=f"{_UID}:setting")


def _follow_setting() -> None:
    """Receivers per model, not for every sender: the many-to-many tables Django creates
    keep their fast deletes (their changes come as ``m2m_changed``, and a deletion's
    batch names them)."""
    on = enabled()
    for model in apps.get_models():
        if model._meta.auto_created:
            continue
        for signal, name in ((post_save, "post_save"), (post_delete, "post_delete")):
            uid = f"{_UID}:{name}:{model._meta.label}"
            if on:
                signal.connect(_on_save_or_delete, sender=model, weak=False, dispatch_uid=uid)
            else:
                signal.disconnect(sender=model, dispatch_uid=uid)
    if on:
        m2m_changed.connect(_on_m2m_changed, weak=False, dispatch_uid=f"{_UID}:m2m_changed")
    else:
        m2m_changed.disconnect(dispatch_uid=f"{_UID}:m2m_changed")


def _on_setting_changed(setting: str, **kwargs: Any) -> None:
    if setting in ("DRF_INSTCACHE_CACHE_LIST_QUERIES", "USE_DRF_INSTANCE_CACHE"):
        _follow_setting()
