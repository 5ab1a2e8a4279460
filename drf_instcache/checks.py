"""Django system checks: a bad drf-instcache setting fails ``manage.py check`` at start-up.

This module lists every layer's checks (:data:`EVERY_CHECK`); the app config registers
:func:`run_checks` once.

A misconfigured cache should be found when the project starts, with a message naming
the setting and the fix, not at the first request (where it would only show up as a
logged warning and a silently uncached API).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings as django_settings
from django.core.checks import Error, Warning

from drf_instcache import settings as instcache_settings
from drf_instcache.backends.compression import COMPRESSION_SETTING, INSTALL_HINT
from drf_instcache.core import shared_stats
from drf_instcache.core.leases import DEFAULT_LEASES, LEASES_SETTING, parse_policy
from drf_instcache.exceptions import ImproperlyConfigured
from drf_instcache.invalidation.bulk.check import check_bulk_managers
from drf_instcache.invalidation.instances import check_connected_cache_classes, connected
from drf_instcache.invalidation.outbox import outbox_options
from drf_instcache.invalidation.policies import check_cascade_policies
from drf_instcache.ops import discovery
from drf_instcache.ops.view_checks import check_rendered_views

CODEC_CHOICES = {"json": None, "orjson": "orjson", "msgpack": "msgpack"}


def check_backend_setting() -> list[Error]:
    """``DRF_INSTCACHE_BACKEND`` must parse and its adapter and client must import."""
    value = instcache_settings.backend_setting()
    try:
        config = instcache_settings.parse_setting(value)
        instcache_settings.import_backend_class(config.backend)
        # Building an adapter validates its options and location without connecting
        # (connections are opened at first use), so a typo fails here, not at runtime.
        instcache_settings.build_backend(value).close()
        instcache_settings.validate_near_setting(
            value
        )  # NEAR_CACHE: its options, and a backend it can watch
    except ImproperlyConfigured as error:
        message = str(error)
        if instcache_settings.BACKEND_SETTING not in message:
            message = f"{instcache_settings.BACKEND_SETTING}: {message}"
        return [
            Error(
                message,
                hint="Set DRF_INSTCACHE_BACKEND to a URL such as 'redis://127.0.0.1:6379/0', "
                "'memcached://127.0.0.1:11211', 'disk:///var/cache/api' or 'django://default', "
                "or to a dict with BACKEND/LOCATION/OPTIONS/KEY_PREFIX/TIMEOUT.",
                id="drf_instcache.E001",
            )
        ]
    return []


def check_codec_setting() -> list[Error]:
    """``DRF_INSTCACHE_CODEC`` must name a codec whose library is installed."""
    name = instcache_settings.get_setting("CODEC", "json")
    if name not in CODEC_CHOICES:
        return [
            Error(
                f"DRF_INSTCACHE_CODEC is {name!r}, which is not a codec.",
                hint=f"Use one of {', '.join(sorted(CODEC_CHOICES))} (default json).",
                id="drf_instcache.E002",
            )
        ]
    module = CODEC_CHOICES[name]
    if module and importlib.util.find_spec(module) is None:
        return [
            Error(
                f"DRF_INSTCACHE_CODEC is {name!r} but the {module!r} package is not installed.",
                hint="pip install 'drf-instcache[fast]'",
                id="drf_instcache.E002",
            )
        ]
    return []


def check_breaker_setting() -> list[Error]:
    """``DRF_INSTCACHE_CIRCUIT_BREAKER`` must be None or a well-formed dict."""
    try:
        instcache_settings.breaker_options()
    except ImproperlyConfigured as error:
        return [
            Error(
                str(error),
                hint="Remove the setting for the defaults, or set it to None to disable.",
                id="drf_instcache.E003",
            )
        ]
    return []


def check_leases_setting() -> list[Error]:
    """``DRF_INSTCACHE_LEASES`` must be None or a dict of positive TTL and WAIT >= 0."""

    try:
        parse_policy(getattr(django_settings, LEASES_SETTING, DEFAULT_LEASES))
    except ImproperlyConfigured as error:
        return [
            Error(
                str(error),
                hint=f"Remove {LEASES_SETTING} for the defaults {DEFAULT_LEASES!r}, or set it "
                "to None to fill the cache without leases.",
                id="drf_instcache.E006",
            )
        ]
    return []


def check_compression_setting() -> list[Error]:
    """``DRF_INSTCACHE_COMPRESSION`` must be None or a valid dict, with zstandard installed."""
    try:
        instcache_settings.compression_policy()
    except ImproperlyConfigured as error:
        missing = "zstandard" in str(error)
        return [
            Error(
                str(error),
                hint=INSTALL_HINT
                if missing
                else f"Set {COMPRESSION_SETTING} to None (the default) or to a dict such as "
                "{'ALGORITHM': 'zstd', 'MIN_BYTES': 1024, 'LEVEL': 3}.",
                id="drf_instcache.E007",
            )
        ]
    return []


def check_async_setting() -> list[Error]:
    """``DRF_INSTCACHE_ASYNC = True`` needs Celery."""
    wants_async = instcache_settings.get_setting("ASYNC", False)
    if wants_async and importlib.util.find_spec("celery") is None:
        return [
            Error(
                "DRF_INSTCACHE_ASYNC is True but Celery is not installed.",
                hint="pip install 'drf-instcache[celery]', or set DRF_INSTCACHE_ASYNC = False.",
                id="drf_instcache.E005",
            )
        ]
    return []


def check_cache_enabled_setting() -> list[Warning]:
    """``USE_DRF_INSTANCE_CACHE`` is a boolean switch; anything else is likely a typo."""
    value = getattr(django_settings, "USE_DRF_INSTANCE_CACHE", True)
    if not isinstance(value, bool):
        return [_not_boolean("USE_DRF_INSTANCE_CACHE", value, "drf_instcache.W001")]
    return []


def _not_boolean(name: str, value: Any, check_id: str) -> Warning:
    """A boolean switch set to something else: say what it is read as."""
    return Warning(
        f"{name} is {value!r}; it is read as {bool(value)}.",
        hint="Set it to True or False.",
        id=check_id,
    )


_OPS_SETTINGS = {
    "DRF_INSTCACHE_PROMETHEUS": ("prometheus_client", "drf-instcache[prometheus]"),
    "DRF_INSTCACHE_TRACING": ("opentelemetry", "drf-instcache[opentelemetry]"),
}
"""Operations switches: the library each needs, and what to install for it."""


def check_ops_settings() -> list[Warning]:
    """``DRF_INSTCACHE_PROMETHEUS``/``_TRACING`` are booleans; True needs their library."""
    messages: list[Warning] = []
    for name, (module, install) in _OPS_SETTINGS.items():
        value = getattr(django_settings, name, None)
        if value is None:
            continue
        if not isinstance(value, bool):
            messages.append(_not_boolean(name, value, "drf_instcache.W002"))
        elif value and importlib.util.find_spec(module) is None:
            messages.append(
                Warning(
                    f"{name} is True, but {module} is not installed: nothing is reported.",
                    hint=f"pip install {install!r}, or remove the setting.",
                    id="drf_instcache.W003",
                )
            )
    return messages


def check_outbox_setting() -> list[Error]:
    """``DRF_INSTCACHE_OUTBOX`` must be None or ``{"CHECK_INTERVAL": seconds}``."""
    try:
        outbox_options()
    except ImproperlyConfigured as error:
        return [
            Error(
                str(error),
                hint="Set DRF_INSTCACHE_OUTBOX = {'CHECK_INTERVAL': 1.0} (seconds between "
                "looks at the outbox table), or None to keep failed invalidations in memory.",
                id="drf_instcache.E009",
            )
        ]
    return []


def check_cascade_setting() -> list[Error]:
    """``DRF_INSTCACHE_CASCADE`` and connected classes' ``cascade_policies`` must be known."""
    return check_cascade_policies(sorted({cls for cls, _ in connected()}, key=str))


EVERY_CHECK: tuple[Callable[[], Iterable[Any]], ...] = (
    check_backend_setting,
    check_codec_setting,
    check_breaker_setting,
    check_leases_setting,
    check_compression_setting,
    check_async_setting,
    check_cascade_setting,
    check_outbox_setting,
    check_cache_enabled_setting,
    check_ops_settings,
    shared_stats.check_settings,  # DRF_INSTCACHE_DEBUG_HEADERS, _STATS_FLUSH_INTERVAL
    discovery.check_settings,  # DRF_INSTCACHE_CACHE_CLASSES
    check_connected_cache_classes,  # what signals.connect() was given
    check_bulk_managers,  # cached models whose bulk writes invalidate nothing (I030)
    check_rendered_views,  # the fast views of the URLconf
)
"""Every drf-instcache check, layer by layer, in the order they report."""


def run_checks(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Entry point Django calls for ``manage.py check`` and at server start."""
    messages: list[Any] = []
    for check in EVERY_CHECK:
        messages.extend(check())
    return messages
