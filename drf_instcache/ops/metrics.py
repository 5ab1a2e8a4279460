"""Prometheus metrics: the cache's counters, and the latency of every backend call.

Install: ``pip install 'drf-instcache[prometheus]'`` (``prometheus_client``). With it
importable, the app registers everything in ``prometheus_client.REGISTRY`` when Django
starts (``DRF_INSTCACHE_PROMETHEUS = False`` opts out), so an existing ``/metrics``
view (``prometheus_client.make_wsgi_app()``, django-prometheus...) shows them:

``drf_instcache_<counter>_total{backend, model}``
    Every counter of :mod:`drf_instcache.core.counters`: ``hits``, ``misses``,
    ``fallbacks`` (per model, the ``model`` label; what counts without a model has
    ``model=""``), and, per backend only, ``stored`` (fills), ``deleted``
    (invalidations' deletes), ``errors``, ``corrupt``, ``too_large``, ``loaded``,
    ``waited``, ``fills_refused`` and the near cache's ``near_*``.
``drf_instcache_backend_call_seconds{backend, operation, outcome}``
    A histogram of backend call durations (``outcome`` is ``ok`` or ``error``).

The counters are read when Prometheus scrapes (nothing is added to the request path);
the histogram is fed by an observer of every backend call
(:mod:`drf_instcache.backends.observed`).

Several processes (gunicorn): either run prometheus_client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR`` set before the workers start; the histogram then lives in
its files) and add the shared counters to the registry your metrics view builds::

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    metrics.install(registry, scope="shared", latency=False)

or scrape any one worker with ``scope="shared"``: its counters are then the sum over
every process that publishes to the cache (:mod:`drf_instcache.core.shared_stats`, one
``get_many`` per scrape).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from drf_instcache import settings as instcache_settings
from drf_instcache.backends.observed import BackendCall, add_observer, label_of, remove_observer
from drf_instcache.core import counters, shared_stats
from drf_instcache.exceptions import BackendUnavailable

logger = logging.getLogger(__name__)

SETTING = "PROMETHEUS"
"""``DRF_INSTCACHE_PROMETHEUS``: False keeps the metrics out of the default registry."""

PREFIX = "drf_instcache"

LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
"""Seconds: a cache call takes 0.1 to a few ms; a dead server takes its timeout."""

DESCRIPTIONS = {
    "hits": "Instances served from the cache.",
    "misses": "Instances loaded from the database instead (fallbacks included).",
    "fallbacks": "Misses because the backend failed.",
    "corrupt": "Cached values that could not be decoded (treated as misses).",
    "loaded": "Instances loaded and serialized.",
    "stored": "Instances written to the cache (fills).",
    "too_large": "Instances the backend refused for their size.",
    "deleted": "Keys deleted by updates and invalidations.",
    "errors": "Backend calls that failed (the backend was unavailable).",
    "waited": "Instances a reader waited for while another request filled them.",
    "fills_refused": "Fills refused because a write claimed the key first.",
    "near_hits": "Keys served from the process's near cache.",
    "near_misses": "Keys the near cache asked Redis for.",
    "near_evictions": "Near-cache entries dropped to stay within MAX_BYTES.",
    "near_invalidations": "Keys named by Redis invalidation messages.",
    "near_flushes": "Times the near cache was emptied.",
    "near_answers": "Warm list bodies served whole from the near cache.",
}


def available() -> bool:
    """Whether ``prometheus_client`` can be imported."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


def backend_label() -> str:
    """The configured backend's label (``none`` when caching is off)."""
    if not instcache_settings.enabled():
        return "none"
    backend = instcache_settings.get_backend()
    return str(getattr(backend, "label", None) or label_of(backend))


class CountersCollector:
    """A Prometheus collector of the core's counters, read at each scrape.

    ``scope="process"``: this process's counters; ``"shared"``: the sum over every
    process publishing to the configured backend (nothing is yielded while it fails).
    """

    def __init__(self, scope: str = "process") -> None:
        if scope not in ("process", "shared"):
            raise ValueError(f"scope must be 'process' or 'shared', not {scope!r}")
        self.scope = scope

    def _stats(self) -> counters.Stats | None:
        if self.scope == "process":
            return counters.current()
        try:
            return shared_stats.shared()
        except BackendUnavailable as error:
            logger.debug("drf-instcache: shared counters unavailable for a scrape: %s", error)
            return None

    def describe(self) -> Iterator[Any]:
        return self._families(None, "")

    def collect(self) -> Iterator[Any]:
        stats = self._stats()
        if stats is None:
            return iter(())
        return self._families(stats, backend_label())

    def _families(self, stats: counters.Stats | None, backend: str) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        for name in counters.COUNTERS:
            per_model = name in counters.MODEL_COUNTERS
            family = CounterMetricFamily(
                f"{PREFIX}_{name}",
                DESCRIPTIONS.get(name, name),
                labels=["backend", "model"] if per_model else ["backend"],
            )
            if stats is not None:
                total = stats.counts.get(name, 0)
                if per_model:
                    counted = 0
                    for model, counts in stats.models.items():
                        value = counts.get(name, 0)
                        counted += value
                        family.add_metric([backend, model], value)
                    if total > counted or not stats.models:
                        family.add_metric([backend, ""], total - counted)
                else:
                    family.add_metric([backend], total)
            yield family


@dataclass
class Installed:
    """What :func:`install` registered; :meth:`uninstall` takes it back."""

    registry: Any
    collector: CountersCollector | None
    histogram: Any
    observer: Any

    def uninstall(self) -> None:
        if self.observer is not None:
            remove_observer(self.observer)
        if self.collector is not None:
            self.registry.unregister(self.collector)
        if self.histogram is not None:
            self.registry.unregister(self.histogram)


def install(registry: Any = None, scope: str = "process", latency: bool = True) -> Installed:
    """Register the counters (and, with ``latency``, the call histogram) in ``registry``
    (default: ``prometheus_client.REGISTRY``). Raises ImportError without the extra."""
    from prometheus_client import REGISTRY, Histogram

    registry = REGISTRY if registry is None else registry
    collector = CountersCollector(scope)
    registry.register(collector)
    histogram = observer = None
    if latency:
        histogram = Histogram(
            f"{PREFIX}_backend_call_seconds",
            "Duration of drf-instcache backend calls.",
            ["backend", "operation", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

        def observer(call: BackendCall) -> None:
            outcome = "ok" if call.error is None else "error"
            histogram.labels(call.backend, call.operation, outcome).observe(call.duration)

        add_observer(observer)
    return Installed(registry, collector, histogram, observer)


_default: Installed | None = None


def install_default() -> Installed | None:
    """The app's start-up step: the default registry, unless opted out or not installed."""
    global _default
    if _default is not None or not instcache_settings.get_setting(SETTING, True):
        return _default
    if not available():
        return None
    _default = install()
    return _default
