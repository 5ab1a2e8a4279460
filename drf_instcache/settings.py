"""Read the ``DRF_INSTCACHE_*`` settings and build the configured backend.

The backend is built lazily, once per process (a forked worker builds its own, since
connections must not be shared across ``fork``), and rebuilt when Django's
``setting_changed`` signal reports a change to one of our settings, so
``override_settings`` in tests swaps it. :func:`reset` does the same by hand.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from drf_instcache.backends.base import DEFAULT_KEY_PREFIX, DEFAULT_TIMEOUT, Backend
from drf_instcache.backends.breaker import CircuitBreakerBackend
from drf_instcache.backends.compression import CompressedBackend, CompressionPolicy
from drf_instcache.backends.compression import parse_policy as parse_compression
from drf_instcache.backends.observed import ObservedBackend, label_of
from drf_instcache.exceptions import ImproperlyConfigured

BACKEND_SETTING = "DRF_INSTCACHE_BACKEND"
DEFAULT_BACKEND = "django://default"

SCHEMES: dict[str, str] = {
    "redis": "drf_instcache.backends.redis.RedisBackend",
    "rediss": "drf_instcache.backends.redis.RedisBackend",
    "redis+cluster": "drf_instcache.backends.redis.RedisBackend",
    "redis+sentinel": "drf_instcache.backends.sentinel.RedisSentinelBackend",
    "memcached": "drf_instcache.backends.memcached.MemcachedBackend",
    "disk": "drf_instcache.backends.disk.DiskBackend",
    "django": "drf_instcache.backends.django.DjangoCacheBackend",
    "locmem": "drf_instcache.backends.locmem.LocMemBackend",
}
"""URL schemes accepted by ``DRF_INSTCACHE_BACKEND`` and the adapter each selects."""

EXTRAS: dict[str, str] = {
    "redis": "redis",
    "hiredis": "redis",
    "pymemcache": "memcached",
    "diskcache": "disk",
    "orjson": "fast",
    "msgpack": "fast",
    "celery": "celery",
    "zstandard": "zstd",
}
"""Optional third-party module -> the ``pip install drf-instcache[extra]`` that brings it."""

_DICT_KEYS = {"BACKEND", "LOCATION", "OPTIONS", "KEY_PREFIX", "TIMEOUT"}


@dataclass(frozen=True)
class BackendConfig:
    """A parsed ``DRF_INSTCACHE_BACKEND``: which adapter, where, and how."""

    backend: str
    location: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    key_prefix: str = DEFAULT_KEY_PREFIX
    timeout: float | None = DEFAULT_TIMEOUT


def _coerce(value: str) -> Any:
    """Turn a query-string value into the bool, int or float it spells, else keep it."""
    lowered = value.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _hosts(netloc: str, url: str, default_port: int) -> list[str]:
    """Split ``h1:p1,h2:p2`` into ``["h1:p1", "h2:p2"]``, checking each port."""
    hosts = []
    for part in netloc.split(","):
        part = part.strip()
        if not part:
            raise ImproperlyConfigured(f"{BACKEND_SETTING} {url!r} has an empty host")
        host, sep, port = part.rpartition(":")
        if not sep or part.endswith("]"):
            host, port = part, str(default_port)
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(
                f"{BACKEND_SETTING} {url!r}: port {port!r} of {part!r} is not a number 1-65535"
            )
        hosts.append(f"{host}:{port}")
    return hosts


def _sentinel_path(path: str, url: str) -> dict[str, Any]:
    """``/mymaster/0`` -> the master's service name and db (the db may be left out)."""
    segments = [segment for segment in path.split("/") if segment]
    if not 1 <= len(segments) <= 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise ImproperlyConfigured(
            f"{BACKEND_SETTING} {url!r}: use "
            "redis+sentinel://[user:password@]host:port[,host:port]/<service_name>[/<db>]"
        )
    options: dict[str, Any] = {"service_name": unquote(segments[0])}
    if len(segments) == 2:
        options["db"] = int(segments[1])
    return options


