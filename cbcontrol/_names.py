"""
The one grammar of names: breakers, presets, namespaces and instance ids.

A name is 1 to 128 characters: ASCII letters, digits, ``.``, ``_`` and ``-``, starting
with a letter or a digit (``payment``, ``user-profile``, ``checkout_app-web-1-3fa2``).
It never holds ``/`` (a key separator), ``:``, ``@`` or ``#`` (provenance separators),
spaces or control characters, so a name read back from a key, a file or a status is
exactly the name that was written, and no key can shadow another name.

cbctl refuses a bad name with exit 2, the library with :class:`ConfigError`, and a
store key whose name breaks the grammar is reported and never applied.
"""

from __future__ import annotations

import re
from typing import Final

from cbcontrol._limits import excerpt
from cbcontrol.exceptions import ConfigError

__all__ = ["MAX_NAME_CHARS", "NAME_RULE", "check_name", "is_name", "sanitize"]

MAX_NAME_CHARS: Final = 128
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_NOT_ALLOWED: Final = re.compile(r"[^A-Za-z0-9._-]+")
NAME_RULE: Final = (
    "must be 1-128 characters of letters, digits, '.', '_' and '-', starting with "
    "a letter or a digit"
)
"""The grammar, as error messages state it."""


def is_name(text: object) -> bool:
    """Whether ``text`` is a valid name."""
    return isinstance(text, str) and _NAME.fullmatch(text) is not None


def check_name(kind: str, name: object, source: str | None = None) -> str:
    """
    Return ``name`` if it is a valid name, else raise.

    Args:
        kind: ``"breaker"``, ``"preset"``, ``"namespace"`` or ``"instance"``.
        name: The name to check.
        source: Where it came from, for the message.

    Raises:
        ConfigError: Naming the kind, the value (an excerpt) and the rule.
    """
    if is_name(name):
        return str(name)
    shown: object = name
    if isinstance(name, str) and len(name) > MAX_NAME_CHARS:
        shown = name[:MAX_NAME_CHARS] + "..."  # never echo a megabyte back
    elif not isinstance(name, str):
        shown = excerpt(repr(name))
    raise ConfigError(NAME_RULE, field=f"{kind} name", value=shown, source=source)


def sanitize(text: str) -> str:
    """``text`` made into a name: other characters become ``-`` (for instance ids)."""
    cleaned = _NOT_ALLOWED.sub("-", text).strip("-._")[:MAX_NAME_CHARS]
    return cleaned or "x"
