"""
Bounds on everything cbcontrol reads from outside: size, nesting, expansion, text.

Every document that comes from a store key, a file, the cache, the environment or the
command line is hostile until checked. The checks here run *before* a parser can
spend memory or time on it (size), or while it parses (nesting depth, YAML alias
expansion: see :mod:`cbcontrol.config._yamldoc`), and every error they raise names the
thing, the limit and the actual size, and quotes at most a short excerpt.

The limits are documented in ``docs/store.md``; a test there keeps the page honest.
"""

from __future__ import annotations

import json
import math
import re
from typing import Final

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_ERRORS",
    "MAX_ERROR_CHARS",
    "MAX_FILE_BYTES",
    "MAX_RECORD_BYTES",
    "MAX_TEXT_CHARS",
    "MAX_YAML_NODES",
    "DocumentError",
    "bounded_errors",
    "clip",
    "excerpt",
    "load_json",
    "load_object",
]

MAX_DOCUMENT_BYTES: Final = 32 * 1024
"""A breaker spec, a preset, a history record or an instance's identity."""
MAX_RECORD_BYTES: Final = 8 * 1024
"""One breaker's status record."""
MAX_FILE_BYTES: Final = 4 * 1024 * 1024
"""The YAML file store, a document given to ``cbctl apply``/``validate``, the cache."""
MAX_DEPTH: Final = 16
"""Nesting of objects and arrays (a spec needs 3)."""
MAX_YAML_NODES: Final = 200_000
"""Values in a YAML document once every alias is expanded."""
MAX_TEXT_CHARS: Final = 1024
"""An environment value, a ``--reason``, an override reason kept in status."""
MAX_ERROR_CHARS: Final = 600
"""One error message, as logged and reported in status."""
MAX_ERRORS: Final = 50
"""Errors one instance reports in its status (the rest are counted)."""
_EXCERPT_CHARS: Final = 60
_NESTING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class DocumentError(ValueError):
    """A document broke a limit or does not parse; the message says which and where."""


def excerpt(data: bytes | str, limit: int = _EXCERPT_CHARS) -> str:
    """The start of ``data``, quoted on one line, at most ``limit`` characters."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text[: limit + 1]
    short = text[:limit] + ("..." if len(text) > limit else "")
    return repr(short)


def clip(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``message`` cut to ``limit`` characters, marking the cut."""
    if len(message) <= limit:
        return message
    return message[: limit - 15] + " ... (clipped)"


def bounded_errors(errors: dict[str, str], limit: int = MAX_ERRORS) -> dict[str, str]:
    """At most ``limit`` errors, each clipped; the rest counted under ``"more"``."""
    keys = sorted(errors)
    kept = {key: clip(errors[key]) for key in keys[:limit]}
    if len(keys) > limit:
        kept["more"] = f"{len(keys) - limit} more errors not shown"
    return kept


def _depth(raw: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return 0  # cannot be deeper than the limit: skip the scan
    depth = deepest = 0
    for token in _NESTING.finditer(raw):
        char = token.group()
        if char in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif char in (b"]", b"}"):
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> float:
    msg = f"{name} is not a number JSON allows"
    raise ValueError(msg)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        msg = f"{text} is out of the range of a finite number"
        raise ValueError(msg)
    return value


def load_json(
    raw: bytes,
    what: str,
    *,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    expected: str = "a JSON document",
) -> object:
    """
    Parse JSON from outside, within the limits.

    Args:
        raw: The bytes.
        what: The thing, for messages: ``'etcd key "/cbcontrol/ns/breakers/x"'``.
        max_bytes: The size limit.
        expected: What it must be, for messages.

    Raises:
        DocumentError: Too big, too deep, not UTF-8, not JSON, or a non-finite number;
            the message names ``what``, the limit and the actual size or depth.
    """
    if len(raw) > max_bytes:
        msg = (
            f"{what} is {len(raw)} bytes, over the limit of {max_bytes} bytes; "
            f"store a smaller document (it starts {excerpt(raw)})"
        )
        raise DocumentError(msg)
    depth = _depth(raw)
    if depth > MAX_DEPTH:
        msg = (
            f"{what} nests {depth} levels deep, over the limit of {MAX_DEPTH}; "
            f"it starts {excerpt(raw)}"
        )
        raise DocumentError(msg)
    try:
        return json.loads(
            raw.decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_float=_finite,
        )
    except UnicodeDecodeError as exc:
        got = f"bytes that are not UTF-8 ({exc.reason})"
    except json.JSONDecodeError as exc:
        got = f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    except ValueError as exc:  # a constant or a number refused above, or a huge int
        got = f"invalid JSON ({exc})"
    msg = f"{what} must be {expected}, got {got}: {excerpt(raw)}"
    raise DocumentError(msg)


_JSON_TYPES: Final = {
    list: "a JSON array",
    str: "a JSON string",
    bool: "a JSON boolean",
    int: "a JSON number",
    float: "a JSON number",
    type(None): "JSON null",
}


def load_object(
    raw: bytes, what: str, *, max_bytes: int = MAX_DOCUMENT_BYTES
) -> dict[str, object]:
    """
    :func:`load_json` for a document that must be a JSON object.

    Raises:
        DocumentError: As :func:`load_json`, or the value is not an object.
    """
    data = load_json(raw, what, max_bytes=max_bytes, expected="a JSON object")
    if not isinstance(data, dict):
        got = _JSON_TYPES.get(type(data), type(data).__name__)
        msg = f"{what} must be a JSON object, got {got}: {excerpt(raw)}"
        raise DocumentError(msg)
    return data
