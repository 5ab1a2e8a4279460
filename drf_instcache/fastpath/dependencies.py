"""What a DRF serializer's output depends on, read from its fields (no I/O).

The fast path caches a serializer's output per instance, so it must know which writes
change that output:

* the instance's own row (always);
* rows reached through relations: a nested serializer (``choices =
  ChoiceSerializer(many=True)``), a related field (``PrimaryKeyRelatedField``,
  ``SlugRelatedField``, hyperlinks), a dotted ``source`` (``source="question.text"``).
  Each becomes a :class:`Dependency`: an ORM path from the serializer's model to the
  related model, so "which owners embed this Choice?" is one query;
* the request: hyperlinks carry the host and scheme; a field reading
  ``self.context`` may differ per user. Hyperlinks are handled (the host goes into the
  key); other context reads are reported, so a view can declare a context key or be
  refused at start-up.

Some fields cannot be understood from their declaration (``SerializerMethodField``, a
model property, a ``GenericForeignKey``): they are reported as *opaque*, and their
dependencies are declared by hand with ``rendered_dependencies = {"field": ["path"]}``
(on the view, or in the serializer's ``Meta``), with paths written as ORM lookups
(``"choices__voters"``; ``[]`` for "only this row").

The analysis also yields a *fingerprint* of everything that shapes the output (field
classes and options, the code of project-defined serializer and field methods, DRF
format settings), so a deploy that changes a serializer never serves entries written by
the old one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model

from drf_instcache.core.relations import forward_many_to_many, m2m_through

__all__ = ["Analysis", "Dependency", "Finding", "Step", "parse_path"]

FORWARD, REVERSE, M2M = "forward", "reverse", "m2m"
"""Kinds of relation step: a foreign key stored on the source row, one stored on the
target row, or a many-to-many table."""


@dataclass(frozen=True)
class Step:
    """One relation traversed from ``source`` to ``target``."""

    source: type[Model]
    target: type[Model]
    lookup: str
    """The ORM query name of the relation (``choices``, ``voters``, ``question``)."""
    kind: str
    link_attname: str | None = None
    """REVERSE: the target's foreign-key column deciding membership."""
    through: type[Model] | None = None
    """M2M: the table whose rows decide membership."""
    forward_m2m: bool = False
    """M2M: the step goes the way the field was declared (source defines it)."""


@dataclass(frozen=True)
class Dependency:
    """The owner's representation shows something of the rows at the end of ``steps``.

    ``embeds``: it shows their columns, so any save of such a row changes it. Without,
    it only shows *which* rows are there (their primary keys): only a change of
    membership (a moved or deleted row, a many-to-many change) matters.
    """

    owner: type[Model]
    steps: tuple[Step, ...]
    embeds: bool
    origin: str

    @property
    def target(self) -> type[Model]:
        return self.steps[-1].target

    @property
    def lookup(self) -> str:
        """ORM path from the owner to the target: ``choices__voters``."""
        return "__".join(step.lookup for step in self.steps)

    def prefix_lookup(self, length: int) -> str:
        """ORM path of the first ``length`` steps ('' for the owner itself)."""
        return "__".join(step.lookup for step in self.steps[:length])


@dataclass(frozen=True)
class Finding:
    """Something about a serializer the fast path cannot decide on its own."""

    where: str
    """``PollSerializer.choices.voters``: serializer class, then field names."""
    detail: str


@dataclass
class Analysis:
    """Everything :func:`analyze` found about one serializer for one model."""

    model: type[Model]
    dependencies: list[Dependency] = field(default_factory=list)
    hyperlinked: bool = False
    """Some field writes absolute URLs: the host and scheme are part of the output."""
    context_reads: list[Finding] = field(default_factory=list)
    """Fields (or serializers) whose code reads the serializer context."""
    opaque: list[Finding] = field(default_factory=list)
    """Fields whose dependencies cannot be read from their declaration, undeclared."""
    errors: list[Finding] = field(default_factory=list)
    """Reasons the serializer cannot be cached per instance at all."""
    bad_declarations: list[Finding] = field(default_factory=list)
    """``rendered_dependencies`` paths that name no relation: a configuration error."""
    fingerprint: str = ""

    def models(self) -> set[type[Model]]:
        """Every model whose writes may change an entry: the owner and its targets."""
        found = {self.model}
        for dependency in self.dependencies:
            found.update(step.target for step in dependency.steps)
        return found

    def through_models(self) -> set[type[Model]]:
        """The many-to-many tables along the dependencies."""
        return {
            step.through
            for dependency in self.dependencies
            for step in dependency.steps
            if step.through is not None
        }


# -- relations ---------------------------------------------------------------------------
def _step_for(model: type[Model], relation: Any) -> Step:
    target = relation.related_model
    if relation.many_to_many:
        forward = forward_many_to_many(relation)
        through = m2m_through(relation)
        return Step(model, target, relation.name, M2M, through=through, forward_m2m=forward)
    if relation.concrete:  # ForeignKey / OneToOneField declared on ``model``
        return Step(model, target, relation.name, FORWARD)
    return Step(model, target, relation.name, REVERSE, link_attname=relation.field.attname)


def relation_step(model: type[Model], attribute: str) -> Step | None:
    """The relation ``attribute`` names on ``model`` (as DRF reads it), or None.

    Forward relations are found by field name, reverse ones by accessor name
    (``choices``, or ``choice_set`` without a ``related_name``). A generic foreign key
    has no model to follow: None.
    """
    for relation in model._meta.get_fields():
        if not relation.is_relation or relation.related_model is None:
            continue
        if relation.concrete or forward_many_to_many(relation):
            if relation.name == attribute:
                return _step_for(model, relation)
        else:
            accessor = getattr(relation, "get_accessor_name", None)
            if accessor is not None and accessor() == attribute:
                return _step_for(model, relation)
    return None


def query_step(model: type[Model], name: str) -> Step | None:
    """The relation an ORM lookup part names on ``model`` (query names), or None."""
    try:
        relation = model._meta.get_field(name)
    except FieldDoesNotExist:
        return relation_step(model, name)
    if not relation.is_relation or relation.related_model is None:
        return None
    return _step_for(model, relation)


def parse_path(model: type[Model], path: str) -> tuple[Step, ...]:
    """The steps of an ORM path (``"choices__voters"``); ValueError naming a bad part."""
    steps: list[Step] = []
    current = model
    for part in path.split("__"):
        step = query_step(current, part)
        if step is None:
            raise ValueError(
                f"{path!r}: {current.__name__} has no relation {part!r} "
                f"(write paths as ORM lookups, e.g. 'choices__voters')"
            )
        steps.append(step)
        current = step.target
    return tuple(steps)


def walk(model: type[Model], attributes: Sequence[str]) -> tuple[list[Step], list[str]]:
    """Follow DRF source attributes over relations; return the steps and what is left."""
    steps: list[Step] = []
    current = model
    for index, attribute in enumerate(attributes):
        step = relation_step(current, attribute)
        if step is None:
            return steps, list(attributes[index:])
        steps.append(step)
        current = step.target
    return steps, []


def is_column(model: type[Model], name: str) -> bool:
    """Whether ``name`` is a concrete column of ``model`` (field name or attname)."""
    for each in model._meta.concrete_fields:
        if name in (each.name, each.attname):
            return True
    return name == "pk"


# -- code inspection ---------------------------------------------------------------------


# -- the walk ----------------------------------------------------------------------------
