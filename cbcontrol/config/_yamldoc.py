"""
The YAML config document (DESIGN.md §5): one bounded parser, and its format rules.

:func:`load_yaml` reads YAML from outside within limits, in one pass over the parser's
events (never the composer, whose recursion and alias handling are unbounded):

* size: at most :data:`~cbcontrol._limits.MAX_FILE_BYTES`;
* nesting: at most :data:`~cbcontrol._limits.MAX_DEPTH` levels;
* expansion: at most :data:`~cbcontrol._limits.MAX_YAML_NODES` values, counting every
  alias and merge key (``<<``) as the values it stands for. An alias shares the object
  it names, so a "billion laughs" costs its size in text, and is refused as soon as
  the count passes the limit.

Errors carry the line and column. Timestamps stay text, as written, so quoted and
unquoted ``until:`` values reach validation alike.

:func:`parse_document` then applies the document's own rules (``version``,
``presets``, ``breakers``, entry shapes, names) and reports a bad entry on its own.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from cbcontrol._limits import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    MAX_FILE_BYTES,
    MAX_YAML_NODES,
    DocumentError,
    excerpt,
)
from cbcontrol._names import NAME_RULE, is_name

if TYPE_CHECKING:
    from ruamel.yaml import YAML

__all__ = [
    "DocumentError",
    "Entry",
    "ParsedDocument",
    "describe",
    "load_yaml",
    "new_yaml",
    "parse_document",
    "syntax_message",
]

KINDS: Final = ("presets", "breakers")
TOP_KEYS: Final = ("version", "presets", "breakers")
_YAML = "tag:yaml.org,2002:"
_MERGE = f"{_YAML}merge"
_CONTAINER_TAGS = frozenset({f"{_YAML}map", f"{_YAML}seq"})


def new_yaml(typ: str) -> YAML:
    """A ruamel YAML of ``typ``; names the extra when ruamel is missing."""
    try:
        from ruamel.yaml import YAML
    except ImportError as exc:
        msg = "YAML file support is not installed, run `pip install cbcontrol[yaml]`"
        raise ImportError(msg) from exc
    # The pure parser marks errors the same way whether or not the C extension is
    # installed (and is no slower on documents of this size).
    return YAML(typ=typ, pure=True)


def describe(value: object) -> str:
    """A value's kind for messages: ``a mapping``, ``a list``, ``3 (int)``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{excerpt(repr(value))[1:-1]} ({type(value).__name__})"


def syntax_message(where: str, exc: Exception) -> str:
    """A YAML error as ``file "x", line 3, column 5: invalid YAML: ...; fix ...``."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        at = f", line {mark.line + 1}, column {mark.column + 1}"
    else:  # a ReaderError (bad encoding) has a byte offset instead
        at = f", byte {exc.position}" if hasattr(exc, "position") else ""
    problem = getattr(exc, "problem", None) or str(exc).split("\n", 1)[0]
    context = getattr(exc, "context", None)
    why = f"{problem} ({context})" if context else problem
    return f'file "{where}"{at}: invalid YAML: {why}; fix the YAML there'


def _at(where: str, event: Any) -> str:
    mark = event.start_mark
    return f'file "{where}", line {mark.line + 1}, column {mark.column + 1}'


@functools.cache
def _scalar_tools() -> tuple[Any, Any, type[Any]]:
    """The resolver, a constructor for scalars, and ruamel's scalar node class."""
    from ruamel.yaml.nodes import ScalarNode

    yaml = new_yaml("safe")
    return yaml.resolver, yaml.constructor, ScalarNode


@dataclass
class _Frame:
    """An open mapping or sequence while the events are read."""

    value: dict[object, object] | list[object]
    anchor: str | None
    start: Any
    size: int = 1
    key: object = None
    has_key: bool = False
    merges: list[dict[object, object]] = field(default_factory=list)


