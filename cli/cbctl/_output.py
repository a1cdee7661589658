"""
Output formats (``-o``), the terminal, and the JSON, YAML and jsonpath writers.

``-o`` takes what kubectl users type: ``table`` (the default), ``wide``, ``json``,
``yaml``, ``name`` and ``jsonpath=TEMPLATE`` (kubectl's JSONPath subset:
``{.spec.max_failures}``, ``{.items[*].name}``,
``{range .items[*]}{.name}{"\\n"}{end}``).

A table is laid out for the terminal when stdout is one (its width, or ``COLUMNS``),
coloured unless ``NO_COLOR`` is set or ``TERM`` is ``dumb`` (``FORCE_COLOR`` forces
colour anywhere). Piped, a table is plain text, never cut nor wrapped: one row a line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "TABLE",
    "YAML",
    "Output",
    "Terminal",
    "emit",
    "jsonpath",
    "parse_output",
    "to_json",
    "to_yaml",
]

Format = Literal["table", "wide", "json", "yaml", "name", "jsonpath"]
FORMATS: Final = ("table", "wide", "json", "yaml", "name", "jsonpath=TEMPLATE")


class Output(NamedTuple):
    """An ``-o`` value: the format, and the template of ``jsonpath``."""

    format: Format = "table"
    template: str = ""

    @property
    def text(self) -> bool:
        """A table (``table`` or ``wide``), not data."""
        return self.format in ("table", "wide")

    @property
    def wide(self) -> bool:
        """``-o wide``."""
        return self.format == "wide"


TABLE: Final = Output()
"""The default format."""
YAML: Final = Output("yaml")
"""YAML (``export``'s default)."""


def parse_output(value: str, allowed: tuple[str, ...] | None = None) -> Output:
    """
    Read an ``-o`` value.

    Raises:
        ValueError: It is none of the formats (``allowed``, if given), naming them.
    """
    name, sep, template = value.partition("=")
    if name in ("jsonpath", "template") and sep:
        found = Output("jsonpath", template)
    elif name in ("table", "wide", "json", "yaml", "name") and not sep:
        found = Output(name)  # type: ignore[arg-type]
    else:
        found = None
    formats = FORMATS if allowed is None else allowed
    if found is None or (allowed is not None and found.format not in _bare(allowed)):
        msg = f"{value!r} is not one of {', '.join(formats)}"
        raise ValueError(msg)
    return found


def _bare(formats: tuple[str, ...]) -> set[str]:
    return {f.partition("=")[0] for f in formats}


class Terminal(NamedTuple):
    """Where output goes: its width (None: piped, never cut) and colour."""

    width: int | None
    color: bool

    @classmethod
    def detect(cls, stream: Any = None) -> Terminal:
        """The terminal of ``stream`` (stdout), from the environment."""
        out = sys.stdout if stream is None else stream
        try:
            tty = out.isatty()
        except (AttributeError, ValueError):
            tty = False
        env = os.environ
        color = (tty and "NO_COLOR" not in env and env.get("TERM") != "dumb") or bool(
            env.get("FORCE_COLOR")
        )
        if not tty:
            return cls(None, color)
        return cls(max(20, shutil.get_terminal_size((100, 24)).columns), color)

    def paint(self, text: str, style: str | None) -> str:
        """``text`` in ``style`` (``green``, ``red``, ``bold``, ...) when coloured."""
        if not self.color or not style or not text:
            return text
        codes = ";".join(_SGR[s] for s in style.split() if s in _SGR)
        return f"\x1b[{codes}m{text}\x1b[0m" if codes else text


_SGR: Final = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
    "reverse": "7",
}


def to_json(data: object, *, indent: int | None = 2) -> str:
    """Stable JSON (one line with ``indent=None``)."""
    if indent is None:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"
    return json.dumps(data, indent=indent, ensure_ascii=False) + "\n"


