"""Every name drf-instcache makes: the key namespaces, and the model functions it looks up.

Each kind of entry leads its keys with its own namespace, so entries of different kinds
never collide and a shared server shows whose keys are whose. The backend adds the
configured ``KEY_PREFIX`` in front of all of them.
"""

from __future__ import annotations

INSTANCE_NAMESPACE = "dic"
"""Instance entries: ``dic:<version>:<model>:<pk>``."""

RENDERED_NAMESPACE = "dir"
"""Rendered entries: ``dir:<version>:<serializer>:<model label>:<pk>`` (plus a variant)."""

VARIANTS_NAMESPACE = "dir-variants"
"""The variant index of a rendered plan whose output depends on the request."""

GENERATION_NAMESPACE = "dig"
"""List-query table generations: ``dig:<table>``."""

RESULT_NAMESPACE = "diq"
"""Cached list-query results: ``diq:<digest>``."""

STATS_NAMESPACE = "dic-stats"
"""The shared counters every process publishes."""

NAMESPACES = (
    INSTANCE_NAMESPACE,
    RENDERED_NAMESPACE,
    VARIANTS_NAMESPACE,
    GENERATION_NAMESPACE,
    RESULT_NAMESPACE,
    STATS_NAMESPACE,
)

MODEL_FUNCTIONS = ("serializer", "loader", "invalidator")
"""The functions a cache class defines per model and version: ``{model}_{version}_{name}``."""

OPTIONAL_MODEL_FUNCTIONS = ("loader_many",)
