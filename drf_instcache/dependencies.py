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

import hashlib
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model
from rest_framework import serializers
from rest_framework.relations import (
    HyperlinkedRelatedField,
    ManyRelatedField,
    PrimaryKeyRelatedField,
)
from rest_framework.settings import api_settings

from drf_instcache.relations import forward_many_to_many, m2m_through

__all__ = ["Analysis", "Dependency", "Finding", "Step", "analyze", "parse_path"]

FORWARD, REVERSE, M2M = "forward", "reverse", "m2m"
"""Kinds of relation step: a foreign key stored on the source row, one stored on the
target row, or a many-to-many table."""

CONTEXT_NAMES = frozenset({"context", "_context", "request"})
"""Names whose use in representation code means "reads the serializer context"."""

SERIALIZER_METHODS = ("to_representation", "get_fields", "__init__")
FIELD_METHODS = ("to_representation", "get_attribute", "get_url", "get_name")
"""Project-defined methods that take part in producing a representation."""

DRF_SETTINGS = (
    "COERCE_DECIMAL_TO_STRING",
    "DATETIME_FORMAT",
    "DATE_FORMAT",
    "TIME_FORMAT",
    "DURATION_FORMAT",
    "UPLOADED_FILES_USE_URL",
    "URL_FIELD_NAME",
)
"""DRF settings that change what a serializer outputs (part of the fingerprint)."""


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


def _walk(model: type[Model], attributes: Sequence[str]) -> tuple[list[Step], list[str]]:
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


def _is_column(model: type[Model], name: str) -> bool:
    """Whether ``name`` is a concrete column of ``model`` (field name or attname)."""
    for each in model._meta.concrete_fields:
        if name in (each.name, each.attname):
            return True
    return name == "pk"


# -- code inspection ---------------------------------------------------------------------
def _is_project_code(cls: type) -> bool:
    module = getattr(cls, "__module__", "") or ""
    return not (module.startswith(("rest_framework.", "django.")) or cls is object)


def _code_objects(code: types.CodeType) -> Iterable[types.CodeType]:
    yield code
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _code_objects(constant)


def _function_code(function: Any) -> types.CodeType | None:
    function = getattr(function, "__func__", function)
    return getattr(function, "__code__", None)


def reads_context(function: Any) -> bool:
    """Whether a function's code names the serializer context or the request."""
    code = _function_code(function)
    if code is None:
        return False
    for each in _code_objects(code):
        if CONTEXT_NAMES & set(each.co_names):
            return True
        if any(isinstance(c, str) and c in CONTEXT_NAMES for c in each.co_consts):
            return True
    return False


def _code_digest(function: Any) -> str:
    """A stable digest of a function's code: same code, same digest, in every process.

    File names and line numbers are left out, so two deployments of the same code in
    different folders agree.
    """
    code = _function_code(function)
    if code is None:
        return ""
    parts: list[str] = []
    for each in _code_objects(code):
        parts.append(each.co_code.hex())
        parts.append(repr(each.co_names))
        parts.extend(repr(c) for c in each.co_consts if not isinstance(c, types.CodeType))
    return hashlib.sha1("|".join(parts).encode(), usedforsecurity=False).hexdigest()


def _project_methods(cls: type, names: Iterable[str]) -> list[tuple[str, Any]]:
    """``(qualified name, function)`` of ``names`` defined by project classes in the MRO."""
    found = []
    for klass in cls.__mro__:
        if not _is_project_code(klass):
            continue
        for name in names:
            if name in vars(klass):
                found.append((f"{klass.__qualname__}.{name}", vars(klass)[name]))
    return found


