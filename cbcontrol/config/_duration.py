"""Durations as operators write them: ``30s``, ``1m30s``, ``250ms`` or plain seconds."""

from __future__ import annotations

import math
import re
from datetime import timedelta

__all__ = ["DURATION_PATTERN", "format_duration", "parse_duration"]

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|h|m|s)")
DURATION_PATTERN = (
    r"^\s*(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ms|us|µs|h|m|s))+\s*$"
    r"|^\s*\d+(?:\.\d*)?\s*$"
)
"""The JSON Schema pattern of a duration string (for editors; parsing is stricter)."""
_WHOLE = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ms|us|µs|h|m|s))+")
_RULE = "must be a duration such as '30s', '1m30s', '250ms' or a number of seconds"


def parse_duration(value: object) -> float:
    """
    Convert ``value`` to seconds.

    Accepts ``int``/``float`` seconds, :class:`datetime.timedelta`, and strings in
    Go's ``time.ParseDuration`` style (``"1h"``, ``"1m30s"``, ``"250ms"``, ``"1.5s"``)
    or plain numbers (``"30"``). Booleans are refused: ``True`` is not a duration.

    Raises:
        ValueError: naming the value and the accepted forms.

    .. versionadded:: 0.1.0
    """
    if isinstance(value, bool):
        msg = f"{_RULE}, got {value!r}"
        raise ValueError(msg)  # noqa: TRY004 - pydantic turns only ValueError into errors
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if _WHOLE.fullmatch(text):
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
        else:
            try:
                seconds = float(text)
            except ValueError:
                msg = f"{_RULE}, got {value!r}"
                raise ValueError(msg) from None
    else:
        msg = f"{_RULE}, got {value!r}"
        raise ValueError(msg)  # noqa: TRY004 - pydantic wants ValueError
    if not math.isfinite(seconds):
        msg = f"{_RULE}, got {value!r}"
        raise ValueError(msg)
    return seconds


def format_duration(seconds: float) -> str:
    """Render seconds the way operators write them (``90.0`` -> ``"1m30s"``)."""
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{secs}s" if secs or not (hours or minutes) else "")
    return "".join(parts)
