"""
Helpers for testing code that uses cbcontrol: a fake clock and event capture.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from cbcontrol._testing import FakeClock, capture_events

__all__ = ["FakeClock", "capture_events"]
