"""Keep cached instances current: model signals -> commit -> invalidation cascade.

``connect(MyCache)`` listens to the save, delete and many-to-many signals of every model
the cache class serializes. Nothing is written when a signal fires: the refresh runs
when the transaction commits (``transaction.on_commit``), so a rolled-back write never
reaches the cache, and it reloads the committed rows, so it cannot cache a state other
requests never saw.

An invalidator says which entries embed an instance, from the instance's *current*
relations. Two writes change those relations away from what the cache still shows:

* an update that moves a foreign key (a Choice moved to another Question): the old
  Question lists the Choice until refreshed, and only the row as it was names it;
* a delete: Django removes many-to-many rows without sending ``m2m_changed``, so after
  the delete nothing names the Users whose ``votes`` listed the deleted Choice.

So ``pre_save`` (for updates, one loader call) and ``pre_delete`` run the invalidator
on the row as it was and keep what it names; the refresh after commit covers both the
old and the new relations.

The cascade (an update returns the ``(model, pk, version)`` triples to refresh next) is
followed with a work queue, not recursion, and refreshes each entry once, so deep
chains and cyclic invalidators both terminate. With ``DRF_INSTCACHE_ASYNC = True`` the
refreshes run as the Celery task :func:`drf_instcache.tasks.update_cache_task`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.apps import apps
from django.core import checks
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from drf_instcache import settings as instcache_settings
from drf_instcache.core.classes import cache_class_path
from drf_instcache.core.relations import m2m_field, m2m_through
from drf_instcache.core.strategy import MODEL_FUNCTIONS, OPTIONAL_MODEL_FUNCTIONS, BaseCache
from drf_instcache.exceptions import ImproperlyConfigured
from drf_instcache.invalidation.bulk.state import collect_delete
from drf_instcache.invalidation.bulk.state import handled as bulk_handled
from drf_instcache.invalidation.cascade import (
    Job,
    Named,
    Refresh,
    async_task,
    named_by_invalidator,
    runs_async,
    schedule,
    versions_of,
)

logger = logging.getLogger(__name__)


STALE_ATTRIBUTE = "_instcache_stale"
"""Instance attribute carrying what ``pre_save``/``pre_delete`` found to its post signal."""

ModelSpec = type[Model] | str


# -- the cascade ---------------------------------------------------------------------------


# -- running after commit ---------------------------------------------------------------


# -- receivers ----------------------------------------------------------------------------
def _model_name(model: type[Model]) -> str:
    return model._meta.model_name or model.__name__.lower()


def _stash(instance: Model, cache_class: type[BaseCache], version: str | None, stale: Named):
    instance.__dict__.setdefault(STALE_ATTRIBUTE, {})[(cache_class, version)] = stale


def _unstash(instance: Model, cache_class: type[BaseCache], version: str | None) -> Named:
    return instance.__dict__.get(STALE_ATTRIBUTE, {}).pop((cache_class, version), Named())


def _guarded(what: str, compute: Callable[[], Named]) -> Named:
    """Run a pre-write computation; a cache bug must not make the write itself fail."""
    try:
        return compute()
    except Exception:
        logger.exception("drf-instcache: %s failed; related entries may stay stale", what)
        return Named()


class _Receivers:
    """The signal receivers of one connected (cache class, version)."""

    def __init__(self, cache_class: type[BaseCache], version: str | None) -> None:
        self.cache_class = cache_class
        self.version = version

    def is_cached(self, model: type[Model]) -> bool:
        return model in _connected.get((self.cache_class, self.version), ())

    def pre_save(self, sender: type[Model], instance: Model, raw: bool = False, **kwargs):
        if raw or instance._state.adding or instance.pk is None:
            return
        if not instcache_settings.enabled():
            return
        cache, name, pk = self.cache_class(), _model_name(sender), instance.pk

        def load_old(version: str) -> Any:
            loader = cache.model_function(name, version, "loader")
            return loader(pk) if loader is not None else None

        stale = _guarded(
            f"reading the old {name} {pk!r}",
            lambda: named_by_invalidator(cache, name, self.version, load_old),
        )
        _stash(instance, self.cache_class, self.version, stale)

    def post_save(self, sender: type[Model], instance: Model, raw: bool = False, using=None, **kw):
        if raw:  # loaddata: fixtures are not the application changing data
            return
        stale = _unstash(instance, self.cache_class, self.version)
        if not instcache_settings.enabled():
            return
        own = Refresh(_model_name(sender), instance.pk, self.version)
        job = Job(self.cache_class, [own, *stale.refreshes], raw_keys=stale.raw_keys)
        schedule(using, job)

    def pre_delete(self, sender: type[Model], instance: Model, **kwargs):
        if not instcache_settings.enabled() or collect_delete(instance, kwargs.get("using")):
            return  # invalidated with the other rows of its deletion, in one batch
        cache, name = self.cache_class(), _model_name(sender)
        stale = _guarded(
            f"invalidating the deleted {name} {instance.pk!r}",
            lambda: named_by_invalidator(cache, name, self.version, lambda version: instance),
        )
        _stash(instance, self.cache_class, self.version, stale)

    def post_delete(self, sender: type[Model], instance: Model, using=None, **kwargs):
        stale = _unstash(instance, self.cache_class, self.version)
        if not instcache_settings.enabled() or bulk_handled(instance):
            return
        # Django sets instance.pk to None once the delete is over: keep it as it is now.
        snapshot = copy.copy(instance)
        own = Refresh(_model_name(sender), instance.pk, self.version)
        job = Job(
            self.cache_class, [own, *stale.refreshes], deleted=snapshot, raw_keys=stale.raw_keys
        )
        schedule(using, job)

    def m2m_receiver(self, relation: Any) -> Callable[..., None]:
        def on_change(sender, instance, action, reverse, model, pk_set, using=None, **kw):
            if action not in ("post_add", "post_remove", "pre_clear"):
                return
            if not instcache_settings.enabled():
                return
            refreshes = []
            if self.is_cached(type(instance)):
                refreshes.append(Refresh(_model_name(type(instance)), instance.pk, self.version))
            if self.is_cached(model):
                if action == "pre_clear":  # post_clear has no pk_set: read it while we can
                    related = _related_pks_before_clear(relation, sender, instance, reverse, using)
                else:
                    related = list(pk_set or ())
                refreshes.extend(Refresh(_model_name(model), pk, self.version) for pk in related)
            if refreshes:
                schedule(using, Job(self.cache_class, refreshes))

        return on_change


def _related_pks_before_clear(
    relation: Any, through: type[Model], instance: Model, reverse: bool, using: str | None
) -> list[Any]:
    """The pks a ``clear()`` is about to unlink from ``instance``."""
    source, target = relation.m2m_field_name(), relation.m2m_reverse_field_name()
    if reverse:
        source, target = target, source
    target_column = getattr(through._meta.get_field(target), "attname", target)
    return list(
        through._default_manager.using(using)
        .filter(**{source: instance.pk})
        .values_list(target_column, flat=True)
    )


# -- connect / disconnect -----------------------------------------------------------------
_connected: dict[tuple[type[BaseCache], str | None], set[type[Model]]] = {}
"""The models each connected (cache class, version) refreshes; the m2m receivers read it."""


def connected() -> dict[tuple[type[BaseCache], str | None], set[type[Model]]]:
    """The models each connected ``(cache class, version)`` refreshes."""
    return _connected


_MODEL_SIGNALS = (
    ("pre_save", pre_save),
    ("post_save", post_save),
    ("pre_delete", pre_delete),
    ("post_delete", post_delete),
)


def _resolve_model(spec: ModelSpec) -> type[Model]:
    if isinstance(spec, str):
        try:
            return apps.get_model(spec)
        except (LookupError, ValueError) as error:
            raise ImproperlyConfigured(
                f"cannot connect cache signals for {spec!r}: {error}"
            ) from error
    return spec


def cached_models(cache_class: type[BaseCache], version: str | None = None) -> list[type[Model]]:
    """The installed models whose names the cache class serializes (in any version).

    The cache keys instances by model name alone, so two installed models sharing a
    name are ambiguous: pass ``models=`` to :func:`connect` to choose.
    """
    cache = cache_class()
    names: set[str] = set()
    for each in versions_of(cache, version):
        names.update(name.lower() for name in cache.known_models(each))
    by_name: dict[str, list[type[Model]]] = {}
    for model in apps.get_models():
        by_name.setdefault(_model_name(model), []).append(model)
    chosen = []
    for name in sorted(names):
        matches = by_name.get(name, [])
        if len(matches) != 1:
            found = ", ".join(model._meta.label for model in matches) or "none is installed"
            raise ImproperlyConfigured(
                f"{cache_class.__name__} caches {name!r}, which must name exactly one "
                f"installed model ({found}): pass models=[...] to connect()"
            )
        chosen.extend(matches)
    return chosen


def _models(cache_class, models: Iterable[ModelSpec] | None, version) -> list[type[Model]]:
    if models is None:
        return cached_models(cache_class, version)
    return [_resolve_model(spec) for spec in models]


def _uid(cache_class: type[BaseCache], version: str | None, signal: str, model: type[Model]):
    path = cache_class_path(cache_class)
    return f"drf_instcache:{path}:{version or '*'}:{signal}:{model._meta.label}"


def m2m_relations(models: Iterable[type[Model]]) -> dict[type[Model], Any]:
    """Through model -> its ManyToManyField, for every m2m relation touching ``models``."""
    relations: dict[type[Model], Any] = {}
    for model in models:
        for each in model._meta.get_fields(include_hidden=True):
            if each.many_to_many:
                # The forward field (on this model) or the field a reverse relation mirrors.
                relations[m2m_through(each)] = m2m_field(each)
    return relations


def connect(
    cache_class: type[BaseCache],
    models: Iterable[ModelSpec] | None = None,
    version: str | None = None,
) -> list[type[Model]]:
    """Keep ``cache_class``'s entries current when ``models`` change; returns the models.

    ``models`` defaults to every installed model the cache class serializes (classes or
    ``"app_label.Model"`` strings); ``version`` limits refreshes to one version (default:
    all). Receivers carry dispatch uids, so connecting twice changes nothing.
    """
    if runs_async():
        async_task()  # fail at start-up, not at the first write, when Celery is missing
    chosen = _models(cache_class, models, version)
    receivers = _Receivers(cache_class, version)
    for model in chosen:
        for name, signal in _MODEL_SIGNALS:
            signal.connect(
                getattr(receivers, name),
                sender=model,
                weak=False,
                dispatch_uid=_uid(cache_class, version, name, model),
            )
    _connected.setdefault((cache_class, version), set()).update(chosen)
    for through, relation in m2m_relations(chosen).items():
        m2m_changed.connect(
            receivers.m2m_receiver(relation),
            sender=through,
            weak=False,
            dispatch_uid=_uid(cache_class, version, "m2m_changed", through),
        )
    return chosen


# -- system check -------------------------------------------------------------------------
_ABSENT = object()


def check_connected_cache_classes() -> list[checks.Error]:
    """Every model connected with :func:`connect` must have its cache functions.

    For each (model, version) the cache class must define ``serializer``, ``loader`` and
    ``invalidator`` (a function each, or all three set to None for "known but not
    cached"); without them the signal receivers would fail at the first write, where the
    error only shows up in a log.
    """
    errors: list[checks.Error] = []
    for (cache_class, version), models in sorted(
        _connected.items(), key=lambda item: (cache_class_path(item[0][0]), item[0][1] or "")
    ):
        for model in sorted(models, key=lambda model: model._meta.label):
            name = _model_name(model)
            for each in [version] if version else list(cache_class.versions):
                errors.extend(_missing_functions(cache_class, model, name, each))
    return errors


def _missing_functions(
    cache_class: type[BaseCache], model: type[Model], name: str, version: str
) -> list[checks.Error]:
    prefix = f"{name}_{version}_"
    found = {
        function: getattr(cache_class, prefix + function, _ABSENT)
        for function in (*MODEL_FUNCTIONS, *OPTIONAL_MODEL_FUNCTIONS)
    }
    missing = [prefix + f for f in MODEL_FUNCTIONS if found[f] is _ABSENT]
    wrong = [
        prefix + function
        for function, value in found.items()
        if value is not _ABSENT and value is not None and not callable(value)
    ]
    where = f"{cache_class.__name__} (connected to {model._meta.label} by signals.connect())"
    if len(missing) == len(MODEL_FUNCTIONS):
        return [
            checks.Error(
                f"{where} has no cache functions for model {name!r} in version {version!r}.",
                hint=f"Define {', '.join(missing)} on {cache_class.__name__} (set all three "
                "to None for a model that is not cached), or leave the model out of connect().",
                obj=cache_class,
                id="drf_instcache.E004",
            )
        ]
    errors = []
    if missing:
        errors.append(
            checks.Error(
                f"{where} is missing {', '.join(missing)}.",
                hint=f"Define {' and '.join(missing)} on {cache_class.__name__}, or set "
                f"{'them' if len(missing) > 1 else 'it'} to None.",
                obj=cache_class,
                id="drf_instcache.E004",
            )
        )
    if wrong:
        errors.append(
            checks.Error(
                f"{where}: {', '.join(wrong)} must be a method or None.",
                hint=f"Make {', '.join(wrong)} a method of {cache_class.__name__}.",
                obj=cache_class,
                id="drf_instcache.E004",
            )
        )
    return errors


def disconnect(
    cache_class: type[BaseCache],
    models: Iterable[ModelSpec] | None = None,
    version: str | None = None,
) -> None:
    """Undo :func:`connect` with the same arguments."""
    chosen = _models(cache_class, models, version)
    for model in chosen:
        for name, signal in _MODEL_SIGNALS:
            signal.disconnect(sender=model, dispatch_uid=_uid(cache_class, version, name, model))
    remaining = _connected.get((cache_class, version), set()) - set(chosen)
    if remaining:
        _connected[(cache_class, version)] = remaining
    else:
        _connected.pop((cache_class, version), None)
    still_needed = m2m_relations(remaining)
    for through in m2m_relations(chosen):
        if through not in still_needed:
            m2m_changed.disconnect(
                sender=through, dispatch_uid=_uid(cache_class, version, "m2m_changed", through)
            )
