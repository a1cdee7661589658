"""
The tunable fields of a breaker, as the CLI sees them.

Everything here derives from :class:`cbcontrol.config.BreakerConfig` (its fields, their
docstrings and JSON Schema), so a field added to the library gets its ``set`` option,
its ``unset`` flag, its column and its formatting without a change in cbctl.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "METADATA",
    "Field",
    "coerce",
    "fields",
    "flag",
    "format_value",
    "normalize",
]

Kind = Literal["int", "float", "duration", "choice", "str"]

METADATA = ("generation", "updated_by", "updated_at", "reason")
"""Spec keys that cbctl maintains (ControlStore.update manages them)."""

_NULL_WORDS = ("none", "null")


@dataclass(frozen=True, slots=True)
class Field:
    """One config field: its name, how its value is written, and its help."""

    name: str
    kind: Kind
    nullable: bool
    choices: tuple[str, ...]
    help: str
    default: object

    @property
    def flag(self) -> str:
        """The option that sets it: ``max_failures`` -> ``--max-failures``."""
        return flag(self.name)

    @property
    def metavar(self) -> str:
        """How its value is written, for the help."""
        word = {
            "int": "INT",
            "float": "NUMBER",
            "duration": "DURATION",
            "str": "TEXT",
            "choice": "|".join(self.choices),
        }[self.kind]
        return f"{word}|none" if self.nullable else word


def flag(name: str) -> str:
    """The command-line option of a field or key."""
    return "--" + name.replace("_", "-")


def _variants(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives of a property schema, nested ``anyOf`` flattened."""
    if "anyOf" in schema:
        return [v for s in schema["anyOf"] for v in _variants(s)]
    return [schema]


def _field(name: str, schema: dict[str, Any]) -> Field:
    variants = _variants(schema)
    types = {v.get("type") for v in variants}
    nullable = "null" in types
    choices: tuple[str, ...] = ()
    kind: Kind
    if any("pattern" in v for v in variants):
        kind = "duration"  # the library's Duration: a number or a '30s' string
    elif any("enum" in v for v in variants):
        kind = "choice"
        choices = tuple(c for v in variants for c in v.get("enum", ()))
    elif "integer" in types:
        kind = "int"
    elif "number" in types:
        kind = "float"
    else:
        kind = "str"
    text = " ".join(str(schema.get("description", "")).replace("``", "").split())
    if nullable:
        text += " 'none' clears it."
    return Field(name, kind, nullable, choices, text, schema.get("default"))


@functools.cache
def fields() -> dict[str, Field]:
    """Every tunable field, in the library's declaration order."""
    from cbcontrol.config import BreakerConfig

    properties = BreakerConfig.model_json_schema()["properties"]
    return {name: _field(name, properties[name]) for name in BreakerConfig.model_fields}


def coerce(field: Field, text: str) -> object:
    """
    Turn an option's text into the value to store (the library validates it after).

    Durations stay text (``30s``), as operators wrote them, unless they are plain
    numbers of seconds; ``none`` clears an optional field.

    Raises:
        ValueError: The text is not a number where one is needed.
    """
    if field.nullable and text.strip().lower() in _NULL_WORDS:
        return None
    if field.kind == "int":
        try:
            return int(text)
        except ValueError:
            msg = "must be an integer"
            raise ValueError(msg) from None
    if field.kind == "duration":
        try:
            number = float(text)
        except ValueError:
            return text  # "30s": the library parses and checks it
        return int(number) if number.is_integer() and "." not in text else number
    if field.kind == "float":
        try:
            number = float(text)
        except ValueError:
            msg = "must be a number"
            raise ValueError(msg) from None
        return int(number) if number.is_integer() and "." not in text else number
    return text


def format_value(name: str, value: object) -> str:
    """A value for humans: durations as ``1m30s``, unset as ``-``."""
    from cbcontrol.config import format_duration

    if value is None:
        return "-"
    field = fields().get(name)
    if (
        field is not None
        and field.kind == "duration"
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ):
        return format_duration(float(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def normalize(doc: dict[str, Any]) -> dict[str, Any]:
    """
    A spec document with its values as the library reads them (durations in seconds).

    Two documents that mean the same (``30s`` and ``30``) normalize to equal dicts.
    An invalid document is returned as it is.
    """
    from pydantic import ValidationError

    from cbcontrol.config import BreakerSpec

    try:
        spec = BreakerSpec.model_validate(doc)
    except ValidationError:
        return dict(doc)
    return spec.model_dump(mode="json", exclude_unset=True)
