"""
Config documents on disk: load, check (every error), and diff against a store.

A document is what the file store holds and what ``cbctl export`` writes:
``version``, ``presets``, ``breakers`` (a :class:`cbcontrol.config.ConfigDocument`).
Checking goes beyond the schema: each breaker must also resolve over the presets it
can see (built-in, the store's, the document's), as instances will resolve it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cbctl._errors import CliError
from cbctl._fields import METADATA, fields, normalize
from cbctl._views import resolve_effective

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pydantic import ValidationError

    from cbcontrol.config import ConfigDocument, PresetSpec
    from cbctl._write import Change

__all__ = ["Diff", "Loaded", "check", "diff", "load", "merged_presets"]

_OPERATIONAL = ("override", "reset_generation")
"""Kept from the store when a document does not mention them (a trip survives apply)."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """A document as read: its plain data, its validated form, its errors."""

    where: str
    data: dict[str, Any]
    document: ConfigDocument | None
    errors: tuple[str, ...]


def _plain(value: object) -> object:
    """YAML values as JSON types (keys as text; the loader bounds the expansion)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _read(path: str) -> tuple[str, bytes]:
    """The bytes of a document, never more than one past the limit (refused then)."""
    from cbcontrol.config import MAX_FILE_BYTES

    if path == "-":
        return "<stdin>", sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    try:
        with Path(path).open("rb") as file:
            return path, file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror or exc}"
        raise CliError(msg) from None


def _message(error: Mapping[str, Any]) -> str:
    path = ".".join(str(p) for p in error["loc"]) or "(document)"
    msg = str(error["msg"]).removeprefix("Value error, ")
    if "input" in error and ", got " not in msg and error["type"] != "missing":
        msg += f", got {error['input']!r}"
    return f"{path}: {msg}"


def load(path: str, presets: Mapping[str, PresetSpec] | None = None) -> Loaded:
    """
    Read and check a document (``-`` reads stdin); errors are collected, not raised.

    Args:
        path: The YAML file.
        presets: The presets breakers may use besides the document's (default: the
            built-in ones).

    Raises:
        CliError: The file cannot be read.
    """
    from pydantic import ValidationError

    from cbcontrol.config import ConfigDocument, DocumentError, load_yaml

    where, text = _read(path)
    try:
        raw = load_yaml(text, where)
    except DocumentError as exc:
        detail = " ".join(str(exc).split())
        return Loaded(where, {}, None, (f"(document): {detail}",))
    data = _plain(raw)
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        msg = (
            f"(document): must be a mapping with version, presets, breakers; got {kind}"
        )
        return Loaded(where, {}, None, (msg,))
    try:
        document = ConfigDocument.model_validate(data)
    except ValidationError as exc:
        errors = [_message(e) for e in exc.errors()]
        valid = _valid_part(data, exc)
        errors += [] if valid is None else check(valid, presets)
        return Loaded(where, data, None, tuple(errors))
    return Loaded(where, data, document, tuple(check(document, presets)))


def _valid_part(data: dict[str, Any], exc: ValidationError) -> ConfigDocument | None:
    """The entries without a schema error, to check further (None if none are)."""
    from pydantic import ValidationError

    from cbcontrol.config import ConfigDocument

    bad = {tuple(str(p) for p in e["loc"][:2]) for e in exc.errors()}
    part: dict[str, Any] = {}
    for kind in ("presets", "breakers"):
        section = data.get(kind)
        if not isinstance(section, dict) or (kind,) in bad:
            continue
        part[kind] = {n: v for n, v in section.items() if (kind, str(n)) not in bad}
    try:
        return ConfigDocument.model_validate(part)
    except ValidationError:
        return None


