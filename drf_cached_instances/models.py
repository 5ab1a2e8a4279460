"""The model look-alikes under their original module (``PkOnlyValuesList`` was 0.1's name)."""

from drf_instcache.models import CachedModel, CachedQueryset, PkOnlyModel, PkOnlyQueryset

PkOnlyValuesList = PkOnlyQueryset

__all__ = ["CachedModel", "CachedQueryset", "PkOnlyModel", "PkOnlyQueryset", "PkOnlyValuesList"]
