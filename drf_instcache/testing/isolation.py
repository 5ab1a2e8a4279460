"""Keep a project's own tests apart: a fresh cache namespace per test.

A ``TestCase`` runs each test in a transaction that is rolled back, and SQLite hands
the next test the same primary keys, so entries cached by one test would be served to
the next. These helpers give every test its own key prefix on the configured backend
(cleared afterwards), and make the test's own transaction count as committed for the
cache: its writes invalidate at once and its reads fill, as in production. Atomic
blocks the test opens itself follow the dirty-transaction rule.

* ``InstcacheTestMixin``: put it in front of ``TestCase`` (or ``TransactionTestCase``);
* :func:`isolated_cache`: the same as a context manager;
* ``pytest_plugins = ["drf_instcache.testing.fixtures"]`` for the ``instcache`` fixture.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import override_settings

from drf_instcache import settings as instcache_settings
from drf_instcache.core import transactions
from drf_instcache.exceptions import BackendUnavailable

__all__ = ["InstcacheTestMixin", "isolated_cache", "isolated_setting"]


def isolated_setting(value: Any = None) -> dict[str, Any]:
    """``DRF_INSTCACHE_BACKEND`` as configured, with a key prefix of its own."""
    config = instcache_settings.parse_setting(
        instcache_settings.backend_setting() if value is None else value
    )
    return {
        "BACKEND": config.backend,
        "LOCATION": config.location,
        "OPTIONS": dict(config.options),
        "KEY_PREFIX": f"{config.key_prefix}-t{uuid.uuid4().hex[:12]}",
        "TIMEOUT": config.timeout,
    }


@contextmanager
def isolated_cache(databases: Iterable[str] = (DEFAULT_DB_ALIAS,)) -> Iterator[None]:
    """Run the block on a fresh namespace; the open transactions count as committed."""
    aliases = [alias for alias in databases if alias in connections]
    with override_settings(DRF_INSTCACHE_BACKEND=isolated_setting()):
        for alias in aliases:
            transactions.set_baseline(alias)
        try:
            yield
        finally:
            for alias in aliases:
                transactions.clear_baseline(alias)
            if instcache_settings.enabled():
                with suppress(BackendUnavailable):  # the namespace is never used again
                    instcache_settings.get_backend().clear()


class InstcacheTestMixin:
    """``TestCase`` mixin: each test on an empty cache namespace of its own."""

    def _pre_setup(self) -> None:
        super()._pre_setup()  # type: ignore[misc]
        databases = getattr(self, "databases", (DEFAULT_DB_ALIAS,))
        if databases == "__all__":
            databases = list(connections)
        self._instcache_isolation = isolated_cache(databases)
        self._instcache_isolation.__enter__()

    def _post_teardown(self) -> None:
        isolation = getattr(self, "_instcache_isolation", None)
        if isolation is not None:
            isolation.__exit__(None, None, None)
        super()._post_teardown()  # type: ignore[misc]
