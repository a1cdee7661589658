"""
Built-in presets: data, not code.

A breaker whose name matches a preset starts from it unless its spec (or env) names
another one; every other breaker starts from ``default``. Presets defined in the YAML
file or in etcd extend these and override them field by field.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Final

from cbcontrol.config._merge import DEFAULT_PRESET
from cbcontrol.config._models import PresetSpec

__all__ = ["BUILTIN_PRESETS", "DEFAULT_PRESET"]

_DATA: Final[Mapping[str, Mapping[str, object]]] = {
    # The built-in defaults of BreakerConfig, unchanged.
    "default": {},
    # From the article: a payment provider is critical and slow to recover, so trip
    # early, wait longer, and fail over to an alternative provider.
    "payment": {"max_failures": 3, "reset_timeout": "60s", "fallback": "alternative"},
    # Analytics tolerates more noise, recovers fast, and serves cached answers.
    "analytics": {"max_failures": 10, "reset_timeout": "10s", "fallback": "cache"},
    # A profile lookup can degrade to a static default profile.
    "user-profile": {"max_failures": 5, "reset_timeout": "30s", "fallback": "static"},
}


class _BuiltinPresets(Mapping[str, PresetSpec]):
    """The presets, validated when first read (not at import: cbctl starts faster)."""

    @functools.cached_property
    def _specs(self) -> dict[str, PresetSpec]:
        return {n: PresetSpec.model_validate(dict(d)) for n, d in _DATA.items()}

    def __getitem__(self, name: str) -> PresetSpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_DATA)

    def __len__(self) -> int:
        return len(_DATA)

    def __repr__(self) -> str:
        return f"BUILTIN_PRESETS({dict(self)!r})"


BUILTIN_PRESETS: Mapping[str, PresetSpec] = _BuiltinPresets()
"""The built-in presets, by name."""
