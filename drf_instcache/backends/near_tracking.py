"""The near cache's invalidation connection: Redis client-side caching in BCAST mode.

One dedicated RESP2 connection per process runs ``CLIENT TRACKING on REDIRECT <own id>
BCAST PREFIX <namespace>:`` and subscribes to the invalidation channel; a daemon thread
evicts what the messages name, and flushes (and bypasses) the near cache whenever the
connection is lost, until it is subscribed again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from drf_instcache.backends.near_store import NearCacheConfig, NearStore

logger = logging.getLogger(__name__)

FIRST_RECONNECT_DELAY = 0.05
INVALIDATION_CHANNEL = "__redis__:invalidate"


class TrackingLost(Exception):
    """The invalidation connection stopped answering (no reply to PING)."""


class RedisTracking:
    """The daemon thread holding the tracking connection of one :class:`NearStore`."""

    def __init__(
        self,
        store: NearStore,
        make_connection: Callable[[], Any],
        prefix: str,
        config: NearCacheConfig,
        unavailable_errors: tuple[type[BaseException], ...],
    ) -> None:
        self.store = store
        self.make_connection = make_connection
        self.prefix = prefix
        self.config = config
        self.unavailable_errors = unavailable_errors
        self.client_id: int | None = None
        """The server's id of the tracking connection while it is up."""
        self.connections = 0
        """Times tracking was established (1 after the first start, +1 per reconnect)."""
        self._stop = threading.Event()
        self._connection: Any = None
        self._thread = threading.Thread(
            target=self._run, name=f"instcache-near-{prefix}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):  # wakes the thread out of its read at once
                connection.disconnect()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        delay = FIRST_RECONNECT_DELAY
        live = lost = False  # one WARNING when the connection goes, one INFO when back
        while not self._stop.is_set():
            connection = None
            try:
                connection = self._connection = self.make_connection()
                self._subscribe(connection)
                if self._stop.is_set():
                    break
                self.connections += 1
                self.store.set_live(True)
                if lost:
                    logger.info("near cache %r: invalidation connection back", self.prefix)
                live, lost = True, False
                delay = FIRST_RECONNECT_DELAY
                self._listen(connection)
            except Exception as error:  # nothing may end the thread: reads would stay bypassed
                if self._stop.is_set():
                    pass  # closed: the read was interrupted on purpose
                elif isinstance(error, (*self.unavailable_errors, TrackingLost, ValueError)):
                    if live or not lost:
                        logger.warning(
                            "near cache %r: invalidation connection lost (%s); bypassed "
                            "until it is back",
                            self.prefix,
                            error,
                        )
                    else:
                        logger.debug("near cache %r: still no invalidation connection", self.prefix)
                    live, lost = False, True
                else:
                    logger.exception("near cache %r: invalidation thread failed", self.prefix)
            finally:
                self.store.set_live(False)
                self.client_id = None
                self._connection = None
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.disconnect()
            if self._stop.wait(delay):
                break
            delay = min(delay * 2, self.config.max_reconnect_delay)

    def _subscribe(self, connection: Any) -> None:
        connection.connect()
        connection.send_command("CLIENT", "ID")
        client_id = int(connection.read_response())
        connection.send_command(
            "CLIENT", "TRACKING", "on", "REDIRECT", client_id, "BCAST", "PREFIX", f"{self.prefix}:"
        )
        reply = connection.read_response()
        if reply not in (b"OK", "OK"):
            raise TrackingLost(f"CLIENT TRACKING answered {reply!r}")
        connection.send_command("SUBSCRIBE", INVALIDATION_CHANNEL)
        reply = connection.read_response()
        if not (isinstance(reply, list) and reply and _text(reply[0]) == "subscribe"):
            raise TrackingLost(f"SUBSCRIBE answered {reply!r}")
        self.client_id = client_id

    def _listen(self, connection: Any) -> None:
        interval = self.config.health_check_interval
        ping_outstanding = False
        while not self._stop.is_set():
            if not connection.can_read(timeout=interval):
                if ping_outstanding:
                    raise TrackingLost(f"no answer to PING within {interval}s")
                connection.send_command("PING")
                ping_outstanding = True
                continue
            reply = connection.read_response()
            if not isinstance(reply, list) or not reply:
                continue
            kind = _text(reply[0])
            if kind == "pong":
                ping_outstanding = False
            elif kind == "message" and len(reply) == 3:
                keys = reply[2]
                if keys is None:  # FLUSHDB / FLUSHALL: everything changed
                    self.store.flush()
                else:
                    self.store.invalidate(_text(key) for key in keys)


def _text(value: Any) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
