"""Storage adapters: thin wrappers that give every cache server the same small protocol."""

from drf_instcache.backends.base import Backend, BaseBackend

__all__ = ["Backend", "BaseBackend"]
