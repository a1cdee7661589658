"""
Configuration: the validated :class:`BreakerConfig` and how durations are written.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from cbcontrol.config._duration import format_duration, parse_duration
from cbcontrol.config._models import BreakerConfig

__all__ = ["BreakerConfig", "format_duration", "parse_duration"]
