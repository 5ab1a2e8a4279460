"""Django app configuration: registers drf-instcache's system checks and receivers."""

from __future__ import annotations

from django.apps import AppConfig
from django.core.checks import Tags, register


class InstcacheConfig(AppConfig):
    """Add ``"drf_instcache"`` to INSTALLED_APPS for the checks and the management command."""

    name = "drf_instcache"
    verbose_name = "DRF instance cache"

    def ready(self) -> None:
        from drf_instcache import checks
        from drf_instcache.backends import reporting
        from drf_instcache.core import counters, transactions
        from drf_instcache.invalidation import outbox, tables
        from drf_instcache.invalidation.bulk import collected
        from drf_instcache.ops import metrics, tracing

        register(checks.run_checks, Tags.caches, Tags.compatibility)
        # Cached list queries are invalidated by every process's writes (see tables).
        tables.listen()
        # Invalidations the cache could not take are kept in the outbox table.
        outbox.install()
        # A deletion's rows (a cascade's too) are invalidated in one batch.
        collected.install()
        # Reads inside a transaction that has written bypass the cache (see transactions).
        transactions.install()
        # The backends' own reports (near-cache hits, flushes) go to the core's counters.
        reporting.report_to(counters.incr)
        # Prometheus metrics and OpenTelemetry spans, when their packages are installed.
        metrics.install_default()
        tracing.install_default()
