"""
cbcontrol: operable circuit breakers for Python services.

.. code-block:: python

    from cbcontrol import BreakerConfig, CircuitBreaker

    config = BreakerConfig(max_failures=3, reset_timeout="30s")
    payment = CircuitBreaker("payment", config)

    @payment
    def charge(order): ...
"""

from __future__ import annotations

from cbcontrol._admin import (
    Ack,
    ControlStore,
    HistoryRecord,
    StoredSpec,
    WriteResult,
    open_store,
)
from cbcontrol._breaker import BreakerSnapshot, CircuitBreaker
from cbcontrol._clock import Clock
from cbcontrol._events import CallRecorded, Outcome, State, StateChanged, Trigger
from cbcontrol._plane import ControlPlane, connect
from cbcontrol._policy import ExceptionRule, always, never, on, when
from cbcontrol.config import BreakerConfig
from cbcontrol.exceptions import CBControlError, CircuitOpenError, ConfigError

__all__ = [
    "Ack",
    "BreakerConfig",
    "BreakerSnapshot",
    "CBControlError",
    "CallRecorded",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "ConfigError",
    "ControlPlane",
    "ControlStore",
    "ExceptionRule",
    "HistoryRecord",
    "Outcome",
    "State",
    "StateChanged",
    "StoredSpec",
    "Trigger",
    "WriteResult",
    "always",
    "connect",
    "never",
    "on",
    "open_store",
    "when",
]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        return version("cbcontrol")
    msg = f"module 'cbcontrol' has no attribute {name!r}"
    raise AttributeError(msg)
