"""Skip or fail tests whose server binary is missing.

Servers themselves are started by :mod:`drf_instcache.testing` on free loopback ports,
never the machine's shared instance on a standard port. When a binary is missing, the
tests that need it are skipped, unless ``DRF_INSTCACHE_REQUIRE_SERVERS=1`` (set by CI),
which turns a missing server into a failure so nothing is silently left untested.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_SERVERS = os.environ.get("DRF_INSTCACHE_REQUIRE_SERVERS") == "1"


def require_binary(name: str, package: str | None = None) -> str:
    """Return the path of ``name``, or skip (fail under REQUIRE_SERVERS) when absent."""
    path = shutil.which(name)
    if path is None:
        for folder in ("/usr/sbin", "/usr/bin", "/usr/local/bin"):
            if os.access(os.path.join(folder, name), os.X_OK):
                path = os.path.join(folder, name)
                break
    if path:
        return path
    message = f"{name} is not installed (apt-get install {package or name})"
    if REQUIRE_SERVERS:
        pytest.fail(f"DRF_INSTCACHE_REQUIRE_SERVERS=1 but {message}", pytrace=False)
    pytest.skip(message)
