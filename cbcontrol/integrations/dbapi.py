"""
A circuit breaker for DB-API 2.0 databases (PEP 249): a connection wrapper whose
``execute``, ``executemany`` and ``commit`` go through the breaker. Needs nothing
beyond cbcontrol and the driver.

::

    from cbcontrol.integrations.dbapi import BreakerConnection

    db = BreakerConnection(sqlite3.connect("orders.db"), plane.breaker("orders-db"))

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from cbcontrol.integrations._dbapi import (
    BreakerConnection,
    BreakerCursor,
    caller_errors,
)

__all__ = ["BreakerConnection", "BreakerCursor", "caller_errors"]
