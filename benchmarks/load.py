"""Load generators for the end-to-end workload: wrk, or a small Python client.

Both keep ``connections`` requests in flight against one server for ``duration``
seconds, cycling through a list of paths, and report requests per second, latency
percentiles (p50/p95/p99) and errors (failed connections, non-2xx answers, timeouts).

wrk is preferred: it is written in C and costs the server's CPU little, which matters on
a small machine where client and server share the cores. The Python fallback (threads
with ``http.client``) is good enough to rank configurations, but it caps throughput
lower and its latencies include its own GIL contention.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass
class LoadResult:
    """What one load test measured."""

    requests: int
    duration_s: float
    errors: int
    p50_s: float
    p95_s: float
    p99_s: float
    max_s: float

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "requests_per_s": self.requests_per_s}


class LoadGenerator(Protocol):
    name: str

    def version(self) -> str | None: ...

    def run(
        self, host: str, port: int, paths: Sequence[str], duration: float, connections: int
    ) -> LoadResult: ...


# -- wrk ---------------------------------------------------------------------------------
_WRK_SCRIPT = """
local paths = {%(paths)s}
local counter = 0

init = function(args)
  -- Threads start at different offsets so they do not walk the paths in lockstep.
  counter = math.random(#paths)
end

request = function()
  counter = counter %% #paths + 1
  return wrk.format("GET", paths[counter])
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p95_us": %%d, ' ..
    '"p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Wrk:
    """The wrk HTTP benchmarking tool, driven by a generated Lua script."""

    name = "wrk"

    def __init__(self, binary: str, threads: int = 1) -> None:
        self.binary = binary
        self.threads = threads

    @staticmethod
    def whole_seconds(duration: float) -> int:
        """wrk takes whole seconds only (``-d1.5s`` is refused): round, at least 1."""
        return max(1, round(duration))

    @classmethod
    def find(cls) -> Wrk | None:
        binary = shutil.which("wrk") or ("/usr/bin/wrk" if Path("/usr/bin/wrk").exists() else None)
        return cls(binary) if binary else None

    def version(self) -> str | None:
        result = subprocess.run(
            [self.binary, "--version"], capture_output=True, text=True, check=False
        )
        match = re.search(r"wrk\s+(\S+)", result.stdout + result.stderr)
        return match.group(1) if match else None

    def run(
        self, host: str, port: int, paths: Sequence[str], duration: float, connections: int
    ) -> LoadResult:
        script = _WRK_SCRIPT % {"paths": ", ".join(_lua_string(path) for path in paths)}
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
            handle.write(script)
            script_path = handle.name
        try:
            command = [
                self.binary,
                f"-t{min(self.threads, connections)}",
                f"-c{connections}",
                f"-d{self.whole_seconds(duration)}s",
                "--timeout",
                "10s",
                "-s",
                script_path,
                f"http://{host}:{port}",
            ]
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=duration + 30, check=False
            )
        finally:
            Path(script_path).unlink(missing_ok=True)
        line = next(
            (line for line in result.stdout.splitlines() if line.startswith("WRK_RESULT ")), None
        )
        if result.returncode != 0 or line is None:
            raise RuntimeError(
                f"wrk failed ({result.returncode}): {result.stderr.strip() or result.stdout}"
            )
        data = json.loads(line.removeprefix("WRK_RESULT "))
        errors = sum(data[kind] for kind in ("connect", "read", "write", "status", "timeout"))
        return LoadResult(
            requests=data["requests"],
            duration_s=data["duration_us"] / 1e6,
            errors=errors,
            p50_s=data["p50_us"] / 1e6,
            p95_s=data["p95_us"] / 1e6,
            p99_s=data["p99_us"] / 1e6,
            max_s=data["max_us"] / 1e6,
        )


# -- Python fallback -----------------------------------------------------------------------
def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


class PythonClient:
    """Threads with keep-alive ``http.client`` connections (used when wrk is missing)."""

    name = "python http.client threads"

    def version(self) -> str | None:
        return None

    def run(
        self, host: str, port: int, paths: Sequence[str], duration: float, connections: int
    ) -> LoadResult:
        latencies: list[list[float]] = [[] for _ in range(connections)]
        errors = [0] * connections
        start_line = threading.Barrier(connections + 1)
        deadline = 0.0

        def client(index: int) -> None:
            connection = http.client.HTTPConnection(host, port, timeout=10)
            own, position = latencies[index], index
            start_line.wait()
            while time.perf_counter() < deadline:
                path = paths[position % len(paths)]
                position += 1
                started = time.perf_counter()
                try:
                    connection.request("GET", path)
                    response = connection.getresponse()
                    response.read()
                    ok = 200 <= response.status < 400
                except (OSError, http.client.HTTPException):
                    connection.close()
                    ok = False
                if ok:
                    own.append(time.perf_counter() - started)
                else:
                    errors[index] += 1
            connection.close()

        threads = [
            threading.Thread(target=client, args=(index,), daemon=True)
            for index in range(connections)
        ]
        for thread in threads:
            thread.start()
        began = time.perf_counter()
        deadline = began + duration
        start_line.wait()
        for thread in threads:
            thread.join(duration + 30)
        elapsed = time.perf_counter() - began
        merged = sorted(value for own in latencies for value in own)
        return LoadResult(
            requests=len(merged) + sum(errors),
            duration_s=elapsed,
            errors=sum(errors),
            p50_s=statistics.median(merged) if merged else 0.0,
            p95_s=_percentile(merged, 0.95),
            p99_s=_percentile(merged, 0.99),
            max_s=merged[-1] if merged else 0.0,
        )


def choose_generator(name: str = "auto") -> LoadGenerator:
    """``wrk``, ``python``, or ``auto``: wrk when installed, else the Python client."""
    if name == "python":
        return PythonClient()
    wrk = Wrk.find()
    if wrk is None and name == "wrk":
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    return wrk or PythonClient()
