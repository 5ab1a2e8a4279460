"""Converters between Python field values and JSON-able cache values.

A cache serializer stores a value that JSON cannot represent under ``"name:Type"``
(``field_to_json('DateTime', 'date_joined', value)`` gives
``("date_joined:DateTime", "2024-05-01T12:00:00.000001+00:00")``), and
:meth:`~drf_instcache.cache.BaseCache.get_instances` turns it back on the way out.
The type travels with the key, so readers need no schema.

Every representation is exact and fits every codec (json, orjson, msgpack), including
their 64-bit integer limit: a TimeDelta is ``[days, seconds, microseconds]`` rather
than a count of microseconds that could overflow.

Projects add types with :func:`register_converter`, or per cache class with
``field_<code>_to_json`` / ``field_<code>_from_json`` methods (which take precedence).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.apps import apps
from django.db import models
from django.utils.dateparse import parse_date, parse_datetime, parse_duration

from drf_instcache.core.lookalikes import InstanceCache, PkOnlyModel, PkOnlyQueryset
from drf_instcache.exceptions import InstcacheError

TYPE_SEPARATOR = ":"
_T = TypeVar("_T")


class UnknownFieldType(InstcacheError, LookupError):
    """``field_to_json``/``field_from_json`` was given a type code nobody converts."""


@dataclass(frozen=True)
class Converter:
    """How one type code is written to and read from the cache.

    ``to_json(cache, *args, **kwargs)`` returns a JSON-able value; ``from_json(cache,
    value)`` rebuilds the Python value. Both receive the cache so relation converters
    can build :class:`PkOnlyModel` objects bound to it.
    """

    code: str
    to_json: Callable[..., Any]
    from_json: Callable[[InstanceCache, Any], Any]


_REGISTRY: dict[str, Converter] = {}


def register_converter(
    code: str, to_json: Callable[..., Any], from_json: Callable[[InstanceCache, Any], Any]
) -> Converter:
    """Make ``code`` (case-insensitive, no ``:``) available to every cache class."""
    if not code or TYPE_SEPARATOR in code or not code.isidentifier():
        raise ValueError(f"a field type code must be an identifier without ':', not {code!r}")
    converter = Converter(code, to_json, from_json)
    _REGISTRY[code.lower()] = converter
    return converter


def get_converter(code: str) -> Converter:
    """Return the registered converter for ``code``, or raise :class:`UnknownFieldType`."""
    try:
        return _REGISTRY[code.lower()]
    except (KeyError, AttributeError):
        raise UnknownFieldType(
            f"no field converter for type {code!r}; built in: {', '.join(known_codes())} "
            "(add one with register_converter() or field_<code>_to_json/_from_json methods)"
        ) from None


def known_codes() -> list[str]:
    """The registered type codes, as spelled when registered."""
    return [converter.code for converter in _REGISTRY.values()]


def split_key(key_and_type: str) -> tuple[str, str]:
    """Split ``"name:Type"`` into ``("name", "Type")``."""
    name, separator, code = key_and_type.partition(TYPE_SEPARATOR)
    if not separator or not name or not code:
        raise ValueError(f"{key_and_type!r} is not a 'name:Type' key")
    return name, code


# -- dates and times -------------------------------------------------------------------
def _parsed(value: str, parse: Callable[[str], _T | None]) -> _T | None:
    """What Django's parser makes of a string; None when it is not one (as the original
    project did: a form or fixture string that is no date caches as None, not a crash)."""
    if not value.strip():
        return None
    try:
        return parse(value.strip())
    except (ValueError, TypeError):  # well formed but impossible, like "2024-02-30"
        return None


def date_to_json(cache: InstanceCache, value: dt.date | str | None) -> str | None:
    """A date as ``YYYY-MM-DD`` (a datetime is cut to its date; a string is parsed)."""
    if isinstance(value, str):
        value = _parsed(value, parse_date)
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    return value.isoformat()


def date_from_json(cache: InstanceCache, value: Any) -> dt.date | None:
    """Read ``YYYY-MM-DD`` (or the original project's ``[y, m, d]`` triple)."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return dt.date(*value)
    return dt.date.fromisoformat(value)


def datetime_to_json(cache: InstanceCache, value: dt.datetime | str | None) -> str | None:
    """An ISO 8601 string in UTC, microseconds kept; naive values are taken as UTC.

    Naive datetimes are read as UTC rather than the local zone because that is what
    Django stores with ``USE_TZ`` and what the original project assumed. A string is
    parsed first (ISO 8601, as Django's ``parse_datetime`` reads it).
    """
    if isinstance(value, str):
        value = _parsed(value, parse_datetime)
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=dt.UTC)
    else:
        value = value.astimezone(dt.UTC)
    return value.isoformat()


_TIMESTAMP = re.compile(r"-?\d+\.\d{6}")
"""The original project's datetime with microseconds: ``"<UTC seconds>.<micros>"``."""


