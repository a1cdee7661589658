"""
Instance labels and label selectors, with kubectl's syntax.

Every instance has labels: ``app`` and ``host`` (set by the library), ``instance`` (its
id), and what ``CBCONTROL_LABELS`` adds (``zone=eu-1,track=canary``). A selector picks
instances by their labels, as ``kubectl get -l`` does::

    zone=eu-1                 equality (also ``zone==eu-1``)
    track!=canary             inequality (true when the label is missing, too)
    zone in (eu-1,eu-2)       set membership
    zone notin (us-1)         set exclusion (true when the label is missing)
    canary                    the label exists
    !canary                   the label does not exist
    zone=eu-1,track=canary    commas join requirements: all must hold (AND)

A label key is 1-63 characters of letters, digits, ``-``, ``_`` and ``.``, starting
and ending with a letter or a digit, optionally after a DNS prefix and ``/``
(``example.com/zone``); a value is up to 128 such characters (an instance id fits), or
empty. Selectors have one canonical text (requirements sorted by key, set values
sorted), which names a scoped layer of a spec: ``zone=eu-1,track=canary`` and
``track=canary, zone=eu-1`` are the same scope.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from cbcontrol._limits import MAX_TEXT_CHARS
from cbcontrol.exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "AUTOMATIC_LABELS",
    "LABEL_RULE",
    "Requirement",
    "Selector",
    "parse_labels",
]

AUTOMATIC_LABELS: Final = ("app", "host", "instance")
"""Labels the library sets on each instance; ``CBCONTROL_LABELS`` cannot change them."""

_NAME_PART: Final = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?"
_KEY: Final = re.compile(rf"(?:[a-z0-9](?:[a-z0-9.-]{{0,251}}[a-z0-9])?/)?{_NAME_PART}")
_VALUE: Final = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?)?")
LABEL_RULE: Final = (
    "keys are 1-63 letters, digits, '-', '_' or '.' (optionally after 'prefix/'), "
    "values up to 128 of them, each starting and ending with a letter or a digit"
)
"""The label grammar, as error messages state it."""
_MAX_REQUIREMENTS: Final = 20

Op = Literal["=", "!=", "in", "notin", "exists", "!exists"]


@dataclass(frozen=True, slots=True, order=True)
class Requirement:
    """
    One condition of a selector on one label.

    Attributes:
        key: The label.
        op: ``=``, ``!=``, ``in``, ``notin``, ``exists`` or ``!exists``.
        values: The values it compares with (sorted; one for ``=`` and ``!=``).

    .. versionadded:: 0.3.0
    """

    key: str
    op: Op
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement."""
        value = labels.get(self.key)
        if self.op == "exists":
            return value is not None
        if self.op == "!exists":
            return value is None
        if self.op in ("=", "in"):
            return value is not None and value in self.values
        return value is None or value not in self.values

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!exists":
            return f"!{self.key}"
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        return f"{self.key}{self.op}{self.values[0]}"


@dataclass(frozen=True, slots=True)
class Selector:
    """
    A label selector (kubectl's syntax, see the module documentation).

    ``Selector.parse("zone=eu-1,track!=canary").matches({"zone": "eu-1"})`` is True.
    The empty selector matches every instance. ``str(selector)`` is its canonical
    text.

    .. versionadded:: 0.3.0
    """

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str, *, source: str = "selector") -> Selector:
        """
        Parse a selector.

        Raises:
            ConfigError: It is malformed, naming the requirement and the syntax.
        """
        if len(text) > MAX_TEXT_CHARS:
            rule = f"is {len(text)} characters, over the limit of {MAX_TEXT_CHARS}"
            raise ConfigError(rule, field="selector", value=_shown(text), source=source)
        requirements = [_requirement(part, text, source) for part in _split(text)]
        if len(requirements) > _MAX_REQUIREMENTS:
            rule = f"has more than {_MAX_REQUIREMENTS} requirements"
            raise ConfigError(rule, field="selector", value=_shown(text), source=source)
        return cls(tuple(sorted(set(requirements))))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an instance with ``labels`` is selected."""
        return all(r.matches(labels) for r in self.requirements)

    def __bool__(self) -> bool:
        return bool(self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _shown(text: str) -> str:
    """At most 60 characters of ``text`` quoted back in an error."""
    return text if len(text) <= 60 else text[:60] + "..."  # noqa: PLR2004


def _split(text: str) -> list[str]:
    """The requirements of a selector: commas split, except inside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    if len(parts) == 1 and not parts[0].strip():
        return []
    return parts


