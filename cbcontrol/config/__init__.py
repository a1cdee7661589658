"""
Configuration: models, presets, and the layered builder with provenance.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from cbcontrol._limits import MAX_FILE_BYTES
from cbcontrol.config._duration import format_duration, parse_duration
from cbcontrol.config._fields import (
    CONFIG_FIELDS,
    DURATION_FIELDS,
    FIELDS,
    FLOAT_FIELDS,
    PERCENT_FIELDS,
    FieldInfo,
    format_value,
    parse_text,
)

if TYPE_CHECKING:
    from cbcontrol.config._builder import ConfigBuilder
    from cbcontrol.config._merge import PRECEDENCE, Resolved
    from cbcontrol.config._models import (
        BreakerConfig,
        BreakerCounters,
        BreakerSpec,
        BreakerStats,
        BreakerStatus,
        ConfigDocument,
        FieldValue,
        InstanceStatus,
        Override,
        PresetSpec,
    )
    from cbcontrol.config._presets import BUILTIN_PRESETS
    from cbcontrol.config._schema import SchemaName, json_schema
    from cbcontrol.config._yamldoc import DocumentError, load_yaml

__all__ = [
    "BUILTIN_PRESETS",
    "CONFIG_FIELDS",
    "DURATION_FIELDS",
    "FIELDS",
    "FLOAT_FIELDS",
    "MAX_FILE_BYTES",
    "PERCENT_FIELDS",
    "PRECEDENCE",
    "BreakerConfig",
    "BreakerCounters",
    "BreakerSpec",
    "BreakerStats",
    "BreakerStatus",
    "ConfigBuilder",
    "ConfigDocument",
    "DocumentError",
    "FieldInfo",
    "FieldValue",
    "InstanceStatus",
    "Override",
    "PresetSpec",
    "Resolved",
    "SchemaName",
    "format_duration",
    "format_value",
    "json_schema",
    "load_yaml",
    "parse_duration",
    "parse_text",
]

# Imported on first use (PEP 562): the models need pydantic; durations and the field
# catalog do not, and are all that cbctl's reads need.
_LAZY = {
    "BUILTIN_PRESETS": "cbcontrol.config._presets",
    "PRECEDENCE": "cbcontrol.config._merge",
    "BreakerConfig": "cbcontrol.config._models",
    "BreakerCounters": "cbcontrol.config._models",
    "BreakerSpec": "cbcontrol.config._models",
    "BreakerStats": "cbcontrol.config._models",
    "BreakerStatus": "cbcontrol.config._models",
    "ConfigBuilder": "cbcontrol.config._builder",
    "ConfigDocument": "cbcontrol.config._models",
    "DocumentError": "cbcontrol._limits",
    "FieldValue": "cbcontrol.config._models",
    "InstanceStatus": "cbcontrol.config._models",
    "Override": "cbcontrol.config._models",
    "PresetSpec": "cbcontrol.config._models",
    "Resolved": "cbcontrol.config._merge",
    "SchemaName": "cbcontrol.config._schema",
    "json_schema": "cbcontrol.config._schema",
    "load_yaml": "cbcontrol.config._yamldoc",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'cbcontrol.config' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
