"""Throw-away memcached servers on free loopback ports, for tests and benchmarks.

:class:`MemcachedServer` runs one ``memcached`` listening only on 127.0.0.1 (TCP, UDP
off), with a configurable item size limit (``-I``, 2 MB by default so 1 MB values fit)
and memory (``-m``, 64 MB). ``stop()`` and ``start()`` keep the port, so a client
configured with :attr:`MemcachedServer.address` sees a real outage and then the same
server coming back (empty: memcached keeps nothing).

This module is shared by the pytest fixtures and the benchmark harness, so it must not
import pytest. It needs ``mirakuru`` (in the ``test`` extra) and the ``memcached``
binary (``apt-get install memcached``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from mirakuru import TCPExecutor
from mirakuru.exceptions import AlreadyRunning, ProcessExitedWithError
from mirakuru.exceptions import TimeoutExpired as MirakuruTimeout

from drf_instcache.testing.ports import free_port

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
"""Seconds memcached may take to accept connections."""

_START_ATTEMPTS = 3
"""A free port can be taken by someone else before memcached binds it: retry elsewhere."""


def find_memcached() -> str:
    """Return the path of the memcached binary, or raise FileNotFoundError."""
    path = shutil.which("memcached")
    if path is None:
        for folder in ("/usr/bin", "/usr/sbin", "/usr/local/bin"):
            candidate = Path(folder) / "memcached"
            if os.access(candidate, os.X_OK):
                path = str(candidate)
                break
    if path is None:
        raise FileNotFoundError("memcached is not installed (apt-get install memcached)")
    return path


class MemcachedServer:
    """One memcached process on a loopback port, restartable in place.

    ``item_size`` is memcached's ``-I`` (largest item, e.g. ``"1m"``, ``"2m"``) and
    ``memory_mb`` its ``-m``. ``port=None`` picks a free port at the first start.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        item_size: str = "2m",
        memory_mb: int = 64,
        binary: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.item_size = item_size
        self.memory_mb = memory_mb
        self.binary = binary or find_memcached()
        self.extra_args = list(extra_args)
        self._port = port
        self._executor: TCPExecutor | None = None

    # -- where it listens -------------------------------------------------------------
    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("MemcachedServer has not been started")
        return self._port

    @property
    def address(self) -> str:
        """``"127.0.0.1:<port>"``, the form memcached locations take."""
        return f"{HOST}:{self.port}"

    @property
    def item_size_bytes(self) -> int:
        """The ``-I`` limit in bytes (memcached reads ``k``/``m`` as binary units)."""
        text = self.item_size.strip().lower()
        units = {"k": 1024, "m": 1024 * 1024}
        if text[-1:] in units:
            return int(text[:-1]) * units[text[-1]]
        return int(text)

    @property
    def running(self) -> bool:
        return self._executor is not None and self._executor.running()

    def command(self, port: int) -> list[str]:
        """The memcached command line for ``port``."""
        command = [
            self.binary,
            "-l",
            HOST,
            "-p",
            str(port),
            "-U",
            "0",
            "-I",
            self.item_size,
            "-m",
            str(self.memory_mb),
        ]
        if os.geteuid() == 0:
            # memcached refuses to run as root unless told which user to run as.
            command += ["-u", "root"]
        return command + self.extra_args

    # -- lifecycle --------------------------------------------------------------------
    def _executor_for(self, port: int) -> TCPExecutor:
        # memcached writes nothing without -v; an unread pipe could still block it.
        return TCPExecutor(
            self.command(port),
            host=HOST,
            port=port,
            timeout=START_TIMEOUT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> Self:
        """Start memcached; the first start picks the port, later ones reuse it."""
        if self.running:
            return self
        if self._port is not None:
            self._executor = self._executor_for(self._port)
            self._executor.start()
            return self
        last_error: Exception | None = None
        for _ in range(_START_ATTEMPTS):
            port = free_port(HOST)
            executor = self._executor_for(port)
            try:
                executor.start()
            except (AlreadyRunning, ProcessExitedWithError, MirakuruTimeout) as error:
                executor.stop()
                last_error = error
                continue
            self._port, self._executor = port, executor
            return self
        raise RuntimeError(f"could not start memcached on a free port: {last_error}")

    def stop(self) -> None:
        """Stop memcached (its data is lost), keeping the port for :meth:`start`."""
        if self._executor is not None:
            self._executor.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.address if self._port is not None else "not started"
        return f"<MemcachedServer {where} -I {self.item_size} -m {self.memory_mb}>"
