"""
A drop-in for ``circuitbreaker`` 2.1, backed by cbcontrol breakers.

``from cbcontrol.compat import circuitbreaker`` (or ``from cbcontrol.compat.
circuitbreaker import circuit``) in place of ``import circuitbreaker``: the same names,
signatures, exceptions and behaviour, and every named breaker shows up in
``cbctl list`` and takes its settings from presets, env, the file and etcd
(``failure_threshold`` and ``recovery_timeout`` are its code layer).

Deliberate differences (``docs/breaker.md``): ``with breaker:`` and ``breaker.call()``
reject calls while the breaker is open, as the decorator does (circuitbreaker runs the
body); a half-open breaker admits one probe at a time (``half_open_max_calls``).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from cbcontrol.compat._circuitbreaker import (
    STATE_CLOSED,
    STATE_HALF_OPEN,
    STATE_OPEN,
    STRING_TYPES,
    CircuitBreaker,
    CircuitBreakerError,
    CircuitBreakerMonitor,
    build_failure_predicate,
    circuit,
    in_exception_list,
)

__all__ = [
    "STATE_CLOSED",
    "STATE_HALF_OPEN",
    "STATE_OPEN",
    "STRING_TYPES",
    "CircuitBreaker",
    "CircuitBreakerError",
    "CircuitBreakerMonitor",
    "build_failure_predicate",
    "circuit",
    "in_exception_list",
]
