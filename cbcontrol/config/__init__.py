"""
Configuration: models, presets, and the layered builder with provenance.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from cbcontrol.config._builder import ConfigBuilder
from cbcontrol.config._duration import format_duration, parse_duration
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

__all__ = [
    "BUILTIN_PRESETS",
    "PRECEDENCE",
    "BreakerConfig",
    "BreakerCounters",
    "BreakerSpec",
    "BreakerStats",
    "BreakerStatus",
    "ConfigBuilder",
    "ConfigDocument",
    "FieldValue",
    "InstanceStatus",
    "Override",
    "PresetSpec",
    "Resolved",
    "SchemaName",
    "format_duration",
    "json_schema",
    "parse_duration",
]