class _Builder:
    """Plain values from parser events, counting the values every alias stands for."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[object, int]] = {}
        self.sizes: dict[int, int] = {}  # id(container) -> expanded size
        # id(mapping) -> its pairs with every merged pair repeated, as YAML loaders
        # flatten merge keys (ruamel's round-trip loader, which cbctl's writes use,
        # grows exponentially on ``<<: [*a, *a]`` chains: refuse what it would).
        self.pairs: dict[int, int] = {}
        self.total = 0
        self.root: object = None
        self.documents = 0

    def _count(self, size: int, event: Any) -> None:
        self.total += size
        if self.total > MAX_YAML_NODES:
            msg = (
                f"{_at(self.where, event)}: the document expands to more than "
                f"{MAX_YAML_NODES} values (through aliases or merge keys); "
                "write it out without them"
            )
            raise DocumentError(msg)

    def _size(self, value: object) -> int:
        return self.sizes.get(id(value), 1)

    def feed(self, event: Any) -> None:
        kind = type(event).__name__
        if kind == "ScalarEvent":
            self._add(self._scalar(event), 1, event)
        elif kind in ("MappingStartEvent", "SequenceStartEvent"):
            self._open(event, {} if kind == "MappingStartEvent" else [])
        elif kind in ("MappingEndEvent", "SequenceEndEvent"):
            self._close(event)
        elif kind == "AliasEvent":
            value, size = self.anchors.get(event.anchor, (None, 0))
            if size == 0:  # the parser reports undefined aliases itself
                msg = f"{_at(self.where, event)}: unknown alias *{event.anchor}"
                raise DocumentError(msg)
            self._count(size, event)
            self._add(value, size, event, counted=True)
        elif kind == "DocumentStartEvent":
            self.documents += 1
            if self.documents > 1:
                msg = f"{_at(self.where, event)}: a file holds one YAML document only"
                raise DocumentError(msg)

    def _open(self, event: Any, value: dict[object, object] | list[object]) -> None:
        tag = None if event.tag is None else str(event.tag)
        if tag is not None and tag not in _CONTAINER_TAGS:
            msg = f"{_at(self.where, event)}: unsupported YAML tag {tag}"
            raise DocumentError(msg)
        if len(self.stack) >= MAX_DEPTH:
            msg = (
                f"{_at(self.where, event)}: the document nests deeper than "
                f"{MAX_DEPTH} levels"
            )
            raise DocumentError(msg)
        self._count(1, event)
        self.stack.append(_Frame(value, event.anchor, event))

    def _close(self, event: Any) -> None:
        frame = self.stack.pop()
        value = frame.value
        if isinstance(value, dict) and frame.merges:
            flattened = sum(self.pairs.get(id(m), len(m)) for m in frame.merges)
            self._count(flattened, event)
            self.pairs[id(value)] = len(value) + flattened
            # Merge keys: the mapping's own keys win, then earlier merges.
            merged: dict[object, object] = {}
            for source in frame.merges:
                for key, item in source.items():
                    if key not in merged:
                        size = self._size(item)
                        self._count(size, event)
                        frame.size += size
                        merged[key] = item
            for key in value:
                merged.pop(key, None)
            pairs = self.pairs.pop(id(value))
            value = {**merged, **value}
            self.pairs[id(value)] = pairs
        self.sizes[id(value)] = frame.size
        self._add(value, frame.size, event, counted=True, anchor=frame.anchor)

    def _scalar(self, event: Any) -> object:
        resolver, constructor, node_class = _scalar_tools()
        value = event.value
        tag = str(event.tag) if event.tag is not None else None
        if tag is None or tag == "!":
            tag = str(resolver.resolve(node_class, value, event.implicit))
        if tag == _MERGE:
            return _MergeKey
        node = node_class(tag, value, event.start_mark, event.end_mark)
        short = tag.removeprefix(_YAML)
        if short in ("str", "timestamp"):
            return value  # a timestamp stays text, as written
        if short == "null":
            return None
        method = {
            "bool": constructor.construct_yaml_bool,
            "int": constructor.construct_yaml_int,
            "float": constructor.construct_yaml_float,
            "binary": constructor.construct_yaml_binary,
        }.get(short)
        if method is None:
            msg = f"{_at(self.where, event)}: unsupported YAML tag {tag}"
            raise DocumentError(msg)
        return method(node)

    def _add(
        self,
        value: object,
        size: int,
        event: Any,
        *,
        counted: bool = False,
        anchor: str | None = None,
    ) -> None:
        if not counted:
            self._count(size, event)
        anchor = anchor if anchor is not None else getattr(event, "anchor", None)
        if anchor is not None and type(event).__name__ != "AliasEvent":
            self.anchors[anchor] = (value, size)
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        if isinstance(frame.value, list):
            frame.value.append(value)
            frame.size += size
            return
        if not frame.has_key:
            if isinstance(value, dict | list):
                msg = f"{_at(self.where, event)}: a mapping key must be a scalar"
                raise DocumentError(msg)
            frame.key, frame.has_key = value, True
            return
        key, frame.has_key = frame.key, False
        if key is _MergeKey:
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(s, dict) for s in sources):
                msg = f"{_at(self.where, event)}: '<<' must merge mappings"
                raise DocumentError(msg)
            frame.merges.extend(sources)  # type: ignore[arg-type]
            return
        if key in frame.value:
            msg = f"{_at(self.where, event)}: duplicate key {excerpt(repr(key))[1:-1]}"
            raise DocumentError(msg)
        frame.value[key] = value
        frame.size += size


class _MergeKey:
    """The ``<<`` key, resolved by its mapping when the mapping ends."""


def load_yaml(raw: bytes, where: str, *, max_bytes: int = MAX_FILE_BYTES) -> object:
    """
    Parse one YAML document from outside, within the limits.

    Args:
        raw: The bytes.
        where: The file, for messages.
        max_bytes: The size limit.

    Raises:
        DocumentError: Too big, too deep, expanding too far, or not valid YAML;
            naming the file, the line and column, the limit.
        ImportError: ruamel.yaml is not installed (``cbcontrol[yaml]``).
    """
    if len(raw) > max_bytes:
        msg = (
            f'file "{where}" is {len(raw)} bytes, over the limit of {max_bytes} '
            "bytes; split it or move breakers to etcd"
        )
        raise DocumentError(msg)
    yaml = new_yaml("safe")
    from ruamel.yaml.error import YAMLError

    builder = _Builder(where)
    try:
        for event in yaml.parse(raw):
            builder.feed(event)
    except YAMLError as exc:
        raise DocumentError(syntax_message(where, exc)) from None
    return builder.root


# -- the document format ---------------------------------------------------------


class _EntryError(Exception):
    """A problem confined to one entry (or a value inside it)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """
    One ``presets.<name>`` or ``breakers.<name>`` of a document.

    Attributes:
        kind: ``"presets"`` or ``"breakers"``.
        name: The name as written (checked against the name grammar: a bad one has
            an error and no data).
        data: The entry as plain JSON types, or None when it is invalid.
        error: Why it is invalid.
    """

    kind: str
    name: str
    data: dict[str, object] | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """A document that passed the whole-document rules; entries may still be bad."""

    entries: tuple[Entry, ...]


