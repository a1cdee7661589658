"""
Stores: where desired state lives and where instances report.

One port, :class:`StoreBackend`, that the control plane, the status publisher and
the operator API all use, and one backend per kind of store: :class:`MemoryStore`
(in-process; the fake for tests), the YAML file and etcd (opened from a URL by
:func:`open_backend`). :class:`ControlStore` is the operator API over any backend
(what ``cbctl`` uses). The key layout, the status layout and the limits on what is
read are in ``docs/store.md``.

.. code-block:: python

    import cbcontrol
    from cbcontrol.store import MemoryStore

    store = MemoryStore()
    plane = cbcontrol.connect(store)
    cbcontrol.open_store(store).update("payment", lambda d: {**d, "max_failures": 3},
                                       actor="me")

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from cbcontrol._names import NAME_RULE, check_name, is_name
from cbcontrol.store._port import (
    Document,
    Scope,
    SpecState,
    StatusWriter,
    StoreBackend,
    Update,
)
from cbcontrol.store._url import StoreURL, parse_store_url, redact

if TYPE_CHECKING:
    from cbcontrol.store._control import (
        ControlStore,
        StoredSpec,
        StoreView,
        open_store,
    )
    from cbcontrol.store._memory import MemoryStore
    from cbcontrol.store._open import open_backend
    from cbcontrol.store._records import Ack, HistoryRecord, WriteResult

__all__ = [
    "NAME_RULE",
    "Ack",
    "ControlStore",
    "Document",
    "HistoryRecord",
    "MemoryStore",
    "Scope",
    "SpecState",
    "StatusWriter",
    "StoreBackend",
    "StoreURL",
    "StoreView",
    "StoredSpec",
    "Update",
    "WriteResult",
    "check_name",
    "is_name",
    "open_backend",
    "open_store",
    "parse_store_url",
    "redact",
]

_LAZY = {
    "Ack": "cbcontrol.store._records",
    "ControlStore": "cbcontrol.store._control",
    "HistoryRecord": "cbcontrol.store._records",
    "MemoryStore": "cbcontrol.store._memory",
    "StoreView": "cbcontrol.store._control",
    "StoredSpec": "cbcontrol.store._control",
    "WriteResult": "cbcontrol.store._records",
    "open_backend": "cbcontrol.store._open",
    "open_store": "cbcontrol.store._control",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'cbcontrol.store' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
