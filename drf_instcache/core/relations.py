"""Which side of a many-to-many relation a model field is, alike on Django 4.2 to 6.1.

Django 6.0 stopped counting a ``ManyToManyField`` as ``concrete`` (it has no column), so
``concrete`` no longer tells the declared side from the reverse one. The reverse side is
always a ``ForeignObjectRel`` (public API), and ``remote_field.through`` of the field is
the through model on every version.
"""

from __future__ import annotations

from typing import Any

from django.db.models import ForeignObjectRel, Model

__all__ = ["forward_many_to_many", "m2m_field", "m2m_through"]


def forward_many_to_many(relation: Any) -> bool:
    """Whether ``relation`` is a ``ManyToManyField`` on its own model (not the reverse)."""
    return bool(relation.many_to_many) and not isinstance(relation, ForeignObjectRel)


def m2m_field(relation: Any) -> Any:
    """The ``ManyToManyField`` behind either side of a many-to-many relation."""
    return relation.field if isinstance(relation, ForeignObjectRel) else relation


def m2m_through(relation: Any) -> type[Model]:
    """The through model of either side of a many-to-many relation."""
    through: type[Model] = m2m_field(relation).remote_field.through
    return through
