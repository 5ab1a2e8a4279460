"""JSON bytes for the fast path: encode one representation, splice many into a body.

A DRF serializer's output is cached as the JSON bytes DRF's own ``JSONRenderer`` would
write for it (parsed, they are equal). A response body is then *assembled*: the
pagination envelope (``count``, ``next``, ``previous``) is encoded on its own with a
placeholder where the results go, and the cached bytes are joined into that spot,
never decoded. Joining 100 cached values costs microseconds; decoding them again costs
hundreds.

The placeholders are :class:`RenderedItems` (a list of cached representations) and
:class:`RenderedObject` (one). Only :class:`SplicingJSONRenderer` writes them as raw
bytes; any other consumer sees ordinary decoded data: Python code reading
``response.data`` decodes them lazily, and DRF's JSON encoder (used by other renderers)
turns them into a list or a dict. Views pass decoded data to renderers that are not
JSON in the first place (the browsable API).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder as DRFJSONEncoder

try:
    import orjson
except ImportError:  # without the [fast] extra: DRF's own encoding, same bytes, slower
    orjson = None  # type: ignore[assignment]

__all__ = [
    "RenderedItems",
    "RenderedObject",
    "SplicingJSONRenderer",
    "decode",
    "encode_representation",
    "with_splicing",
]

_ORJSON_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS) if orjson else 0
"""Dates and times go through DRF's encoder (its format, not orjson's); int keys allowed."""

_LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))
"""U+2028/U+2029, which DRF escapes so its JSON is also valid JavaScript."""

_drf_default = DRFJSONEncoder().default
"""What DRF's JSON encoder turns a non-JSON value into (datetime, Decimal, lazy str...)."""


def encode_representation(data: Any) -> bytes:
    """JSON bytes of one serializer output, as DRF's ``JSONRenderer`` would encode it.

    orjson does the work; values it does not know (dates, decimals, lazy strings) are
    converted the way DRF's encoder converts them, so the parsed result is what plain
    DRF returns. A value orjson refuses outright (an integer beyond 64 bits), or a
    process without orjson, uses the standard library with DRF's encoder: DRF's bytes.
    """
    encoded = b""
    if orjson is not None:
        try:  # not contextlib.suppress: a cold page encodes a hundred of these
            encoded = orjson.dumps(data, default=_drf_default, option=_ORJSON_OPTIONS)
        except orjson.JSONEncodeError:
            encoded = b""  # the standard library's turn
    if not encoded:
        encoded = json.dumps(
            data, cls=DRFJSONEncoder, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
    for raw, escaped in _LINE_SEPARATORS:
        if raw in encoded:
            encoded = encoded.replace(raw, escaped)
    return encoded


def decode(chunk: bytes | memoryview) -> Any:
    """Parse one cached representation (for renderers that need Python data)."""
    return orjson.loads(chunk) if orjson is not None else json.loads(bytes(chunk))


class RenderedItems(Sequence[Any]):
    """A list of representations held as JSON bytes, decoded only if someone looks.

    Not a ``list`` subclass on purpose: a JSON encoder that does not know it must not
    silently write ``[]``. DRF's encoder calls :meth:`tolist`; Python code indexes or
    iterates it as a list of dicts.
    """

    __slots__ = ("_decoded", "chunks")

    def __init__(self, chunks: Sequence[bytes | memoryview]) -> None:
        self.chunks = list(chunks)
        self._decoded: list[Any] | None = None

    def tolist(self) -> list[Any]:
        """The decoded representations (parsed once)."""
        if self._decoded is None:
            self._decoded = [decode(chunk) for chunk in self.chunks]
        return self._decoded

    def joined(self) -> bytes:
        """The JSON array of every representation, without decoding any."""
        return b"[" + b",".join(self.chunks) + b"]"

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, index: Any) -> Any:
        return self.tolist()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RenderedItems):
            other = other.tolist()
        return isinstance(other, list | tuple) and self.tolist() == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<RenderedItems of {len(self.chunks)}>"


