"""OpenTelemetry spans around backend calls, when ``opentelemetry-api`` is importable.

Each call of the configured backend becomes a CLIENT span ``drf_instcache <operation>``
(``get_many``, ``set_many``...) under whatever span is current (the request's, with
OpenTelemetry's Django instrumentation), with its real start and end times and the
attributes ``db.system`` (the backend: ``redis``, ``memcached``...), ``db.operation``,
``drf_instcache.keys`` (how many) and ``drf_instcache.hits`` (keys found or stored); a
failed call has an ERROR status and its exception recorded.

The app installs it when Django starts (``DRF_INSTCACHE_TRACING = False`` opts out).
Without ``opentelemetry-api`` nothing is installed; with the API but no SDK configured,
OpenTelemetry's own no-op tracer makes each span cost about a microsecond.
"""

from __future__ import annotations

from typing import Any

from drf_instcache import settings as instcache_settings
from drf_instcache.backends.observed import BackendCall, Observer, add_observer

SETTING = "TRACING"
"""``DRF_INSTCACHE_TRACING``: False installs no span observer."""

INSTRUMENTATION_NAME = "drf_instcache"


def install(tracer_provider: Any = None) -> Observer | None:
    """Start making spans (with ``tracer_provider``, or the global one); returns the
    observer (for :func:`~drf_instcache.backends.observed.remove_observer`), or None
    when ``opentelemetry-api`` is not installed."""
    try:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode
    except ImportError:
        return None
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    tracer = provider.get_tracer(INSTRUMENTATION_NAME)

    def observe(call: BackendCall) -> None:
        attributes: dict[str, Any] = {
            "db.system": call.backend,
            "db.operation": call.operation,
            "drf_instcache.keys": len(call.keys),
        }
        if call.hits is not None:
            attributes["drf_instcache.hits"] = call.hits
        span = tracer.start_span(
            f"drf_instcache {call.operation}",
            kind=SpanKind.CLIENT,
            start_time=call.start_ns,
            attributes=attributes,
        )
        if call.error is not None and span.is_recording():
            span.record_exception(call.error)
            span.set_status(Status(StatusCode.ERROR, type(call.error).__name__))
        span.end(end_time=call.start_ns + int(call.duration * 1e9))

    add_observer(observe)
    return observe


_default: Observer | None = None


def install_default() -> Observer | None:
    """The app's start-up step: spans through the global tracer provider, unless off."""
    global _default
    if _default is None and instcache_settings.get_setting(SETTING, True):
        _default = install()
    return _default
