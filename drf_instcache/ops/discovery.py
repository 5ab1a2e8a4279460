"""Find what the cache holds: which cache classes serialize which models.

``manage.py instcache`` acts on *targets*, one per (cache class, model), found in three
places so that a project needs no extra configuration:

1. the URL conf: every view using :class:`~drf_instcache.mixins.CachedViewMixin`
   contributes its cache class, its ``cache_version`` and its queryset's model;
2. the signal helpers: every cache class passed to :func:`drf_instcache.signals.connect`
   contributes the models it was connected for;
3. the optional setting ``DRF_INSTCACHE_CACHE_CLASSES``, a list of dotted paths of cache
   classes, for caches used outside views (every installed model they serialize).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db.models import Model
from django.urls import URLPattern, URLResolver, get_resolver

from drf_instcache import settings as instcache_settings
from drf_instcache.core.classes import default_cache_class, import_cache_class
from drf_instcache.core.strategy import BaseCache
from drf_instcache.drf.views import CachedViewMixin
from drf_instcache.exceptions import ImproperlyConfigured, UnknownModel
from drf_instcache.invalidation import instances

logger = logging.getLogger(__name__)

CACHE_CLASSES_SETTING = "DRF_INSTCACHE_CACHE_CLASSES"


@dataclass(frozen=True)
class Target:
    """One model cached by one cache class.

    ``versions`` are the cache versions served for it (a view's ``cache_version``, else
    the class's default version): ``warm`` fills those. ``sources`` say where it was
    found, for ``--help``-style listings and error messages.
    """

    cache_class: type[BaseCache]
    model: type[Model]
    versions: tuple[str, ...]
    sources: tuple[str, ...] = field(default=(), compare=False)

    @property
    def model_name(self) -> str:
        """The model name the cache keys use (lower case)."""
        return self.model.__name__.lower()

    @property
    def label(self) -> str:
        """``app_label.modelname``, e.g. ``polls.question``."""
        return self.model._meta.label_lower

    @property
    def cache_class_path(self) -> str:
        """Dotted path of the cache class."""
        return f"{self.cache_class.__module__}.{self.cache_class.__qualname__}"

    def cache(self) -> BaseCache:
        """A cache object of the target's class, on the configured backend."""
        return self.cache_class()

    def cached_versions(self) -> list[str]:
        """Every version of the cache class that has a serializer for the model.

        ``clear`` and ``verify`` cover all of them, since any may hold entries.
        """
        cache = self.cache()
        found = []
        for version in cache.versions:
            try:
                serializer = cache.model_function(self.model_name, version, "serializer")
            except UnknownModel:
                continue
            if serializer is not None:
                found.append(version)
        return found

    def __str__(self) -> str:
        return f"{self.label} ({self.cache_class.__name__})"


# -- the three sources ---------------------------------------------------------------------
def walk(patterns: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(route, callback)`` for every view in a URL conf, nested includes too."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _serializes(cache_class: type[BaseCache], model: type[Model], version: str) -> bool:
    try:
        return cache_class().model_function(model.__name__, version, "serializer") is not None
    except UnknownModel:
        return False


def from_urlconf(urlconf: str | None = None) -> list[Target]:
    """Targets of the views using ``CachedViewMixin`` in the URL conf."""

    targets = []
    for route, callback in walk(get_resolver(urlconf).url_patterns):
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if not (isinstance(view_class, type) and issubclass(view_class, CachedViewMixin)):
            continue
        if getattr(view_class, "cache_rendered", False):
            continue  # the fast path reads rendered entries, not instance entries
        initkwargs = getattr(callback, "initkwargs", None) or {}
        cache_class = initkwargs.get("cache_class", view_class.cache_class)
        if cache_class is BaseCache:
            cache_class = default_cache_class()
        queryset = initkwargs.get("queryset", getattr(view_class, "queryset", None))
        model = getattr(queryset, "model", None)
        if model is None:
            logger.debug(
                "%s at %r has no queryset attribute: name its cache class in %s",
                view_class.__name__,
                route,
                CACHE_CLASSES_SETTING,
            )
            continue
        version = initkwargs.get("cache_version", view_class.cache_version)
        version = cache_class().resolve_version(version)
        if _serializes(cache_class, model, version):
            targets.append(Target(cache_class, model, (version,), (f"url {route}",)))
    return targets


def from_signals() -> list[Target]:
    """Targets of the cache classes connected with :func:`drf_instcache.signals.connect`."""

    targets = []
    for (cache_class, version), models in list(instances.connected().items()):
        default = cache_class().resolve_version(version)
        for model in models:
            if _serializes(cache_class, model, default):
                targets.append(Target(cache_class, model, (default,), ("signals",)))
    return targets


def configured_cache_classes() -> list[type[BaseCache]]:
    """The cache classes ``DRF_INSTCACHE_CACHE_CLASSES`` names (dotted paths or classes)."""

    value = instcache_settings.get_setting("CACHE_CLASSES", None) or []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ImproperlyConfigured(
            f"{CACHE_CLASSES_SETTING} must be a list of dotted paths of cache classes, "
            f"e.g. ['myproject.cache.ApiCache'], not {value!r}"
        )
    classes = []
    for entry in value:
        if isinstance(entry, type) and issubclass(entry, BaseCache):
            classes.append(entry)
        elif isinstance(entry, str):
            try:
                classes.append(import_cache_class(entry))
            except ImproperlyConfigured as error:
                raise ImproperlyConfigured(f"{CACHE_CLASSES_SETTING}: {error}") from error
        else:
            raise ImproperlyConfigured(
                f"{CACHE_CLASSES_SETTING} entries must be dotted paths, not {entry!r}"
            )
    return classes


def from_setting() -> list[Target]:
    """Targets of ``DRF_INSTCACHE_CACHE_CLASSES``: every installed model each serializes."""

    targets = []
    for cache_class in configured_cache_classes():
        version = cache_class.default_version
        for model in instances.cached_models(cache_class):
            if _serializes(cache_class, model, version):
                targets.append(Target(cache_class, model, (version,), ("setting",)))
    return targets


def _merge(targets: Iterable[Target]) -> list[Target]:
    """One target per (cache class, model), with the versions and sources of all."""
    merged: dict[tuple[type[BaseCache], type[Model]], Target] = {}
    for target in targets:
        key = (target.cache_class, target.model)
        seen = merged.get(key)
        if seen is None:
            merged[key] = target
            continue
        merged[key] = Target(
            target.cache_class,
            target.model,
            tuple(dict.fromkeys(seen.versions + target.versions)),
            tuple(dict.fromkeys(seen.sources + target.sources)),
        )
    return sorted(merged.values(), key=lambda t: (t.label, t.cache_class_path))


def discover(urlconf: str | None = None) -> list[Target]:
    """Every target, from the URL conf, the connected signals and the setting."""
    apps.check_apps_ready()
    return _merge([*from_urlconf(urlconf), *from_signals(), *from_setting()])


# -- choosing targets by name ----------------------------------------------------------------
def _names_of(target: Target) -> set[str]:
    return {target.model_name, target.label, target.model._meta.model_name or ""}


def select(targets: Sequence[Target], names: Sequence[str]) -> list[Target]:
    """The targets named by ``names`` (all of them when ``names`` is empty).

    A name is a model name (``question``) or ``app_label.model`` (``polls.question``),
    case-insensitive. An unknown name raises :class:`UnknownModel` listing the known
    ones.
    """
    if not names:
        return list(targets)
    chosen: list[Target] = []
    unknown = []
    for name in names:
        wanted = name.lower()
        matches = [target for target in targets if wanted in _names_of(target)]
        if not matches:
            unknown.append(name)
        chosen.extend(target for target in matches if target not in chosen)
    if unknown:
        raise UnknownModel(
            f"unknown model{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"known models: {known_names(targets)}"
        )
    return chosen


def known_names(targets: Sequence[Target]) -> str:
    """The models of ``targets`` as a readable list, for messages."""
    labels = sorted({target.label for target in targets})
    return ", ".join(labels) or (
        f"none (no CachedViewMixin view with a queryset, no cache class connected with "
        f"drf_instcache.signals.connect, and {CACHE_CLASSES_SETTING} is empty)"
    )


def check_settings() -> list[Any]:
    """System check: ``DRF_INSTCACHE_CACHE_CLASSES`` names importable cache classes."""
    from django.core.checks import Error

    try:
        configured_cache_classes()
    except ImproperlyConfigured as error:
        return [
            Error(
                str(error),
                hint="List dotted paths of BaseCache subclasses, or remove the setting.",
                id="drf_instcache.E012",
            )
        ]
    return []