def _plain(value: object, key: str) -> object:
    """A parsed value as plain JSON types, or raise _EntryError."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = f'key "{key}": {value!r} is not a finite number'
            raise _EntryError(msg)
        return value
    if isinstance(value, list):
        return [_plain(item, f"{key}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        return _plain_map(value, key)
    msg = (
        f'key "{key}": unsupported YAML value {describe(value)}; '
        "use a string, number, boolean, list or mapping"
    )
    raise _EntryError(msg)


def _plain_map(value: Mapping[object, object], key: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, item in value.items():
        if not isinstance(name, str):
            msg = f'key "{key}": field name {name!r} must be a string; quote it'
            raise _EntryError(msg)
        out[name] = _plain(item, f"{key}.{name}")
    return out


def _entry(body: object, kind: str, name: str) -> dict[str, object]:
    if not is_name(name):
        msg = f'key "{kind}.{excerpt(name)[1:-1]}": the name {NAME_RULE}'
        raise _EntryError(msg)
    if body is None:  # "payment:" with nothing under it
        return {}
    if not isinstance(body, dict):
        msg = (
            f'key "{kind}.{name}": must be a mapping of field to value, got '
            f'{describe(body)}; write e.g. "{name}: {{max_failures: 3}}"'
        )
        raise _EntryError(msg)
    data = _plain_map(body, f"{kind}.{name}")
    size = len(json.dumps(data, separators=(",", ":")))
    if size > MAX_DOCUMENT_BYTES:
        msg = (
            f'key "{kind}.{name}": is {size} bytes as JSON, over the limit of '
            f"{MAX_DOCUMENT_BYTES} bytes for one document"
        )
        raise _EntryError(msg)
    return data


def check_top_level(doc: object, where: str) -> dict[object, object]:
    """The document as a mapping with known keys and ``version: 1``, or raise."""
    allowed = ", ".join(f'"{k}"' for k in TOP_KEYS)
    if not isinstance(doc, dict):
        msg = (
            f'file "{where}": the top level must be a mapping with the keys {allowed}, '
            f'got {describe(doc)}; start the file with "version: 1"'
        )
        raise DocumentError(msg)
    for key in doc:
        if key not in TOP_KEYS:
            near = difflib.get_close_matches(str(key)[:64], TOP_KEYS, n=1)
            hint = f' (did you mean "{near[0]}"?)' if near else ""
            shown = excerpt(repr(key))[1:-1]
            msg = f'file "{where}": unknown top-level key {shown}{hint}; use {allowed}'
            raise DocumentError(msg)
    version = doc.get("version", 1)
    # type() rather than isinstance(): ``version: true`` is not 1.
    if type(version) is not int or version != 1:
        msg = (
            f'file "{where}": "version" must be 1, got {describe(version)}; this '
            "cbcontrol reads version 1 documents (or leave the key out)"
        )
        raise DocumentError(msg)
    return doc


def parse_document(raw: bytes, where: str) -> ParsedDocument:
    """
    Parse and check a whole config document (syntax and shape, not field values).

    Raises:
        DocumentError: A whole-document problem (size, syntax, nesting, expansion,
            top-level shape), naming the file and the fix. A problem inside one
            entry is reported on that :class:`Entry` instead.
    """
    if not raw.strip():
        msg = f'file "{where}" is empty (or being written); write at least "version: 1"'
        raise DocumentError(msg)
    doc = check_top_level(load_yaml(raw, where), where)
    entries = []
    for kind in KINDS:
        section = doc.get(kind)
        if section is None:  # "breakers:" with every entry commented out
            continue
        if not isinstance(section, dict):
            msg = (
                f'file "{where}": "{kind}" must be a mapping of name to fields, got '
                f'{describe(section)}; write e.g. "{kind}: {{payment: {{max_failures: '
                '3}}"'
            )
            raise DocumentError(msg)
        for name, body in section.items():
            if not isinstance(name, str):
                msg = f'file "{where}": {kind} name {name!r} must be a string; quote it'
                raise DocumentError(msg)
            try:
                entries.append(Entry(kind, name, _entry(body, kind, name)))
            except _EntryError as exc:
                entries.append(Entry(kind, name, None, f'file "{where}", {exc}'))
    return ParsedDocument(tuple(entries))
