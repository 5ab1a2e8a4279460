"""``USE_DRF_INSTANCE_CACHE``, read when asked (the original read it once at import)."""

from __future__ import annotations

from typing import Any

from drf_instcache import settings as _settings


def __dir__() -> list[str]:
    return ["USE_DRF_INSTANCE_CACHE"]


def __getattr__(name: str) -> Any:
    if name == "USE_DRF_INSTANCE_CACHE":
        return _settings.enabled()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