_SET: Final = re.compile(r"^\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*$")
_BINARY: Final = re.compile(r"^\s*([^=!\s]+)\s*(==|=|!=)\s*(\S*)\s*$")
_UNARY: Final = re.compile(r"^\s*(!?)\s*([^=!\s(),]+)\s*$")

_SYNTAX: Final = (
    "write requirements as key=value, key!=value, 'key in (a,b)', "
    "'key notin (a,b)', key or !key, joined by commas"
)


def _requirement(part: str, whole: str, source: str) -> Requirement:
    found = _read_requirement(part)
    if isinstance(found, Requirement):
        return found
    shown = _shown(part.strip() or whole)
    rule = f"{found}; {_SYNTAX}"
    raise ConfigError(rule, field="selector", value=shown, source=source)


def _read_requirement(part: str) -> Requirement | str:
    """The requirement ``part`` states, or why it states none."""
    if not part.strip():
        return "has an empty requirement"
    if (found := _SET.match(part)) is not None:
        key, op, inside = found.groups()
        values = tuple(sorted({v.strip() for v in inside.split(",")}))
        if not values or any(not v for v in values):
            return f"has an empty value in '{op} (...)'"
        requirement = Requirement(key, op, values)  # type: ignore[arg-type]
    elif (found := _BINARY.match(part)) is not None:
        key, op, value = found.groups()
        requirement = Requirement(key, "!=" if op == "!=" else "=", (value,))
    elif (found := _UNARY.match(part)) is not None:
        negated, key = found.groups()
        requirement = Requirement(key, "!exists" if negated else "exists")
    else:
        return "cannot be read"
    if not _KEY.fullmatch(requirement.key):
        return f"has the label key {requirement.key!r}, but {LABEL_RULE}"
    for value in requirement.values:
        if not _VALUE.fullmatch(value):
            return f"has the label value {value!r}, but {LABEL_RULE}"
    return requirement


def parse_labels(
    text: str, *, source: str = "env:CBCONTROL_LABELS"
) -> tuple[dict[str, str], list[ConfigError]]:
    """
    Labels from ``key=value,key=value`` text (``CBCONTROL_LABELS``).

    A bad entry is reported and skipped, never fatal (it comes from a deployment,
    and must not stop the application); so is an automatic label (``app``, ``host``,
    ``instance``), which the library sets.

    Returns:
        The labels, and the errors of the entries that were skipped.
    """
    labels: dict[str, str] = {}
    errors: list[ConfigError] = []
    if len(text) > MAX_TEXT_CHARS:
        rule = f"is {len(text)} characters, over the limit of {MAX_TEXT_CHARS}"
        return {}, [
            ConfigError(rule, field="labels", value=_shown(text), source=source)
        ]
    for part in filter(str.strip, text.split(",")):
        key, sep, value = (p.strip() for p in part.partition("="))
        if not sep or not _KEY.fullmatch(key) or not _VALUE.fullmatch(value):
            rule = f"must be key=value, where {LABEL_RULE}"
            errors.append(
                ConfigError(rule, field="labels", value=_shown(part), source=source)
            )
        elif key in AUTOMATIC_LABELS:
            rule = f"cannot set {key!r}: the library sets {', '.join(AUTOMATIC_LABELS)}"
            errors.append(
                ConfigError(rule, field="labels", value=_shown(part), source=source)
            )
        else:
            labels[key] = value
    return labels, errors
