"""Import shim: code written for drf-cached-instances runs on drf-instcache unchanged.

``drf_cached_instances.cache``, ``.models``, ``.mixins``, ``.compat`` and ``.settings``
re-export drf-instcache's objects under the names the original project used. New code
should import from ``drf_instcache``; the README's "Migrating from drf-cached-instances"
lists what behaves differently.
"""

from drf_instcache import __version__

__all__ = ["__version__"]
