"""
Built-in presets: data, not code.

A breaker whose name matches a preset starts from it unless its spec (or env) names
another one; every other breaker starts from ``default``. Presets defined in the YAML
file or in etcd extend these and override them field by field.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from cbcontrol.config._models import PresetSpec

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["BUILTIN_PRESETS", "DEFAULT_PRESET"]

DEFAULT_PRESET = "default"

BUILTIN_PRESETS: Mapping[str, PresetSpec] = MappingProxyType(
    {
        # The built-in defaults of BreakerConfig, unchanged.
        "default": PresetSpec.model_validate({}),
        # From the article: a payment provider is critical and slow to recover, so
        # trip early, wait longer, and fail over to an alternative provider.
        "payment": PresetSpec.model_validate(
            {"max_failures": 3, "reset_timeout": "60s", "fallback": "alternative"}
        ),
        # Analytics tolerates more noise, recovers fast, and serves cached answers.
        "analytics": PresetSpec.model_validate(
            {"max_failures": 10, "reset_timeout": "10s", "fallback": "cache"}
        ),
        # A profile lookup can degrade to a static default profile.
        "user-profile": PresetSpec.model_validate(
            {"max_failures": 5, "reset_timeout": "30s", "fallback": "static"}
        ),
    }
)
"""The built-in presets, by name."""
