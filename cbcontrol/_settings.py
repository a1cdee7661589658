"""
The breaker core's view of a config: a plain frozen object, no pydantic.

:class:`~cbcontrol.config.BreakerConfig` validates what users, files and stores give;
the core reads only this. Building a breaker with the default config therefore never
imports pydantic, and :attr:`CircuitBreaker.config` converts back lazily, at the edge.
The field names and defaults are ``BreakerConfig``'s (``tests/core/test_settings.py``
keeps them in step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from cbcontrol.config._fields import CONFIG_FIELDS

if TYPE_CHECKING:
    from cbcontrol.config import BreakerConfig

__all__ = ["DEFAULT_SETTINGS", "Settings", "settings_of"]

FallbackMode = Literal["none", "cache", "static", "alternative"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Every config field, already validated (durations in float seconds)."""

    max_failures: int | None = 5
    failure_rate_threshold: float | None = None
    slow_call_rate_threshold: float | None = None
    slow_call_duration: float = 60.0
    window_type: Literal["count", "time"] = "count"
    window_size: int = 100
    minimum_calls: int = 10
    reset_timeout: float = 30.0
    backoff_multiplier: float = 2.0
    max_reset_timeout: float = 300.0
    jitter: float = 0.0
    half_open_max_calls: int = 1
    success_threshold: int = 1
    half_open_max_wait: float | None = None
    request_timeout: float | None = 10.0
    fallback: FallbackMode = "none"
    cache_ttl: float = 300.0
    cache_max_entries: int = 1000
    fallback_url: str | None = None

    @property
    def probe_wait(self) -> float:
        """How long probes may run: half_open_max_wait, else request_timeout."""
        wait = self.half_open_max_wait
        if wait is None:
            wait = self.request_timeout
        return math.inf if wait is None else wait

    @property
    def uses_rates(self) -> bool:
        """Whether a rate rule can trip the breaker."""
        return (
            self.failure_rate_threshold is not None
            or self.slow_call_rate_threshold is not None
        )


DEFAULT_SETTINGS = Settings()


def settings_of(config: BreakerConfig | Settings) -> Settings:
    """The core's settings for a validated config (a Settings passes through)."""
    if isinstance(config, Settings):
        return config
    return Settings(**{name: getattr(config, name) for name in CONFIG_FIELDS})
