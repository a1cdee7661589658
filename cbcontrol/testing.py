"""
Helpers for testing code that uses cbcontrol: a fake clock, event capture and
an in-memory config store.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from cbcontrol._testing import FakeClock, InMemoryConfigSource, capture_events

__all__ = ["FakeClock", "InMemoryConfigSource", "capture_events"]
