"""
The config fields as readers without pydantic see them, from the generated catalog.

Everything here derives from :mod:`cbcontrol.config._catalog`, which
``schemas/generate.py`` writes from ``BreakerConfig`` (and checks in CI): the field
names in declaration order, their kinds, bounds, units, defaults and help. cbctl
builds its ``--FIELD`` options from it; the status layout reads stored values with
:func:`as_read`; tools turn an operator's text into a value with :func:`parse_text`.
The models stay the one validator: what is parsed here is validated there before it
is written or applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from cbcontrol.config._catalog import FIELDS as _DATA
from cbcontrol.config._duration import format_duration, parse_duration
from cbcontrol.exceptions import ConfigError

__all__ = [
    "CONFIG_FIELDS",
    "DURATION_FIELDS",
    "FIELDS",
    "FLOAT_FIELDS",
    "PERCENT_FIELDS",
    "FieldInfo",
    "as_read",
    "format_value",
    "parse_text",
]

FieldKind = Literal["int", "float", "duration", "choice", "text"]
_NULL_WORDS: Final = frozenset({"none", "null"})
_BOUND_TEXT: Final = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """
    One tunable field of a breaker: what it holds and how it is written.

    Attributes:
        name: ``max_failures``.
        kind: ``int``, ``float``, ``duration`` (float seconds, written ``30s``),
            ``choice`` or ``text``.
        nullable: Whether null (``none``) is a value: it disables a rule or a limit.
        default: The built-in default.
        choices: The allowed values of a ``choice``.
        bounds: ``{"gt" | "ge" | "lt" | "le": number}``.
        unit: ``seconds``, ``percent`` or None.
        help: The field's documentation.

    .. versionadded:: 0.3.0
    """

    name: str
    kind: FieldKind
    nullable: bool
    default: object
    choices: tuple[str, ...]
    bounds: dict[str, float]
    unit: str | None
    help: str

    @property
    def flag(self) -> str:
        """The command-line option that sets it: ``--max-failures``."""
        return "--" + self.name.replace("_", "-")

    @property
    def rule(self) -> str:
        """What a value must be, in words: ``an integer >= 1, or none``."""
        noun = {
            "int": "an integer",
            "float": "a number",
            "duration": "a duration (30s, 1m30s, 250ms, or seconds)",
            "choice": "one of " + ", ".join(self.choices),
            "text": "text",
        }[self.kind]
        limits = " and ".join(
            f"{_BOUND_TEXT[b]} {_number(v)}" for b, v in self.bounds.items()
        )
        if limits and self.unit == "percent":
            limits += " (percent; 50% or 50)"
        text = f"{noun} {limits}".strip()
        return f"{text}, or none" if self.nullable else text

    def format(self, value: object) -> str:
        """A value for people: ``1m30s``, ``50%``, ``-`` for none."""
        return format_value(self.name, value)


def _info(data: dict[str, Any]) -> FieldInfo:
    return FieldInfo(
        name=data["name"],
        kind=data["kind"],
        nullable=data["nullable"],
        default=data["default"],
        choices=tuple(data["choices"]),
        bounds=dict(data["bounds"]),
        unit=data["unit"],
        help=data["help"],
    )


FIELDS: Final[dict[str, FieldInfo]] = {d["name"]: _info(d) for d in _DATA}
"""Every tunable field, by name, in ``BreakerConfig``'s declaration order."""

CONFIG_FIELDS: Final[tuple[str, ...]] = tuple(FIELDS)
"""The tunable fields of ``BreakerConfig``, in declaration order."""

DURATION_FIELDS: Final = frozenset(n for n, f in FIELDS.items() if f.kind == "duration")
"""Fields written as durations (``30s``) and held as float seconds."""

FLOAT_FIELDS: Final = frozenset(n for n, f in FIELDS.items() if f.kind == "float")
"""Fields held as floats (an integer given is stored as written, read as a float)."""

PERCENT_FIELDS: Final = frozenset(n for n, f in FIELDS.items() if f.unit == "percent")
"""Fields that are percentages (``50`` is 50 %; ``50%`` is accepted as input)."""


def _number(value: float) -> str:
    return f"{value:g}"


def as_read(name: str, value: object) -> object:
    """
    A stored config value as the library holds it (``"30s"`` -> ``30.0``).

    For a value the library accepted; anything else raises ``ValueError`` or
    ``TypeError`` (a duration that is not one).
    """
    if value is None:
        return None
    if name in DURATION_FIELDS:
        return parse_duration(value)
    if name in FLOAT_FIELDS and type(value) is int:
        return float(value)
    return value


def format_value(name: str, value: object) -> str:
    """A value for people: durations as ``1m30s``, percentages as ``50%``, none as -."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if name in DURATION_FIELDS and isinstance(value, int | float):
        return format_duration(float(value))
    if isinstance(value, int | float):
        text = _number(value)
        return f"{text}%" if name in PERCENT_FIELDS else text
    return str(value)


def parse_text(name: str, text: str, *, source: str = "argument") -> object:
    """
    The value an operator means by ``text`` for field ``name``.

    ``3`` for an integer, ``50%`` or ``50`` for a percentage, ``30s`` (kept as
    written) or ``30`` for a duration, ``none`` to clear a nullable field. The value
    is then validated by the models with every other rule before it is written.

    Raises:
        ConfigError: The field is unknown, or the text is not of its kind, naming the
            field, the text and what it must be.

    .. versionadded:: 0.3.0
    """
    field = FIELDS.get(name)
    if field is None:
        import difflib

        close = difflib.get_close_matches(name, CONFIG_FIELDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        rule = f"is not a config field; {hint}fields: {', '.join(CONFIG_FIELDS)}"
        raise ConfigError(rule, field=name, value=text, source=source)
    stripped = text.strip()
    if stripped.lower() in _NULL_WORDS:
        if field.nullable:
            return None
        rule = f"cannot be none; it must be {field.rule}"
        raise ConfigError(rule, field=name, value=text, source=source)
    try:
        return _parse(field, stripped)
    except ValueError:
        rule = f"must be {field.rule}"
        raise ConfigError(rule, field=name, value=text, source=source) from None


def _parse(field: FieldInfo, text: str) -> object:
    if field.kind == "int":
        return int(text)
    if field.kind == "float":
        if field.unit == "percent":
            text = text.removesuffix("%").strip()
        number = float(text)
        if number != number or number in (float("inf"), float("-inf")):  # noqa: PLR0124
            raise ValueError(text)
        return int(number) if number.is_integer() and "." not in text else number
    if field.kind == "duration":
        parse_duration(text)  # raises ValueError when it is not one
        try:
            number = float(text)
        except ValueError:
            return text  # "30s": kept as the operator wrote it
        return int(number) if number.is_integer() and "." not in text else number
    if field.kind == "choice" and text not in field.choices:
        raise ValueError(text)
    return text