class RenderedObject(Mapping[str, Any]):
    """One representation held as JSON bytes (a retrieve body), decoded on demand."""

    __slots__ = ("_decoded", "chunk")

    def __init__(self, chunk: bytes | memoryview) -> None:
        self.chunk = chunk
        self._decoded: dict[str, Any] | None = None

    def todict(self) -> dict[str, Any]:
        """The decoded representation (parsed once)."""
        if self._decoded is None:
            self._decoded = decode(self.chunk)
        return self._decoded

    def __getitem__(self, key: str) -> Any:
        return self.todict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.todict())

    def __len__(self) -> int:
        return len(self.todict())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RenderedObject):
            other = other.todict()
        return isinstance(other, Mapping) and self.todict() == dict(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<RenderedObject of {len(self.chunk)} bytes>"


Rendered = RenderedItems | RenderedObject


def materialize(data: Any) -> Any:
    """``data`` with every placeholder replaced by decoded Python data (recursively)."""
    if isinstance(data, RenderedItems):
        return data.tolist()
    if isinstance(data, RenderedObject):
        return data.todict()
    if isinstance(data, dict):
        return {key: materialize(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [materialize(value) for value in data]
    return data


def _spliced(placeholder: Rendered) -> bytes:
    if isinstance(placeholder, RenderedObject):
        return bytes(placeholder.chunk)
    return placeholder.joined()


class _HoleEncoder(DRFJSONEncoder):
    """DRF's encoder, writing a unique token string where a placeholder sits."""

    def __init__(self, *args: Any, holes: dict[str, Rendered], nonce: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.holes = holes
        self.nonce = nonce

    def default(self, obj: Any) -> Any:
        if isinstance(obj, RenderedItems | RenderedObject):
            token = f"@@instcache-{self.nonce}-{len(self.holes)}@@"
            self.holes[token] = obj
            return token
        return super().default(obj)


class SplicingJSONRenderer(JSONRenderer):
    """DRF's ``JSONRenderer``, plus: cached representations are spliced in as bytes.

    With ``indent`` requested (``Accept: application/json; indent=4``, or the browsable
    API's raw view) the placeholders are decoded and DRF renders as usual, since
    pretty-printing needs the structure anyway.
    """

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        renderer_context = renderer_context or {}
        if self.get_indent(accepted_media_type, renderer_context) is not None:
            return super().render(materialize(data), accepted_media_type, renderer_context)
        if isinstance(data, RenderedItems | RenderedObject):
            return _spliced(data)
        if not isinstance(data, dict):
            return super().render(data, accepted_media_type, renderer_context)
        if self.compact and not self.ensure_ascii and _is_simple_envelope(data):
            return _render_envelope(data)
        holes: dict[str, Rendered] = {}
        text = json.dumps(
            data,
            cls=_HoleEncoder,
            holes=holes,
            nonce=secrets.token_hex(8),
            ensure_ascii=self.ensure_ascii,
            allow_nan=not self.strict,
            separators=(",", ":") if self.compact else (", ", ": "),
        )
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        body = text.encode()
        for token, placeholder in holes.items():
            body = body.replace(b'"' + token.encode() + b'"', _spliced(placeholder), 1)
        return body


_SIMPLE_TYPES = (str, int, bool, type(None), RenderedItems, RenderedObject)


def _is_simple_envelope(data: dict[Any, Any]) -> bool:
    """A dict of strings, integers, booleans, None and placeholders (a paginator's
    envelope): what orjson writes exactly as DRF's compact renderer does. Floats are
    left out on purpose: DRF refuses NaN, orjson would write null."""
    return all(type(key) is str for key in data) and all(
        type(value) in _SIMPLE_TYPES for value in data.values()
    )


def _render_envelope(data: dict[str, Any]) -> bytes:
    """A simple envelope with its placeholders spliced in, encoded by orjson."""
    nonce = secrets.token_hex(8)
    holes: dict[bytes, bytes] = {}
    shaped: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, RenderedItems | RenderedObject):
            token = f"@@instcache-{nonce}-{len(holes)}@@"
            holes[b'"' + token.encode() + b'"'] = _spliced(value)
            value = token
        shaped[key] = value
    if orjson is not None:
        body = orjson.dumps(shaped)
    else:  # what DRF's compact renderer writes for these types
        body = json.dumps(shaped, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    for raw, escaped in _LINE_SEPARATORS:
        if raw in body:
            body = body.replace(raw, escaped)
    for quoted, spliced in holes.items():
        body = body.replace(quoted, spliced, 1)
    return body


def with_splicing(renderers: Sequence[Any]) -> list[Any]:
    """The view's renderers, DRF's plain ``JSONRenderer`` swapped for the splicing one.

    A project's own JSON renderer subclass is kept as it is: its output may differ from
    DRF's, so it receives decoded data instead of cached bytes.
    """
    return [
        SplicingJSONRenderer() if type(renderer) is JSONRenderer else renderer
        for renderer in renderers
    ]


def splices(renderer: Any) -> bool:
    """Whether ``renderer`` writes cached bytes as they are (so nothing is decoded)."""
    return isinstance(renderer, SplicingJSONRenderer)
