"""
Observability: Prometheus metrics, health and readiness, and a probe server.

::

    from cbcontrol.instrumentation import PrometheusCollector, readiness

    plane = cbcontrol.connect()
    PrometheusCollector(plane)                      # on prometheus-client's REGISTRY
    readiness(plane, critical={"payment"}).ok       # False while payment is open

The Prometheus parts need ``pip install 'cbcontrol[prometheus]'``; health and
readiness need nothing. ASGI apps serve the same endpoints with
:class:`cbcontrol.integrations.asgi.ProbesMiddleware`.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from cbcontrol.instrumentation._health import (
    BreakerHealth,
    Critical,
    HealthReport,
    health,
    readiness,
)
from cbcontrol.instrumentation._sources import BreakerSource

if TYPE_CHECKING:
    from cbcontrol.instrumentation._prometheus import METRIC_NAMES, PrometheusCollector
    from cbcontrol.instrumentation._server import ProbeServer, start_probe_server

__all__ = [
    "METRIC_NAMES",
    "BreakerHealth",
    "BreakerSource",
    "Critical",
    "HealthReport",
    "ProbeServer",
    "PrometheusCollector",
    "health",
    "readiness",
    "start_probe_server",
]

# Imported on first use (PEP 562): health and readiness work without prometheus-client.
_LAZY = {
    "METRIC_NAMES": "cbcontrol.instrumentation._prometheus",
    "PrometheusCollector": "cbcontrol.instrumentation._prometheus",
    "ProbeServer": "cbcontrol.instrumentation._server",
    "start_probe_server": "cbcontrol.instrumentation._server",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'cbcontrol.instrumentation' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
