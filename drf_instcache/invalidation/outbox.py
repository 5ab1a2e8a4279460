"""Durable invalidation: what the cache could not take waits in the outbox table.

When a backend call of an invalidation fails (the server is down, paused or
partitioned), the keys to delete and the refreshes to run are written to the
``drf_instcache_pending`` table, on a database connection of the outbox's own (so the
rows do not depend on a request's transaction and a failed query cannot break it).
Any process drains them: before its next call to the backend once it answers (keys
first, then the refreshes with their cascades, so a replay lands before that call's
fills), from ``manage.py instcache drain`` or from the Celery task. Readers in other
processes look at the table at most every ``CHECK_INTERVAL`` seconds
(``DRF_INSTCACHE_OUTBOX``), so an entry whose invalidation another process recorded
during an outage is not served after the server is back, beyond that interval.

Without the table (migrations not applied, or ``DRF_INSTCACHE_OUTBOX = None``) the
same records are kept in the writing process's memory only.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, router

from drf_instcache import settings as instcache_settings
from drf_instcache.core import unsettled
from drf_instcache.core.classes import cache_class_path, import_cache_class
from drf_instcache.exceptions import BackendUnavailable, ImproperlyConfigured

logger = logging.getLogger(__name__)

OUTBOX_SETTING = "OUTBOX"
"""``DRF_INSTCACHE_OUTBOX``: ``{"CHECK_INTERVAL": seconds}``, or None for memory only."""
DEFAULT_OUTBOX = {"CHECK_INTERVAL": 1.0}
BATCH = 500
"""Rows applied per drain step."""
TABLE = "drf_instcache_pending"


def outbox_options() -> dict[str, float] | None:
    """The validated ``DRF_INSTCACHE_OUTBOX`` (None: keep records in memory only)."""
    value = instcache_settings.get_setting(OUTBOX_SETTING, DEFAULT_OUTBOX)
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(DEFAULT_OUTBOX):
        raise ImproperlyConfigured(
            f"DRF_INSTCACHE_OUTBOX must be None or a dict with the key CHECK_INTERVAL, "
            f"e.g. {DEFAULT_OUTBOX!r}; got {value!r}"
        )
    interval = value.get("CHECK_INTERVAL", DEFAULT_OUTBOX["CHECK_INTERVAL"])
    if not isinstance(interval, int | float) or interval < 0:
        raise ImproperlyConfigured(
            f"DRF_INSTCACHE_OUTBOX: CHECK_INTERVAL must be a number of seconds >= 0, "
            f"got {interval!r}"
        )
    return {"CHECK_INTERVAL": float(interval)}


Replay = tuple[str, Any, "str | None", bool]
"""A refresh as stored: ``(model_name, pk, version, update_only)``."""


class Outbox:
    """The outbox table, written and drained on a database connection of its own.

    ``replay(cache_class, refreshes)`` runs stored refreshes as a cascade and says
    whether the backend took them all (the cascade module installs it).
    """

    replay: Callable[[type, list[Replay]], bool] | None = None

    def __init__(self) -> None:
        self._local = threading.local()  # the draining flag, per thread
        self._lock = threading.RLock()
        self._connection: Any = None
        self._table_seen = False
        self._table_missing_since: float | None = None
        self._recorded = False
        """This process wrote rows: drain without waiting for the interval."""
        self._last_check = float("-inf")
        self._unusable = False

    # -- the connection ---------------------------------------------------------------
    def _alias(self) -> str:
        from drf_instcache.invalidation.outbox_model import PendingInvalidation

        return router.db_for_write(PendingInvalidation) or DEFAULT_DB_ALIAS

    def _open(self) -> Any:
        """The process's outbox connection (one, shared by threads under the lock)."""
        alias = self._alias()
        own = self._connection
        if own is None or own.alias != alias:
            own = connections.create_connection(alias)
            own.inc_thread_sharing()  # used by every thread, one at a time (the lock)
            self._connection = own
        # Kept open (CONN_MAX_AGE is about request connections): reconnected after an error.
        return own

    def _has_table(self, own: Any) -> bool:
        """Whether the table exists (looked up once; again every minute while missing)."""
        if self._table_seen:
            return True
        now = time.monotonic()
        if self._table_missing_since is not None and now - self._table_missing_since < 60:
            return False
        with own.cursor() as cursor:
            found = TABLE in own.introspection.table_names(cursor)
        if found:
            self._table_seen, self._table_missing_since = True, None
        else:
            if self._table_missing_since is None:
                logger.warning(
                    "drf-instcache: the outbox table %s does not exist (run migrate); "
                    "failed invalidations are kept in memory only",
                    TABLE,
                )
            self._table_missing_since = now
        return found

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]] | None:
        """Run one statement (autocommit); None when the outbox is unusable."""
        with self._lock:
            try:
                own = self._open()
                if not self._has_table(own):
                    return None
                with own.cursor() as cursor:
                    cursor.execute(sql, params)
                    found = list(cursor.fetchall()) if cursor.description else []
            except DatabaseError as error:
                self._reset()
                if not self._unusable:  # once per spell, not once per call
                    logger.warning("drf-instcache: the outbox is unusable (%s); in memory", error)
                self._unusable = True
                return None
            self._unusable = False
            return found

    def _reset(self) -> None:
        """Drop a connection that failed: the next statement opens a new one."""
        own, self._connection = self._connection, None
        if own is not None:
            with contextlib.suppress(DatabaseError):
                own.close()
            own.dec_thread_sharing()

    def close(self) -> None:
        """Close the outbox connection (tests, before dropping the database)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection.dec_thread_sharing()
            self._connection = None
            self._table_seen, self._table_missing_since = False, None

    # -- recording --------------------------------------------------------------------
    def record_keys(self, keys: Iterable[str]) -> bool:
        """Keep raw keys to delete; False when they must be kept in memory instead."""
        return self._insert([(key, "", "", "", "", False) for key in keys])

    def record_refreshes(self, cache_class: type, refreshes: Iterable[Any]) -> bool:
        """Keep refreshes to run (with their cascades) once the backend answers."""
        path = cache_class_path(cache_class)
        rows = [
            ("", path, r.model_name, str(r.pk), r.version or "", bool(r.update_only))
            for r in refreshes
        ]
        return self._insert(rows)

    def _insert(self, rows: list[tuple[Any, ...]]) -> bool:
        if not rows:
            return True
        if outbox_options() is None:
            return False
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, CURRENT_TIMESTAMP)"] * len(rows))
        done = self._run(
            f"INSERT INTO {TABLE} (raw_key, cache_class, model_name, pk_text, version, "
            f"update_only, created) VALUES {values}",
            [value for row in rows for value in row],
        )
        if done is None:
            return False
        self._recorded = True
        return True

    # -- draining ---------------------------------------------------------------------
    def due(self) -> bool:
        """Whether rows may wait: this process wrote some, or the interval has passed
        and the table is not empty (one cheap query per interval and process)."""
        if getattr(self._local, "draining", False):
            return False
        if self._recorded:
            return True
        options = outbox_options()
        if options is None:
            return False
        now = time.monotonic()
        if now - self._last_check < options["CHECK_INTERVAL"]:
            return False
        self._last_check = now
        found = self._run(f"SELECT 1 FROM {TABLE} LIMIT 1")
        return bool(found)

    def backlog(self) -> int | None:
        """How many rows wait (None without the table)."""
        found = self._run(f"SELECT COUNT(*) FROM {TABLE}")
        return None if not found else int(found[0][0])

    def drain(self, backend: Any) -> int:
        """Apply waiting rows to ``backend``, oldest first; return how many were applied."""
        if getattr(self._local, "draining", False):
            return 0
        self._local.draining = True
        try:
            return self._drain(backend)
        finally:
            self._local.draining = False

    def _drain(self, backend: Any) -> int:
        applied = 0
        while True:
            rows = self._run(
                f"SELECT id, raw_key, cache_class, model_name, pk_text, version, update_only "
                f"FROM {TABLE} ORDER BY id LIMIT {BATCH}"
            )
            if not rows:
                self._recorded = self._recorded and rows is None
                return applied
            done = self._apply(backend, rows)
            if done:
                marks = ", ".join(["%s"] * len(done))
                self._run(f"DELETE FROM {TABLE} WHERE id IN ({marks})", done)
                applied += len(done)
            if len(done) < len(rows):
                return applied  # the backend failed again: keep the rest for later

    def _apply(self, backend: Any, rows: list[tuple[Any, ...]]) -> list[int]:
        """Apply rows (keys first); return the ids applied."""
        keys = {row[0]: row[1] for row in rows if row[1]}
        try:
            if keys:
                backend.delete_many(list(dict.fromkeys(keys.values())))
        except BackendUnavailable:
            return []
        done = list(keys)
        by_class: dict[str, list[tuple[int, Replay]]] = {}
        for row_id, key, path, name, pk, version, update_only in rows:
            if not key:
                by_class.setdefault(path, []).append(
                    (row_id, (name, pk, version or None, bool(update_only)))
                )
        for path, group in by_class.items():
            try:
                cache_class = import_cache_class(path)
            except ImproperlyConfigured as error:
                logger.error("drf-instcache: outbox rows of %s dropped: %s", path, error)
                done.extend(row_id for row_id, _ in group)
                continue
            if self.replay is None or not self.replay(cache_class, [r for _, r in group]):
                return done  # down again: these rows stay
            done.extend(row_id for row_id, _ in group)
        return done


OUTBOX = Outbox()
"""The process's outbox."""


def durable(backend: Any) -> bool:
    """Whether ``backend``'s records go to the outbox: the process backend's do; other
    backends (a cache class given its own) keep theirs in memory."""
    try:
        return instcache_settings.enabled() and backend is instcache_settings.get_backend()
    except ImproperlyConfigured:
        return False


class _Journal:
    """What :mod:`drf_instcache.core.unsettled` asks of a durable store."""

    def record_keys(self, backend: Any, keys: Iterable[str]) -> bool:
        return durable(backend) and OUTBOX.record_keys(keys)

    def due(self, backend: Any) -> bool:
        return durable(backend) and OUTBOX.due()

    def drain(self, backend: Any) -> None:
        if durable(backend):
            OUTBOX.drain(backend)


def install() -> None:
    """Make failed invalidations durable (the app config calls this)."""
    unsettled.set_journal(_Journal())
