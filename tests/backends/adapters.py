"""What each backend configuration gives the conformance suite.

Every configuration (Redis single node, Redis Cluster, Memcached single and several
servers, disk, Django cache over locmem and over Redis, locmem) is a pytest fixture named
``adapter_<id>`` returning an :class:`AdapterUnderTest`. The suite in
``test_conformance.py`` is written once against this interface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drf_instcache.backends.base import Backend


@dataclass
class AdapterUnderTest:
    """One backend configuration, with the controls the conformance tests need.

    ``make(key_prefix=..., timeout=..., **options)`` builds a fresh backend on the
    configuration's server(s); the suite passes a unique prefix per test.

    ``round_trips(backend)`` returns a counter callable: each call gives the number of
    requests sent to the server(s) so far, measured on the wire side (a spy on the real
    client's send path or the server's own statistics, never the adapter's say-so).

    ``servers`` is how many servers one call may touch (one round trip each at most).

    ``stop()``/``start()`` stop and restart the server(s) on the same port(s), for the
    outage tests; ``None`` for serverless adapters (disk, locmem, Django locmem), whose
    outage tests are then not generated.

    ``item_limit`` is the server's largest value in bytes, when it has one (memcached).
    """

    id: str
    make: Callable[..., Backend]
    round_trips: Callable[[Backend], Callable[[], int]]
    servers: int = 1
    stop: Callable[[], None] | None = None
    start: Callable[[], None] | None = None
    item_limit: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
