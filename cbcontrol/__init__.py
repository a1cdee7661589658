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

import importlib
from typing import TYPE_CHECKING

from cbcontrol.exceptions import CBControlError, CircuitOpenError, ConfigError

if TYPE_CHECKING:
    __version__: str  # looked up from the installed metadata on first use
    from cbcontrol._breaker import CircuitBreaker
    from cbcontrol._clock import Clock
    from cbcontrol._events import CallRecorded, Outcome, State, StateChanged, Trigger
    from cbcontrol._fallback import ResultOrigin
    from cbcontrol._metrics import BreakerSnapshot
    from cbcontrol._plane import ControlPlane, PlaneHealth, connect
    from cbcontrol._policy import ExceptionRule, always, never, on, when
    from cbcontrol.config import BreakerConfig
    from cbcontrol.store._control import ControlStore, StoredSpec, open_store
    from cbcontrol.store._records import Ack, HistoryRecord, WriteResult

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
    "PlaneHealth",
    "ResultOrigin",
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


# Imported on first use (PEP 562), so that ``import cbcontrol`` costs almost nothing
# and a tool that needs one part (cbctl reading a store) does not load the rest
# (pydantic and the config layer).
_LAZY = {
    "Ack": "cbcontrol.store._records",
    "BreakerConfig": "cbcontrol.config",
    "BreakerSnapshot": "cbcontrol._metrics",
    "CallRecorded": "cbcontrol._events",
    "CircuitBreaker": "cbcontrol._breaker",
    "Clock": "cbcontrol._clock",
    "ControlPlane": "cbcontrol._plane",
    "ControlStore": "cbcontrol.store._control",
    "ExceptionRule": "cbcontrol._policy",
    "HistoryRecord": "cbcontrol.store._records",
    "Outcome": "cbcontrol._events",
    "PlaneHealth": "cbcontrol._plane",
    "ResultOrigin": "cbcontrol._fallback",
    "State": "cbcontrol._events",
    "StateChanged": "cbcontrol._events",
    "StoredSpec": "cbcontrol.store._control",
    "Trigger": "cbcontrol._events",
    "WriteResult": "cbcontrol.store._records",
    "always": "cbcontrol._policy",
    "connect": "cbcontrol._plane",
    "never": "cbcontrol._policy",
    "on": "cbcontrol._policy",
    "open_store": "cbcontrol.store._control",
    "when": "cbcontrol._policy",
}


_SUBMODULES = frozenset({"config", "instrumentation", "store", "testing", "typing"})
"""Public subpackages, reachable as attributes (``cbcontrol.config.PRECEDENCE``)."""


def __getattr__(name: str) -> object:
    if name in _SUBMODULES:
        return importlib.import_module(f"cbcontrol.{name}")
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups do not come back here
        return value
    if name == "__version__":
        from importlib import metadata  # ~15 ms of imports: not at `import cbcontrol`

        try:
            found = metadata.version("cbcontrol")
        except metadata.PackageNotFoundError:  # a source tree never installed
            found = "unknown"
        globals()["__version__"] = found
        return found
    msg = f"module 'cbcontrol' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