def merged_presets(
    base: Mapping[str, PresetSpec], extra: Mapping[str, PresetSpec]
) -> dict[str, PresetSpec]:
    """``base`` extended, field by field, by ``extra`` (as the library merges them)."""
    from cbcontrol.config import PresetSpec

    table = dict(base)
    for name, spec in extra.items():
        below = table[name].config_values() if name in table else {}
        table[name] = PresetSpec.model_validate({**below, **spec.config_values()})
    return table


def check(
    document: ConfigDocument, presets: Mapping[str, PresetSpec] | None = None
) -> list[str]:
    """Every name must follow the grammar; every breaker resolve to a valid config."""
    from cbcontrol.config import BUILTIN_PRESETS
    from cbcontrol.store import NAME_RULE, is_name

    errors = [
        f"{kind}.{name}: the name {NAME_RULE}"
        for kind, names in (
            ("presets", document.presets),
            ("breakers", document.breakers),
        )
        for name in names
        if not is_name(name)
    ]
    if errors:
        return errors
    table = merged_presets(
        BUILTIN_PRESETS if presets is None else presets, document.presets
    )
    for name, spec in document.breakers.items():
        _, error = resolve_effective(name, spec, "file:", table)
        if error is not None:
            errors.append(f"breakers.{name}: {error}")
    return errors


@dataclass(slots=True)
class Diff:
    """What applying a document changes: ``{name: {field: (old, new)}}`` per kind."""

    presets: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)
    breakers: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.presets or self.breakers)

    def to_json(self) -> dict[str, Any]:
        """``{"presets": {name: {field: [old, new]}}, "breakers": {...}}``."""
        return {
            kind: {n: {f: list(c) for f, c in d.items()} for n, d in table.items()}
            for kind, table in (("presets", self.presets), ("breakers", self.breakers))
        }


_ABSENT = object()


def _changes(
    old: Mapping[str, Any], new: Mapping[str, Any], keys: list[str]
) -> dict[str, tuple[Any, Any]]:
    changes = {}
    for key in keys:
        before, after = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if before != after:
            changes[key] = (
                None if before is _ABSENT else before,
                None if after is _ABSENT else after,
            )
    return changes


def breaker_keys(desired: Mapping[str, Any]) -> list[str]:
    """The keys a document sets for a breaker: config and preset, and what it names."""
    return [*fields(), "preset", *(k for k in _OPERATIONAL if k in desired)]


def desired_of(document: ConfigDocument, name: str) -> dict[str, Any]:
    """A breaker's desired state in ``document``, normalized, without metadata."""
    spec = document.breakers[name]
    return spec.model_dump(mode="json", exclude_unset=True, exclude=set(METADATA))


def diff(
    document: ConfigDocument,
    current_presets: Mapping[str, PresetSpec],
    current_specs: Mapping[str, Mapping[str, Any]],
) -> Diff:
    """What applying ``document`` over the store's presets and specs would change."""
    result = Diff()
    for name, preset in document.presets.items():
        old = current_presets.get(name)
        before = {} if old is None else old.model_dump(mode="json", exclude_unset=True)
        after = preset.model_dump(mode="json", exclude_unset=True)
        changes = _changes(before, after, list(fields()))
        if changes:
            result.presets[name] = changes
    for name in document.breakers:
        desired = desired_of(document, name)
        current = normalize(dict(current_specs.get(name, {})))
        changes = _changes(current, desired, breaker_keys(desired))
        if changes:
            result.breakers[name] = changes
    return result


def change_towards(desired: Mapping[str, Any], raw: Mapping[str, Any]) -> Change:
    """
    The ``ControlStore.update`` change that brings a stored spec to ``desired``.

    Keys that already mean the same keep their stored text; the others take the
    document's raw value (``raw``), or go when the document leaves them out.
    """

    def change(doc: dict[str, Any]) -> dict[str, Any]:
        current = normalize(doc)
        new = dict(doc)
        for key in _changes(current, desired, breaker_keys(desired)):
            if key in raw:
                new[key] = raw[key]
            else:
                new.pop(key, None)
        return new

    return change
