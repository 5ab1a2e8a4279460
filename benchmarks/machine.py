"""Describe the machine and software a run measured, for the JSON record.

Figures without their context cannot be compared: the record carries the CPU, memory,
operating system, Python and library versions, server versions and the repository
commit, so two records can be told apart before their numbers are.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

DISTRIBUTIONS = (
    "drf-instcache",
    "Django",
    "djangorestframework",
    "redis",
    "hiredis",
    "pymemcache",
    "diskcache",
    "orjson",
    "msgpack",
    "psycopg",
    "gunicorn",
    "rich",
    "matplotlib",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _git(repo: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def git_state(repo: Path) -> dict[str, Any]:
    """The commit measured, and the files changed on top of it (uncommitted work)."""
    commit = _git(repo, "rev-parse", "HEAD")
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    changed = [line[3:] for line in (status or "").splitlines() if line.strip()]
    return {
        "git_commit": commit.strip() if commit else None,
        "git_uncommitted_changes": changed,
    }


def versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shape the figures (None: not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages: a busy machine gives noisy figures."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def describe(repo: Path) -> dict[str, Any]:
    """The machine this process runs on."""
    return {
        "platform": platform.platform(),
        "system": platform.system(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "python_implementation": platform.python_implementation(),
        **git_state(repo),
        "load_average": load_average(),
    }
