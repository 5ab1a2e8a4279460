"""Serializer analysis: which ORM paths a serializer's output reads, and its fingerprint.

:func:`analyze` walks a DRF serializer class (its fields, nested serializers, source
paths and method fields) without running it, and returns an
:class:`~drf_instcache.fastpath.dependencies.Analysis`: the dependencies whose writes
make an entry stale, what it cannot see through, and a fingerprint of the code.
"""

from __future__ import annotations

import hashlib
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings as django_settings
from django.db.models import Model
from rest_framework import serializers
from rest_framework.relations import (
    HyperlinkedRelatedField,
    ManyRelatedField,
    PrimaryKeyRelatedField,
)
from rest_framework.settings import api_settings

from drf_instcache.fastpath.dependencies import (
    FORWARD,
    Analysis,
    Dependency,
    Finding,
    Step,
    is_column,
    parse_path,
    walk,
)

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
        steps, rest = walk(model, attributes)
        end = steps[-1].target if steps else model
        if rest:
            if len(rest) == 1 and is_column(end, rest[0]):
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
        steps, rest = walk(model, list(attributes))
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
