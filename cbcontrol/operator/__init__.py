"""
The operator API: read the fleet, change breakers, apply documents, watch, diagnose.

What ``cbctl`` is built on, and what any other tool (a chat-ops bot, a deploy
pipeline, a web console) can use::

    from cbcontrol.operator import open_operator

    with open_operator("etcd://10.0.0.1:2379/prod") as op:
        print(op.breaker("payment").to_json())            # cbctl get payment -o json
        result = op.trip("payment", reason="INC-42 PSP down", duration=1800,
                         selector="zone=eu-1")             # the eu-1 instances only
        [result] = op.wait([result], timeout=10)
        print(f"applied on {result.ack.applied}/{result.ack.instances} matching")

Read models (:class:`FleetView`, :class:`BreakerView`, :class:`InstanceView`, ...)
are immutable and their ``to_json()`` is the JSON ``cbctl -o json`` prints. Effective
configs come from the same resolver the applications use. Writes are validated before
anything is written, compare-and-swapped, recorded in the history, and acknowledged
by the instances concerned (:meth:`Operator.wait`).

Targeted changes: instances carry labels (``app``, ``host``, ``instance`` and
``CBCONTROL_LABELS``); a ``selector`` (kubectl syntax, :class:`Selector`) puts a change
in a scope of the spec that applies only where it matches. ``docs/cli.md`` describes
the scopes' precedence and the canary flow.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cbcontrol._labels import Requirement, Selector, parse_labels
    from cbcontrol.config._fields import FieldInfo, parse_text
    from cbcontrol.operator._doctor import Check, DoctorReport
    from cbcontrol.operator._events import Event
    from cbcontrol.operator._operator import Operator, open_operator
    from cbcontrol.operator._plan import (
        CheckedDocument,
        Plan,
        PlannedChange,
        check_document,
    )
    from cbcontrol.operator._results import (
        ChangeResult,
        FieldExplanation,
        Frame,
        PresetView,
    )
    from cbcontrol.operator._views import (
        BreakerView,
        Difference,
        FieldValue,
        FleetView,
        InstanceInfo,
        InstanceView,
        OverrideView,
        ScopeView,
        SpecView,
    )

__all__ = [
    "BreakerView",
    "ChangeResult",
    "Check",
    "CheckedDocument",
    "Difference",
    "DoctorReport",
    "Event",
    "FieldExplanation",
    "FieldInfo",
    "FieldValue",
    "FleetView",
    "Frame",
    "InstanceInfo",
    "InstanceView",
    "Operator",
    "OverrideView",
    "Plan",
    "PlannedChange",
    "PresetView",
    "Requirement",
    "ScopeView",
    "Selector",
    "SpecView",
    "check_document",
    "open_operator",
    "parse_labels",
    "parse_text",
]

# Imported on first use (PEP 562): a read of the store needs neither pydantic nor the
# modules of writes and documents.
_LAZY = {
    "BreakerView": "cbcontrol.operator._views",
    "ChangeResult": "cbcontrol.operator._results",
    "Check": "cbcontrol.operator._doctor",
    "CheckedDocument": "cbcontrol.operator._plan",
    "Difference": "cbcontrol.operator._views",
    "DoctorReport": "cbcontrol.operator._doctor",
    "Event": "cbcontrol.operator._events",
    "FieldExplanation": "cbcontrol.operator._results",
    "FieldInfo": "cbcontrol.config._fields",
    "FieldValue": "cbcontrol.operator._views",
    "FleetView": "cbcontrol.operator._views",
    "Frame": "cbcontrol.operator._results",
    "InstanceInfo": "cbcontrol.operator._views",
    "InstanceView": "cbcontrol.operator._views",
    "Operator": "cbcontrol.operator._operator",
    "OverrideView": "cbcontrol.operator._views",
    "Plan": "cbcontrol.operator._plan",
    "PlannedChange": "cbcontrol.operator._plan",
    "PresetView": "cbcontrol.operator._results",
    "Requirement": "cbcontrol._labels",
    "ScopeView": "cbcontrol.operator._views",
    "Selector": "cbcontrol._labels",
    "SpecView": "cbcontrol.operator._views",
    "check_document": "cbcontrol.operator._plan",
    "open_operator": "cbcontrol.operator._operator",
    "parse_labels": "cbcontrol._labels",
    "parse_text": "cbcontrol.config._fields",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'cbcontrol.operator' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