def datetime_from_json(cache: InstanceCache, value: Any) -> dt.datetime | None:
    """Read the ISO string back as an aware UTC datetime (or the original project's
    UTC timestamp: an int, or ``"seconds.micros"``)."""
    if value is None:
        return None
    if isinstance(value, int) or (isinstance(value, str) and _TIMESTAMP.fullmatch(value)):
        seconds, _, micros = str(value).partition(".")
        stamp = dt.datetime.fromtimestamp(int(seconds), dt.UTC)
        return stamp + dt.timedelta(microseconds=int(micros or 0))
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def timedelta_to_json(cache: InstanceCache, value: dt.timedelta | str | None) -> list[int] | None:
    """``[days, seconds, microseconds]``: exact over the whole timedelta range.

    A string is parsed first (``"1 02:03:04.5"``, ISO 8601 ``"P1DT2H"``, as Django's
    ``parse_duration`` reads them)."""
    if isinstance(value, str):
        value = _parsed(value, parse_duration)
    if value is None:
        return None
    return [value.days, value.seconds, value.microseconds]


def timedelta_from_json(cache: InstanceCache, value: Any) -> dt.timedelta | None:
    """Read the triple back (a plain number is taken as seconds)."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        days, seconds, microseconds = value
        return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)
    return dt.timedelta(seconds=float(value))


# -- exact numbers and identifiers -----------------------------------------------------
def decimal_to_json(cache: InstanceCache, value: decimal.Decimal | None) -> str | None:
    """A Decimal as its exact string (a float would lose digits)."""
    if value is None:
        return None
    if not isinstance(value, decimal.Decimal):
        value = decimal.Decimal(str(value))
    return str(value)


def decimal_from_json(cache: InstanceCache, value: Any) -> decimal.Decimal | None:
    """Read the exact string back."""
    return None if value is None else decimal.Decimal(value)


def uuid_to_json(cache: InstanceCache, value: uuid.UUID | str | None) -> str | None:
    """A UUID in its canonical hyphenated form."""
    if value is None:
        return None
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


def uuid_from_json(cache: InstanceCache, value: Any) -> uuid.UUID | None:
    """Read the hyphenated string back."""
    return None if value is None else uuid.UUID(value)


# -- relations -------------------------------------------------------------------------
def _model_label(model: type[models.Model] | str) -> str:
    if isinstance(model, str):
        return apps.get_model(model)._meta.label_lower
    return model._meta.label_lower


def _pk_to_json(value: Any) -> Any:
    """A primary key as stored: ints and strings as they are, anything else as str."""
    if value is None or isinstance(value, int | str):
        return value
    return str(value)


def _related_model(value: dict[str, Any]) -> type[models.Model]:
    """The model of a stored relation (``"app.model"``, or the original ``app`` + ``model``)."""
    if "app" in value:
        return apps.get_model(value["app"], value["model"])
    return apps.get_model(value["model"])


def _pk_from_json(model: type[models.Model], value: Any) -> Any:
    """Back to the pk field's Python type (a UUID pk comes back as a UUID)."""
    return None if value is None else model._meta.pk.to_python(value)


def pk_to_json(
    cache: InstanceCache, model: type[models.Model] | str, pk: Any
) -> dict[str, Any] | None:
    """A related object as ``{"model": "app.model", "pk": pk}`` (None for a null FK)."""
    if pk is None:
        return None
    return {"model": _model_label(model), "pk": _pk_to_json(pk)}


def pk_from_json(cache: InstanceCache, value: Any) -> PkOnlyModel | None:
    """A :class:`PkOnlyModel` for the stored related object."""
    if value is None:
        return None
    model = _related_model(value)
    return PkOnlyModel(cache, model, _pk_from_json(model, value["pk"]))


def pklist_to_json(
    cache: InstanceCache, model: type[models.Model] | str, pks: Iterable[Any]
) -> dict[str, Any]:
    """Related objects as ``{"model": "app.model", "pks": [...]}``."""
    return {"model": _model_label(model), "pks": [_pk_to_json(pk) for pk in pks]}


def pklist_from_json(cache: InstanceCache, value: Any) -> PkOnlyQueryset:
    """A :class:`PkOnlyQueryset` for the stored related objects."""
    model = _related_model(value)
    return PkOnlyQueryset(cache, model, [_pk_from_json(model, pk) for pk in value["pks"]])


register_converter("Date", date_to_json, date_from_json)
register_converter("DateTime", datetime_to_json, datetime_from_json)
register_converter("TimeDelta", timedelta_to_json, timedelta_from_json)
register_converter("Decimal", decimal_to_json, decimal_from_json)
register_converter("UUID", uuid_to_json, uuid_from_json)
register_converter("PK", pk_to_json, pk_from_json)
register_converter("PKList", pklist_to_json, pklist_from_json)
