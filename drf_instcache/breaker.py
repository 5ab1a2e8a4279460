"""Face of :mod:`drf_instcache.backends.breaker`, kept so the old import path works."""

from drf_instcache.backends.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreakerBackend,
    CircuitOpen,
    LeasingCircuitBreakerBackend,
)

__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "CircuitBreakerBackend",
    "CircuitOpen",
    "LeasingCircuitBreakerBackend",
]
