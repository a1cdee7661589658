"""
Types for annotating code that uses cbcontrol.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from cbcontrol._clock import Clock
from cbcontrol._events import Event
from cbcontrol._policy import RuleLike
from cbcontrol._window import WindowStats

__all__ = ["Clock", "Event", "RuleLike", "WindowStats"]
