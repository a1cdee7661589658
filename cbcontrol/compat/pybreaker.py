"""
A drop-in for ``pybreaker`` 1.4, backed by cbcontrol breakers.

``from cbcontrol.compat import pybreaker`` in place of ``import pybreaker``: the same
names, signatures, exceptions and behaviour (listeners, setters, ``calling()``, the
decorator with or without parentheses, ``throw_new_error_on_trip``), and every named
breaker shows up in ``cbctl list`` and takes its settings from presets, env, the file
and etcd (``fail_max``, ``reset_timeout`` and ``success_threshold`` are its code
layer; the setters change that layer).

Deliberate differences (``docs/breaker.md``): calls run concurrently (pybreaker holds
one lock across every call), so a half-open breaker rejects a second concurrent trial
call instead of queueing it; cancellation and ``KeyboardInterrupt`` are not failures;
``async def`` functions are awaited through the breaker; state lives in the process
(``CircuitRedisStorage`` raises ``NotImplementedError``).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from cbcontrol.compat._pybreaker import (
    STATE_CLOSED,
    STATE_HALF_OPEN,
    STATE_OPEN,
    CircuitBreaker,
    CircuitBreakerError,
    CircuitBreakerListener,
    CircuitBreakerState,
    CircuitBreakerStorage,
    CircuitClosedState,
    CircuitHalfOpenState,
    CircuitMemoryStorage,
    CircuitOpenState,
    CircuitRedisStorage,
)

__all__ = [
    "STATE_CLOSED",
    "STATE_HALF_OPEN",
    "STATE_OPEN",
    "CircuitBreaker",
    "CircuitBreakerError",
    "CircuitBreakerListener",
    "CircuitBreakerState",
    "CircuitBreakerStorage",
    "CircuitClosedState",
    "CircuitHalfOpenState",
    "CircuitMemoryStorage",
    "CircuitOpenState",
    "CircuitRedisStorage",
]
