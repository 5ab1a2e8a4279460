"""drf-instcache: cache Django REST Framework instances, not responses."""

__version__ = "0.1.0"
