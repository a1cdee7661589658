"""
Helpers for testing code that uses cbcontrol: a fake clock, event capture and
an in-memory store.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from cbcontrol._testing import FakeClock, capture_events
from cbcontrol.store._memory import MemoryStore

InMemoryConfigSource = MemoryStore
"""The in-memory store (:class:`cbcontrol.store.MemoryStore`), by its 0.1 name."""

__all__ = ["FakeClock", "InMemoryConfigSource", "MemoryStore", "capture_events"]
