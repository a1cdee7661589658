"""
Plain facts about the stored documents, for readers that do not load the models.

``cbctl get`` reads a store without importing pydantic (about 40 ms of a ~100 ms
run): it needs the names of the config fields, which of them hold durations or
floats, and the layout version of instance statuses. The models are the source of
truth; ``tests/config/test_layout.py`` keeps these in step with them.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CONFIG_FIELDS",
    "DURATION_FIELDS",
    "FLOAT_FIELDS",
    "STATUS_FORMAT",
    "STATUS_TTL_S",
]

CONFIG_FIELDS: Final[tuple[str, ...]] = (
    "max_failures",
    "failure_rate_threshold",
    "slow_call_rate_threshold",
    "slow_call_duration",
    "window_type",
    "window_size",
    "minimum_calls",
    "reset_timeout",
    "backoff_multiplier",
    "max_reset_timeout",
    "jitter",
    "half_open_max_calls",
    "success_threshold",
    "request_timeout",
    "fallback",
    "cache_ttl",
    "cache_max_entries",
    "fallback_url",
)
"""The tunable fields of ``BreakerConfig``, in declaration order."""

DURATION_FIELDS: Final = frozenset(
    {
        "slow_call_duration",
        "reset_timeout",
        "max_reset_timeout",
        "request_timeout",
        "cache_ttl",
    }
)
"""Fields written as durations (``30s``) and held as float seconds."""

FLOAT_FIELDS: Final = frozenset(
    {
        "failure_rate_threshold",
        "slow_call_rate_threshold",
        "backoff_multiplier",
        "jitter",
    }
)
"""Fields held as floats (an integer given is stored as written, read as a float)."""

STATUS_TTL_S: Final = 10
"""Seconds a status lives without a heartbeat (the etcd lease TTL)."""

STATUS_FORMAT: Final = 1
"""
The layout of ``InstanceStatus`` documents, published in each as ``format``.

A reader takes a status of its own format as published and validates any other.
Bump it whenever a field is added, removed or changes type anywhere in the status.
"""