def to_yaml(data: object, *, comment: str | None = None) -> str:
    """Block-style YAML that keeps key order; null written as ``null``; no anchors."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.representer.add_representer(
        type(None),
        lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"),
    )
    # Views share sub-objects: write them out in full, not as &id001 anchors.
    yaml.representer.ignore_aliases = lambda _: True
    buffer = io.StringIO()
    if comment is not None:
        buffer.write(f"# {comment}\n")
    yaml.dump(data, buffer)
    return buffer.getvalue()


# -- jsonpath: kubectl's subset -----------------------------------------------------

_TOKEN: Final = re.compile(r"\{(.*?)\}", re.DOTALL)
_STEP: Final = re.compile(r"\.([^.\[\]]+)|\[(\*|-?\d+)\]|\[\?\((.*?)\)\]")


def _steps(path: str) -> list[tuple[str, str]]:
    """``.items[*].name`` as ``[("key", "items"), ("index", "*"), ("key", "name")]``."""
    path = path.strip()
    if path in ("", "@", "$", "."):
        return []
    path = path.removeprefix("$")
    if not path.startswith((".", "[")):
        path = "." + path
    steps, at = [], 0
    while at < len(path):
        found = _STEP.match(path, at)
        if found is None:
            msg = f"cannot read {path[at:]!r} in the jsonpath {path!r}"
            raise ValueError(msg)
        key, index, _ = found.groups()
        steps.append(("key", key) if key is not None else ("index", index))
        at = found.end()
    return steps


def _select(values: list[Any], steps: list[tuple[str, str]]) -> list[Any]:
    for kind, arg in steps:
        nxt: list[Any] = []
        for value in values:
            if kind == "key" and isinstance(value, dict) and arg in value:
                nxt.append(value[arg])
            elif kind == "index" and isinstance(value, list):
                if arg == "*":
                    nxt.extend(value)
                elif -len(value) <= int(arg) < len(value):
                    nxt.append(value[int(arg)])
            elif kind == "key" and arg == "*" and isinstance(value, dict):
                nxt.extend(value.values())
        values = nxt
    return values


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def jsonpath(template: str, data: object) -> str:
    """
    Render a kubectl-style JSONPath template over ``data``.

    Raises:
        ValueError: The template cannot be read, naming the part.
    """
    parts = _TOKEN.split(template)
    out: list[str] = []
    _render(parts, 0, len(parts), data, out)
    return "".join(out)


def _render(
    parts: list[str], start: int, end: int, data: object, out: list[str]
) -> int:
    """Render ``parts[start:end]`` (text, expression, text, ...) against ``data``."""
    i = start
    while i < end:
        if i % 2 == 0:  # text between expressions
            out.append(parts[i])
            i += 1
            continue
        expr = parts[i].strip()
        if expr.startswith("range "):
            close = _matching_end(parts, i)
            for item in _select([data], _steps(expr[len("range ") :])):
                _render(parts, i + 1, close, item, out)
            i = close + 1
            continue
        if expr == "end":
            msg = "{end} without {range ...} in the jsonpath template"
            raise ValueError(msg)
        if expr.startswith(('"', "'")) and expr.endswith(expr[0]) and len(expr) > 1:
            out.append(expr[1:-1].encode().decode("unicode_escape"))
        else:
            out.append(" ".join(_text(v) for v in _select([data], _steps(expr))))
        i += 1
    return i


def _matching_end(parts: list[str], at: int) -> int:
    depth = 0
    for i in range(at, len(parts)):
        if i % 2 == 0:
            continue
        expr = parts[i].strip()
        if expr.startswith("range "):
            depth += 1
        elif expr == "end":
            depth -= 1
            if depth == 0:
                return i
    msg = "{range ...} without {end} in the jsonpath template"
    raise ValueError(msg)


def emit(
    output: Output,
    *,
    data: Callable[[], object],
    lines: Callable[[Terminal], list[str]] | None = None,
    names: Callable[[], list[str]] | None = None,
    root: Callable[[], object] | None = None,
) -> None:
    """
    Print in the format ``-o`` asks for.

    Args:
        output: The format.
        data: The JSON data (``-o json``, ``-o yaml``).
        lines: The table, for a terminal (``-o table``, ``-o wide``).
        names: ``kind/name`` lines (``-o name``).
        root: What ``-o jsonpath`` reads (default: ``data``; a list is ``{"items"}``).
    """
    out = sys.stdout
    if output.format == "json":
        out.write(to_json(data()))
    elif output.format == "yaml":
        out.write(to_yaml(data()))
    elif output.format == "name" and names is not None:
        out.write("".join(f"{n}\n" for n in names()))
    elif output.format == "jsonpath":
        found = data() if root is None else root()
        if isinstance(found, list):
            found = {"items": found}
        try:
            out.write(jsonpath(output.template, found))
        except ValueError as exc:
            from cbctl._errors import UsageError

            msg = f"invalid -o jsonpath: {exc}"
            raise UsageError(msg) from None
    elif lines is not None:
        out.write("".join(f"{line}\n" for line in lines(Terminal.detect())))
    else:
        out.write(to_json(data()))
    out.flush()
