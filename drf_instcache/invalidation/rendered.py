"""Drop rendered entries when the rows they show change: model signals -> commit -> delete.

For every connected plan (see :func:`drf_instcache.rendered.connect`):

* a save or delete of one of its instances deletes that instance's entries;
* a save or delete of a row the representation embeds (a dependency, see
  :mod:`drf_instcache.dependencies`) deletes the entries of the *owners* that show it,
  found with one query per dependency (``Question.objects.filter(choices__voters=u)``);
* a many-to-many change deletes the entries of the owners on the changed side.

Membership can change with a write (a Choice moved to another Question, a deleted row
whose many-to-many rows Django removes without a signal), so the owners are looked up
both *before* the write (``pre_save`` when a link column changed, ``pre_delete``,
``pre_clear``) and *after* it commits. Deletions run on commit, like the instance
cache's refreshes: a rolled-back write deletes nothing, and a reader that loaded the old
row before the commit has its fill refused by the deleted lease.

Saves of a row shown only by primary key (``choices = PrimaryKeyRelatedField(many=True)``)
invalidate nothing unless the link moved: editing a Choice's text leaves its Question's
entry alone. Bulk operations (``QuerySet.update``, ``bulk_create``) send no signals,
here as everywhere in Django: a model whose manager mixes in
:class:`~drf_instcache.invalidation.bulk.queryset.InstcacheQuerySetMixin` invalidates them
(a bulk delete's rows are then skipped here, handled in one batch); otherwise delete
those entries by hand (:func:`invalidate_instances`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import CASCADE, ForeignKey, Model
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from drf_instcache import settings as instcache_settings
from drf_instcache.backends.base import Backend
from drf_instcache.core import transactions
from drf_instcache.core.classes import default_cache_class
from drf_instcache.core.strategy import BaseCache
from drf_instcache.exceptions import BackendUnavailable
from drf_instcache.fastpath.dependencies import FORWARD, REVERSE, Dependency
from drf_instcache.fastpath.fetch import warn_unavailable
from drf_instcache.fastpath.plans import RenderedPlan, plan_for_view
from drf_instcache.invalidation.bulk.state import collect_delete
from drf_instcache.invalidation.bulk.state import handled as bulk_handled

logger = logging.getLogger(__name__)

_connect_lock = threading.Lock()

STASH_ATTRIBUTE = "_instcache_rendered_stale"
"""Instance attribute carrying what a pre_* receiver found to its post_* receiver."""

Stale = dict[RenderedPlan, set[str]]


def _core() -> Any:
    return default_cache_class()()


def add_pks(stale: Stale, plan: RenderedPlan, pks: Iterable[Any]) -> None:
    """Add ``pks`` to the entries of ``plan`` to delete."""
    stale.setdefault(plan, set()).update(str(pk) for pk in pks)


def owners(dependency: Dependency, pks: Iterable[Any], length: int | None = None, using=None):
    """Primary keys of the owners reaching ``pks`` through the first ``length`` steps."""
    pks = list(pks)
    length = len(dependency.steps) if length is None else length
    if not pks:
        return []
    if length == 0:
        return pks
    lookup = dependency.prefix_lookup(length)
    return list(
        dependency.owner._base_manager.using(using)
        .filter(**{f"{lookup}__in": pks})
        .order_by()
        .values_list("pk", flat=True)
        .distinct()
    )


class OwnerFinder:
    """:func:`owners` once per owner model, path and rows within one write.

    Several plans (a list view and a detail view of one model) often share a dependency:
    they share its query instead of sending it once each. ``collected``: every row of a
    deletion (Django's collector), by concrete model; owners deleted with the rows are
    read from it instead of asked for (:func:`deleted_with`).
    """

    def __init__(
        self,
        using: str | None = None,
        collected: Mapping[type[Model], Sequence[Model]] | None = None,
    ) -> None:
        self.using = using
        self.collected = collected
        self._found: dict[tuple[Any, ...], list[Any]] = {}

    def __call__(
        self, dependency: Dependency, pks: Iterable[Any], length: int | None = None
    ) -> list[Any]:
        pks = list(pks)
        length = len(dependency.steps) if length is None else length
        key = (dependency.owner, dependency.prefix_lookup(length), tuple(pks))
        found = self._found.get(key)
        if found is None:
            if self.collected and length == len(dependency.steps):
                found = deleted_with(dependency, pks, self.collected)
            if found is None:
                found = owners(dependency, pks, length, self.using)
            self._found[key] = found
        return found


def deleted_with(
    dependency: Dependency, pks: Sequence[Any], collected: Mapping[type[Model], Sequence[Model]]
) -> list[Any] | None:
    """The owners of deleted rows, when they go in the same deletion; None: ask the database.

    Owners holding a foreign key with ``on_delete=CASCADE`` to the deleted rows are all
    collected by Django (signals are connected for them, so it cannot fast-delete them):
    which of them point at ``pks`` is in the rows already, no query needed.
    """
    if len(dependency.steps) != 1 or dependency.steps[0].kind != FORWARD:
        return None
    rows = collected.get(dependency.owner._meta.concrete_model or dependency.owner)
    if rows is None:
        return None
    try:
        link = dependency.owner._meta.get_field(dependency.steps[0].lookup)
    except FieldDoesNotExist:
        return None
    if not isinstance(link, ForeignKey) or link.remote_field.on_delete is not CASCADE:
        return None
    if not link.target_field.primary_key:  # to_field: the column holds another value
        return None
    wanted = {str(pk) for pk in pks}
    return [row.pk for row in rows if str(getattr(row, link.attname)) in wanted]


@dataclass
class Job:
    """Entries to delete once the transaction commits: known now, or found then."""

    stale: Stale = field(default_factory=dict)
    lookups: list[tuple[RenderedPlan, Dependency, list[Any], int | None]] = field(
        default_factory=list
    )
    using: str | None = None

    def run(self) -> None:
        stale: Stale = {plan: set(pks) for plan, pks in self.stale.items()}
        find = OwnerFinder(self.using)
        for plan, dependency, pks, length in self.lookups:
            add_pks(stale, plan, find(dependency, pks, length))
        invalidate(_core(), stale)

    def schedule(self) -> None:
        if self.stale or self.lookups:
            transactions.after_commit(self.run, using=self.using)


def _stash(instance: Model, stale: Stale, moved: set[Dependency]) -> None:
    instance.__dict__[STASH_ATTRIBUTE] = (stale, moved)


def _unstash(instance: Model) -> tuple[Stale, set[Dependency]]:
    return instance.__dict__.pop(STASH_ATTRIBUTE, ({}, set()))


def _guarded(what: str, compute: Any) -> Any:
    """A cache bug must not make the write itself fail: log it and go on."""
    try:
        return compute()
    except Exception:
        logger.exception("drf-instcache: %s failed; rendered entries may stay stale", what)
        return None


# -- receivers -------------------------------------------------------------------------------
def _membership_dependencies(model: type[Model]) -> list[tuple[RenderedPlan, Dependency]]:
    """Dependencies on ``model`` whose last link is a column of ``model`` itself."""
    return [
        (plan, dependency)
        for plan, dependency in registry.dependents.get(model, ())
        if dependency.steps[-1].kind == REVERSE
    ]


def on_pre_save(sender: type[Model], instance: Model, raw: bool = False, using=None, **kw):
    if raw or instance._state.adding or instance.pk is None or not instcache_settings.enabled():
        return
    linked = _membership_dependencies(sender)
    if not linked:
        return

    def before() -> tuple[Stale, set[Dependency]]:
        column_of = {dependency: str(dependency.steps[-1].link_attname) for _, dependency in linked}
        columns = sorted(set(column_of.values()))
        old = sender._base_manager.using(using).filter(pk=instance.pk).values(*columns).first()
        stale: Stale = {}
        moved: set[Dependency] = set()
        find = OwnerFinder(using)
        for plan, dependency in linked:
            column = column_of[dependency]
            if old is not None and old[column] == getattr(instance, column):
                continue
            moved.add(dependency)
            add_pks(stale, plan, find(dependency, [instance.pk]))
        return stale, moved

    found = _guarded(f"reading the old {sender.__name__} {instance.pk!r}", before)
    if found is not None:
        _stash(instance, *found)


def on_post_save(
    sender: type[Model], instance: Model, created: bool = False, raw=False, using=None, **kw
):
    stale, moved = _unstash(instance)
    if raw or not instcache_settings.enabled():
        return
    job = Job(stale=stale, using=using)
    for plan in registry.own.get(sender, ()):
        add_pks(job.stale, plan, [instance.pk])
    for plan, dependency in registry.dependents.get(sender, ()):
        last = dependency.steps[-1]
        if dependency.embeds or (last.kind == REVERSE and (created or dependency in moved)):
            job.lookups.append((plan, dependency, [instance.pk], None))
    job.schedule()


def on_pre_delete(sender: type[Model], instance: Model, using=None, **kw):
    if not instcache_settings.enabled() or collect_delete(instance, using):
        return  # invalidated with the other rows of its deletion, in one batch

    def before() -> Stale:
        stale: Stale = {}
        find = OwnerFinder(using)
        for plan, dependency in registry.dependents.get(sender, ()):
            add_pks(stale, plan, find(dependency, [instance.pk]))
        return stale

    found = _guarded(f"finding what shows the deleted {sender.__name__}", before)
    if found is not None:
        _stash(instance, found, set())


def on_post_delete(sender: type[Model], instance: Model, using=None, **kw):
    stale, _ = _unstash(instance)
    if not instcache_settings.enabled() or bulk_handled(instance):
        return
    job = Job(stale=stale, using=using)
    for plan in registry.own.get(sender, ()):
        add_pks(job.stale, plan, [instance.pk])
    job.schedule()


def _sides(step: Any, instance: Model, reverse: bool, pk_set: Iterable[Any] | None):
    """The primary keys on the step's *source* side of a many-to-many change.

    ``reverse=False``: ``instance`` is of the model declaring the field and ``pk_set``
    of the other; a step traversed the declared way starts from the declaring model.
    """
    instance_is_source = step.forward_m2m != reverse
    return [instance.pk] if instance_is_source else list(pk_set or ())


def on_m2m_changed(sender, instance, action, reverse, model, pk_set, using=None, **kw):
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if not instcache_settings.enabled():
        return
    entries = registry.m2m.get(sender, ())
    if not entries:
        return
    if action == "pre_clear":
        pk_set = _related_before_clear(entries[0][1].steps[entries[0][2]], instance, reverse, using)
    job = Job(using=using)
    for plan, dependency, index in entries:
        source = _sides(dependency.steps[index], instance, reverse, pk_set)
        job.lookups.append((plan, dependency, source, index))
    job.schedule()


def _related_before_clear(step: Any, instance: Model, reverse: bool, using) -> list[Any]:
    """The pks a ``clear()`` is about to unlink from ``instance`` (post_clear has none)."""
    relation = step.source._meta.get_field(step.lookup)
    declared = relation if relation.concrete else relation.remote_field  # the ManyToManyField
    mine, theirs = declared.m2m_field_name(), declared.m2m_reverse_field_name()
    if reverse:
        mine, theirs = theirs, mine
    through = declared.remote_field.through
    column = through._meta.get_field(theirs).attname
    return list(
        through._default_manager.using(using)
        .filter(**{mine: instance.pk})
        .values_list(column, flat=True)
    )


# -- connecting ------------------------------------------------------------------------------
_RECEIVERS = (
    ("pre_save", pre_save, on_pre_save),
    ("post_save", post_save, on_post_save),
    ("pre_delete", pre_delete, on_pre_delete),
    ("post_delete", post_delete, on_post_delete),
)


def listen(plan: RenderedPlan) -> None:
    """Connect the receivers for every model and table ``plan`` depends on (idempotent)."""
    for model in plan.analysis.models():
        for name, signal, receiver in _RECEIVERS:
            signal.connect(
                receiver,
                sender=model,
                weak=False,
                dispatch_uid=f"drf_instcache.rendered:{name}:{model._meta.label}",
            )
    for through in plan.analysis.through_models():
        m2m_changed.connect(
            on_m2m_changed,
            sender=through,
            weak=False,
            dispatch_uid=f"drf_instcache.rendered:m2m:{through._meta.label}",
        )


def invalidate_instances(model: type[Model], pks: Iterable[Any]) -> int:
    """Delete the rendered entries of ``model`` rows and of everything showing them.

    For writes that send no signal (``QuerySet.update``, ``bulk_create``, raw SQL).
    Runs now, not on commit: call it after the transaction commits.
    """
    pks = list(pks)
    stale: Stale = {}
    for plan in registry.own.get(model, ()):
        add_pks(stale, plan, pks)
    find = OwnerFinder()
    for plan, dependency in registry.dependents.get(model, ()):
        add_pks(stale, plan, find(dependency, pks))
    return invalidate(_core(), stale)


@dataclass
class Registry:
    """Connected plans, indexed by the models whose writes concern them."""

    own: dict[type[Model], list[RenderedPlan]] = field(default_factory=dict)
    dependents: dict[type[Model], list[tuple[RenderedPlan, Dependency]]] = field(
        default_factory=dict
    )
    m2m: dict[type[Model], list[tuple[RenderedPlan, Dependency, int]]] = field(default_factory=dict)

    def add(self, plan: RenderedPlan) -> None:
        _append(self.own, plan.model, plan)
        for dependency in plan.analysis.dependencies:
            _append(self.dependents, dependency.target, (plan, dependency))
            for index, step in enumerate(dependency.steps):
                if step.through is not None:
                    _append(self.m2m, step.through, (plan, dependency, index))

    def plans(self) -> list[RenderedPlan]:
        return list(dict.fromkeys(plan for plans in self.own.values() for plan in plans))


def _append(mapping: dict[Any, list[Any]], key: Any, value: Any) -> None:
    values = mapping.setdefault(key, [])
    if value not in values:
        values.append(value)


registry = Registry()


def connect(*view_classes: type, serializer_class: type | None = None) -> list[RenderedPlan]:
    """Keep the rendered entries of these views current, whatever process writes.

    Call it where the project connects its signals (an ``AppConfig.ready()``), so a
    shell, a management command or a worker invalidates entries too, not only the web
    processes that served them. Connecting twice changes nothing. Returns the plans.
    """
    plans = []
    for view_class in view_classes:
        plan = plan_for_view(view_class, serializer_class)
        if not plan.connected:
            with _connect_lock:
                if not plan.connected:
                    registry.add(plan)
                    listen(plan)
                    plan.connected = True
        plans.append(plan)
    return plans


def is_connected(view_class: type) -> bool:
    """Whether some plan of ``view_class`` is registered for invalidation."""
    return any(view_class in plan.views for plan in registry.plans())


def entry_keys(
    backend: Backend, stale: Mapping[RenderedPlan, Iterable[Any]]
) -> tuple[list[str], list[str]]:
    """The keys of the stale entries, and the variant indexes that could not be read.

    Plans that vary are looked up in their index (one ``get_many`` for all of them);
    every token listed gets its key deleted.
    """
    keys: list[str] = []
    varying = [plan for plan in stale if plan.variants is not None]
    indexes: dict[str, bytes] = {}
    unreadable: list[str] = []
    if varying:
        index_keys = [plan.variants.key for plan in varying]  # type: ignore[union-attr]
        try:
            indexes = backend.get_many(index_keys)
        except BackendUnavailable as error:
            warn_unavailable("invalidation", error)
            unreadable = index_keys
    for plan, pks in stale.items():
        ids = [str(pk) for pk in pks]
        if plan.variants is None:
            keys.extend(plan.key(pk) for pk in ids)
            continue
        if plan.variants.key in unreadable:
            continue
        for token in plan.variants.tokens_in(indexes.get(plan.variants.key)):
            keys.extend(plan.key(pk, token) for pk in ids)
    return keys, unreadable


def invalidate(core: BaseCache, stale: Mapping[RenderedPlan, Iterable[Any]]) -> int:
    """Delete the rendered entries of ``{plan: pks}`` in every variant; return the count.

    When a varying plan's index cannot be read, the index itself is deleted (now, or as
    soon as the backend answers again): its variants then get new tokens and the old
    entries are never read again.
    """
    backend = core.backend
    stale = {plan: list(pks) for plan, pks in stale.items() if pks}
    if backend is None or not stale:
        return 0
    keys, unreadable = entry_keys(backend, stale)
    _delete_stale(core, backend, [*keys, *unreadable])
    return len(keys)


def _delete_stale(core: BaseCache, backend: Backend, keys: list[str]) -> None:
    """Delete keys that may hold stale data; the core retries them after an outage."""
    if keys:
        core.store(backend).delete(keys, invalidating=True)