def parse_url(url: str) -> BackendConfig:
    """Parse a backend URL such as ``redis://127.0.0.1:6379/0?timeout=60``.

    Query parameters become adapter options, except ``prefix`` (the key namespace) and
    ``timeout`` (default lifetime in seconds, ``none`` for no expiry).
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise ImproperlyConfigured(
            f"{BACKEND_SETTING} {url!r} has an unknown scheme {scheme!r}; use one of "
            + ", ".join(f"{name}://" for name in SCHEMES)
        )
    parts = urlsplit(url)
    options = {key: _coerce(value) for key, value in parse_qsl(parts.query)}
    key_prefix = options.pop("prefix", options.pop("key_prefix", DEFAULT_KEY_PREFIX))
    timeout = options.pop("timeout", DEFAULT_TIMEOUT)
    location: Any
    if scheme in ("redis", "rediss"):
        location = url.split("?", 1)[0]
    elif scheme == "redis+cluster":
        location = _hosts(parts.netloc, url, 6379)
        options["cluster"] = True
    elif scheme == "redis+sentinel":
        location = _hosts(parts.netloc, url, 26379)
        options = {**_sentinel_path(parts.path, url), **options}
    elif scheme == "memcached":
        if not parts.netloc:
            raise ImproperlyConfigured(
                f"{BACKEND_SETTING} {url!r} names no server: use memcached://host:port[,host:port]"
            )
        location = _hosts(parts.netloc, url, 11211)
    elif scheme == "disk":
        location = unquote(rest.split("?", 1)[0])
        if not location:
            raise ImproperlyConfigured(
                f"{BACKEND_SETTING} {url!r} names no directory: use disk:///absolute/path"
            )
    elif scheme == "django":
        location = parts.netloc or "default"
    else:  # locmem
        location = parts.netloc or "default"
    return BackendConfig(
        backend=SCHEMES[scheme],
        location=location,
        options=options,
        key_prefix=str(key_prefix),
        timeout=timeout,
    )


def parse_setting(value: Any) -> BackendConfig:
    """Parse ``DRF_INSTCACHE_BACKEND`` given as a URL string or a Django-style dict."""
    if isinstance(value, str):
        return parse_url(value)
    if isinstance(value, dict):
        unknown = set(value) - _DICT_KEYS
        if unknown:
            raise ImproperlyConfigured(
                f"{BACKEND_SETTING} has unknown key(s) {sorted(unknown)}; "
                f"allowed: {sorted(_DICT_KEYS)}"
            )
        backend = value.get("BACKEND")
        if not backend or not isinstance(backend, str):
            raise ImproperlyConfigured(
                f"{BACKEND_SETTING} needs 'BACKEND', e.g. "
                "'drf_instcache.backends.redis.RedisBackend'"
            )
        if "://" in backend:  # a URL in BACKEND: parse it, let the other keys override
            base = parse_url(backend)
            backend = base.backend
            defaults = base
        else:
            defaults = BackendConfig(backend=backend)
        options = dict(defaults.options)
        options.update(value.get("OPTIONS") or {})
        return BackendConfig(
            backend=backend,
            location=value.get("LOCATION", defaults.location),
            options=options,
            key_prefix=value.get("KEY_PREFIX", defaults.key_prefix),
            timeout=value.get("TIMEOUT", defaults.timeout),
        )
    raise ImproperlyConfigured(
        f"{BACKEND_SETTING} must be a URL string or a dict, not {type(value).__name__}"
    )


def import_backend_class(path: str) -> type:
    """Import an adapter class, naming the extra to install when its client is missing."""
    module_path, _, class_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as error:
        missing = (error.name or "").split(".")[0]
        if missing in EXTRAS:
            raise ImproperlyConfigured(
                f"{BACKEND_SETTING} selects {path}, which needs the {missing!r} package: "
                f"pip install 'drf-instcache[{EXTRAS[missing]}]'"
            ) from error
        raise ImproperlyConfigured(
            f"{BACKEND_SETTING}: cannot import {module_path!r} ({error})"
        ) from error
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ImproperlyConfigured(
            f"{BACKEND_SETTING}: module {module_path!r} has no class {class_name!r}"
        ) from None


def build_backend(value: Any) -> Backend:
    """Build a backend from a setting value (URL or dict); the near cache option
    (``OPTIONS["NEAR_CACHE"]``) is left to :func:`build_configured_backend`."""
    from drf_instcache.backends.near import split_setting

    config = parse_setting(split_setting(value)[0])
    backend_class = import_backend_class(config.backend)
    try:
        return backend_class(
            config.location,
            key_prefix=config.key_prefix,
            timeout=config.timeout,
            options=config.options,
        )
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(f"{BACKEND_SETTING} {value!r}: {error}") from error


# -- the process-wide backend ----------------------------------------------------------
_lock = threading.Lock()
_backend: Backend | None = None
_backend_pid: int | None = None


def backend_setting() -> Any:
    """The configured ``DRF_INSTCACHE_BACKEND``, or the default ``django://default``."""
    return getattr(django_settings, BACKEND_SETTING, DEFAULT_BACKEND)


BREAKER_SETTING = "DRF_INSTCACHE_CIRCUIT_BREAKER"
DEFAULT_BREAKER = {"FAILURES": 3, "RESET_AFTER": 0.5}
"""RESET_AFTER: seconds between the background probes of an open breaker."""


