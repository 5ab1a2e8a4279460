"""Django app configuration: registers drf-instcache's system checks."""

from __future__ import annotations

from django.apps import AppConfig


class InstcacheConfig(AppConfig):
    """Add ``"drf_instcache"`` to INSTALLED_APPS for the checks and the management command."""

    name = "drf_instcache"
    verbose_name = "DRF instance cache"

    def ready(self) -> None:
        # Importing these modules registers their system checks.
        from drf_instcache import (  # noqa: F401
            checks,
            counters,
            discovery,
            listqueries,
            rendered_checks,
            transactions,
        )

        # Cached list queries are invalidated by every process's writes (see listqueries).
        listqueries.listen()
        # Reads inside a transaction that has written bypass the cache (see transactions).
        transactions.install()