def _simple(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return all(_simple(item) for item in value)
    return value is None or isinstance(value, str | int | float | bool)


def _options(field_or_serializer: Any) -> str:
    """The constructor options of a field that are plain values (never a queryset)."""
    args = getattr(field_or_serializer, "_args", ())
    kwargs = getattr(field_or_serializer, "_kwargs", {})
    simple_args = [repr(arg) for arg in args if _simple(arg)]
    simple_kwargs = [f"{k}={v!r}" for k, v in sorted(kwargs.items()) if _simple(v)]
    return ",".join(simple_args + simple_kwargs)


# -- the walk ----------------------------------------------------------------------------
class _Analyzer:
    def __init__(self, model: type[Model]) -> None:
        self.analysis = Analysis(model=model)
        self.parts: list[str] = [
            f"{name}={getattr(api_settings, name, None)!r}" for name in DRF_SETTINGS
        ]
        self.parts.append(f"TZ={getattr(django_settings, 'TIME_ZONE', None)}")
        self.parts.append(f"USE_TZ={getattr(django_settings, 'USE_TZ', None)}")

    # dependencies ---------------------------------------------------------------------
    def depend(self, owner_prefix: tuple[Step, ...], steps: Sequence[Step], embeds: bool, where):
        """Record the dependencies of a path: one per step, since each row on the way
        is read (its link to the next, or its columns at the end)."""
        owner = self.analysis.model
        full = (*owner_prefix, *steps)
        for index in range(len(owner_prefix), len(full)):
            last = index == len(full) - 1
            # A row on the way is read for its foreign key when the next step is one.
            reads_columns = embeds if last else full[index + 1].kind == FORWARD
            self.analysis.dependencies.append(
                Dependency(owner, tuple(full[: index + 1]), reads_columns, where)
            )

    def declared(self, prefix: tuple[Step, ...], model: type[Model], paths, where: str) -> None:
        for path in paths:
            try:
                steps = parse_path(model, path)
            except ValueError as error:
                self.analysis.bad_declarations.append(
                    Finding(where, f"rendered_dependencies: {error}")
                )
                continue
            self.depend(prefix, steps, True, f"{where} (declared)")

    # context --------------------------------------------------------------------------
    def inspect_code(self, cls: type, names: Iterable[str], where: str) -> None:
        for qualified, function in _project_methods(cls, names):
            self.parts.append(f"{qualified}:{_code_digest(function)}")
            if reads_context(function):
                self.analysis.context_reads.append(
                    Finding(where, f"{qualified} reads the serializer context or request")
                )

    # serializers ----------------------------------------------------------------------
    def serializer(
        self,
        serializer: serializers.BaseSerializer,
        model: type[Model] | None,
        prefix: tuple[Step, ...],
        where: str,
        declared: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        cls = type(serializer)
        self.parts.append(f"{where}<{cls.__module__}.{cls.__qualname__}>")
        self.inspect_code(cls, SERIALIZER_METHODS, f"{where}(*)")
        meta = getattr(cls, "Meta", None)
        declared_here = {
            **dict(getattr(meta, "rendered_dependencies", None) or {}),
            **dict(declared or {}),
        }
        for name, paths in declared_here.items():
            if name == "*" and model is not None:
                self.declared(prefix, model, paths, f"{where}(*)")
        for name, each in serializer.fields.items():
            if each.write_only:
                continue
            self.field(each, model, prefix, f"{where}.{name}", declared_here.get(name), serializer)

    def field(
        self,
        each: Any,
        model: type[Model] | None,
        prefix: tuple[Step, ...],
        where: str,
        declared: Sequence[str] | None,
        parent: Any,
    ) -> None:
        cls = type(each)
        self.parts.append(f"{where}:{cls.__module__}.{cls.__qualname__}({_options(each)})")
        if declared is not None and model is not None:
            self.declared(prefix, model, declared, where)
        if isinstance(each, serializers.ListSerializer):
            self.nested(each.child, each.source_attrs, model, prefix, where, declared)
            return
        if isinstance(each, serializers.BaseSerializer):
            self.nested(each, each.source_attrs, model, prefix, where, declared)
            return
        relation = each.child_relation if isinstance(each, ManyRelatedField) else each
        self.inspect_code(cls, FIELD_METHODS, where)
        if relation is not each:
            self.inspect_code(type(relation), FIELD_METHODS, where)
        if isinstance(relation, HyperlinkedRelatedField) or self._writes_file_url(each):
            self.analysis.hyperlinked = True
        if isinstance(each, serializers.SerializerMethodField):
            method = getattr(parent, each.method_name, None)
            self.parts.append(f"{where}:{_code_digest(method)}")
            if method is not None and reads_context(method):
                self.analysis.context_reads.append(
                    Finding(where, f"{each.method_name}() reads the serializer context")
                )
            if declared is None:
                self.analysis.opaque.append(
                    Finding(where, f"{each.method_name}() may read any row")
                )
            return
        if model is None or declared is not None:
            return
        if isinstance(relation, HyperlinkedRelatedField) and each.source == "*":
            return  # the identity link: this row's own lookup field
        self.source(each, relation, model, prefix, where)

    def source(self, each: Any, relation: Any, model, prefix, where: str) -> None:
        attributes = list(each.source_attrs)
        if not attributes:  # source="*": the whole instance
            self.analysis.opaque.append(Finding(where, "source='*' hands it the whole instance"))
            return
        steps, rest = _walk(model, attributes)
        end = steps[-1].target if steps else model
        if rest:
            if len(rest) == 1 and _is_column(end, rest[0]):
                if steps:
                    self.depend(prefix, steps, True, where)
                return
            self.analysis.opaque.append(
                Finding(where, f"{'.'.join(rest)!r} is not a column or relation of {end.__name__}")
            )
            if steps:
                self.depend(prefix, steps, True, where)
            return
        self.depend(prefix, steps, self._reads_columns(relation, end), where)

    @staticmethod
    def _reads_columns(relation: Any, target: type[Model]) -> bool:
        """Whether a related field shows more of the related row than its primary key."""
        if isinstance(relation, PrimaryKeyRelatedField) and relation.pk_field is None:
            return False
        if isinstance(relation, HyperlinkedRelatedField):
            pk = target._meta.pk
            return relation.lookup_field not in ("pk", pk.name, pk.attname)
        return True  # slug, string, custom related fields, plain fields on a relation

    @staticmethod
    def _writes_file_url(each: Any) -> bool:
        if not isinstance(each, serializers.FileField):
            return False
        return bool(getattr(each, "use_url", api_settings.UPLOADED_FILES_USE_URL))

    def nested(self, child, attributes, model, prefix, where: str, declared) -> None:
        if model is None:
            self.serializer(child, None, prefix, where)
            return
        steps, rest = _walk(model, list(attributes))
        if rest:
            if declared is None:
                self.analysis.opaque.append(
                    Finding(where, f"{'.'.join(rest)!r} is not a relation of {model.__name__}")
                )
            self.serializer(child, None, prefix, where)
            return
        end = steps[-1].target if steps else model
        if steps and declared is None:
            self.depend(prefix, steps, True, where)
        self.serializer(child, end, (*prefix, *steps), where)


def analyze(
    serializer_class: type[serializers.BaseSerializer],
    model: type[Model],
    declared: Mapping[str, Sequence[str]] | None = None,
) -> Analysis:
    """Read ``serializer_class`` (rendering ``model`` instances) without touching data.

    ``declared`` adds the view's ``rendered_dependencies`` to the serializer's own
    (``Meta.rendered_dependencies``); either maps a field name (or ``"*"``) to ORM
    paths from ``model``.
    """
    analyzer = _Analyzer(model)
    name = serializer_class.__name__
    try:
        serializer = serializer_class(context={})
        serializer.fields  # noqa: B018  (builds ModelSerializer fields)
    except Exception as error:
        analyzer.analysis.errors.append(
            Finding(name, f"cannot be built without a request: {type(error).__name__}: {error}")
        )
        return analyzer.analysis
    list_class = getattr(getattr(serializer_class, "Meta", None), "list_serializer_class", None)
    if list_class is not None and any(
        name == "to_representation" for name in _qualified_names(list_class)
    ):
        analyzer.analysis.errors.append(
            Finding(
                name,
                f"its list serializer {list_class.__qualname__} renders the list "
                "as a whole, not instance by instance",
            )
        )
    analyzer.serializer(serializer, model, (), name, declared)
    analysis = analyzer.analysis
    # The same path found through two fields is one dependency (embedding wins).
    unique: dict[tuple[Step, ...], Dependency] = {}
    for dependency in analysis.dependencies:
        seen = unique.get(dependency.steps)
        if seen is None or (dependency.embeds and not seen.embeds):
            unique[dependency.steps] = dependency
    analysis.dependencies = list(unique.values())
    analysis.fingerprint = hashlib.sha1(
        "\n".join(analyzer.parts).encode(), usedforsecurity=False
    ).hexdigest()[:12]
    return analysis


def _qualified_names(cls: type) -> list[str]:
    """Method names project classes in ``cls``'s MRO define."""
    return [
        name
        for klass in cls.__mro__
        if _is_project_code(klass) and klass is not serializers.ListSerializer
        for name in vars(klass)
    ]