def breaker_options() -> dict[str, Any] | None:
    """The circuit breaker settings, or None when ``DRF_INSTCACHE_CIRCUIT_BREAKER = None``."""
    value = getattr(django_settings, BREAKER_SETTING, DEFAULT_BREAKER)
    if value is None or value is False:
        return None
    if not isinstance(value, dict) or set(value) - set(DEFAULT_BREAKER):
        raise ImproperlyConfigured(
            f"{BREAKER_SETTING} must be None or a dict with keys FAILURES and RESET_AFTER, "
            f"e.g. {DEFAULT_BREAKER!r}; got {value!r}"
        )
    options = {**DEFAULT_BREAKER, **value}
    try:
        failures, reset_after = int(options["FAILURES"]), float(options["RESET_AFTER"])
    except (TypeError, ValueError):
        failures = reset_after = 0
    if failures < 1 or reset_after <= 0:
        raise ImproperlyConfigured(
            f"{BREAKER_SETTING}: FAILURES must be an integer >= 1 and RESET_AFTER a positive "
            f"number of seconds; got {value!r}"
        )
    return {"failures": failures, "reset_after": reset_after}


def compression_policy() -> CompressionPolicy | None:
    """The compression policy ``DRF_INSTCACHE_COMPRESSION`` describes (None: off)."""
    return parse_compression(get_setting("COMPRESSION", None))


def validate_near_setting(value: Any) -> None:
    """Raise :class:`ImproperlyConfigured` when a near-cache setting cannot work: bad
    options, or a backend it cannot watch (not single-node Redis)."""
    from drf_instcache.backends.near import find_redis_adapter, split_setting

    rest, config = split_setting(value)
    if config is None:
        return
    adapter = build_backend(rest)
    try:
        find_redis_adapter(adapter)
    finally:
        adapter.close()


def build_configured_backend() -> Backend:
    """Build the backend the settings describe: its adapter, the compression layer (which
    always reads compressed values, and writes them when ``DRF_INSTCACHE_COMPRESSION``
    says), a circuit breaker unless disabled, the observer of every call (metrics,
    traces, outage logs: :mod:`drf_instcache.backends.observed`), and the near cache when
    ``OPTIONS["NEAR_CACHE"]`` asks for one (outermost, so a near hit costs no breaker)."""
    from drf_instcache.backends.near import NearCacheBackend, split_setting

    setting, near = split_setting(backend_setting())
    adapter = build_backend(setting)
    backend: Backend = CompressedBackend(adapter, compression_policy())
    breaker = breaker_options()
    if breaker is not None:
        backend = CircuitBreakerBackend(backend, **breaker)
    backend = ObservedBackend(backend, label=label_of(adapter))
    if near is not None:
        backend = NearCacheBackend(backend, near)
    return backend


def get_backend() -> Backend:
    """Return this process's backend, building it on first use."""
    global _backend, _backend_pid
    backend = _backend
    if backend is not None and _backend_pid == os.getpid():
        return backend
    with _lock:
        if _backend is None or _backend_pid != os.getpid():
            _backend = build_configured_backend()
            _backend_pid = os.getpid()
        return _backend


def reset() -> None:
    """Forget the current backend (closing it); the next use builds it from settings."""
    global _backend, _backend_pid
    with _lock:
        backend, _backend, _backend_pid = _backend, None, None
    if backend is not None:
        backend.close()


_MISSING: Any = object()
_read_values: dict[str, Any] = {}
"""Settings already read, until ``setting_changed`` says otherwise. Every cached read
asks for a few of them, and reading one that is not defined costs Django an exception."""


def _read(name: str) -> Any:
    try:
        return _read_values[name]
    except KeyError:
        value = _read_values[name] = getattr(django_settings, name, _MISSING)
        return value


def enabled() -> bool:
    """False when ``USE_DRF_INSTANCE_CACHE = False`` turns caching off entirely."""
    value = _read("USE_DRF_INSTANCE_CACHE")
    return True if value is _MISSING else bool(value)


def get_setting(name: str, default: Any = None) -> Any:
    """Read ``DRF_INSTCACHE_<name>`` from Django settings."""
    value = _read(f"DRF_INSTCACHE_{name}")
    return default if value is _MISSING else value


@receiver(setting_changed)
def _on_setting_changed(setting: str, **kwargs: Any) -> None:
    """Forget what was read, and rebuild the backend when a test's ``override_settings``
    changes our settings."""
    _read_values.pop(setting, None)
    if setting.startswith("DRF_INSTCACHE_") or setting == "USE_DRF_INSTANCE_CACHE":
        reset()
