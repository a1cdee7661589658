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
        "default": PresetSpec(),
        # From the article: a payment provider is critical and slow to recover, so
        # trip early, wait longer, and fail over to an alternative provider.
        "payment": PresetSpec(
            max_failures=3, reset_timeout=60.0, fallback="alternative"
        ),
        # Analytics tolerates more noise, recovers fast, and serves cached answers.
        "analytics": PresetSpec(max_failures=10, reset_timeout=10.0, fallback="cache"),
        # A profile lookup can degrade to a static default profile.
        "user-profile": PresetSpec(max_failures=5, reset_timeout=30.0, fallback="static"),
    }
)
"""The built-in presets, by name."""
