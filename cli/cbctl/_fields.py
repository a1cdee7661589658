"""
The tunable fields of a breaker, as the CLI sees them.

Everything here derives from :class:`cbcontrol.config.BreakerConfig` (its fields, their
docstrings and JSON Schema), so a field added to the library gets its ``set`` option,
its ``unset`` flag, its column and its formatting without a change in cbctl.
"""

from __future__ import annotations

import functools
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

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


def _field(name: str, annotation: Any, metadata: list[Any], info: Any) -> Field:
    from cbcontrol.config import parse_duration

    kinds: list[Kind] = []
    choices: list[str] = []
    nullable = False

    def walk(tp: Any, meta: list[Any]) -> None:
        nonlocal nullable
        origin = get_origin(tp)
        if origin is Annotated:
            base, *extra = get_args(tp)
            walk(base, [*meta, *extra])
        elif origin in (Union, types.UnionType):
            for arg in get_args(tp):
                walk(arg, meta)
        elif tp is type(None):
            nullable = True
        elif origin is Literal:
            kinds.append("choice")
            choices.extend(str(c) for c in get_args(tp))
        elif any(getattr(m, "func", None) is parse_duration for m in meta):
            kinds.append("duration")  # the library's Duration: a number or '30s'
        else:
            kinds.append({int: "int", float: "float"}.get(tp, "str"))  # type: ignore[arg-type]

    walk(annotation, metadata)
    text = " ".join(str(info.description or "").replace("``", "").split())
    if nullable:
        text += " 'none' clears it."
    kind: Kind = kinds[0] if kinds else "str"
    return Field(name, kind, nullable, tuple(choices), text, info.default)


@functools.cache
def fields() -> dict[str, Field]:
    """Every tunable field, in the library's declaration order."""
    # Read from the model's field declarations, not its JSON Schema: building the
    # schema at every cbctl start cost ~10 ms.
    from cbcontrol.config import BreakerConfig

    return {
        name: _field(name, info.annotation, list(info.metadata), info)
        for name, info in BreakerConfig.model_fields.items()
    }


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
    # DURATION_FIELDS, not fields(): reading the model's fields loads pydantic.
    from cbcontrol.config import DURATION_FIELDS, format_duration

    if value is None:
        return "-"
    if (
        name in DURATION_FIELDS
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
