"""The validated, immutable breaker configuration."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from cbcontrol.config._duration import parse_duration

__all__ = ["BreakerConfig", "Duration"]

Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds; accepts ``30s``, ``1m30s``, ``250ms``, numbers and ``timedelta``."""

MAX_COUNT_WINDOW = 100_000
MAX_TIME_WINDOW = 3_600


class BreakerConfig(BaseModel):
    """
    One breaker's effective configuration: immutable, validated, complete.

    Every field has a default (the article's defaults where it gives one), so
    ``BreakerConfig()`` is a working breaker: 5 consecutive failures open it for 30 s.
    Durations accept ``"30s"``, ``"1m30s"``, ``"250ms"``, numbers of seconds and
    :class:`datetime.timedelta`, and are stored as float seconds.

    .. versionadded:: 0.1.0
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    max_failures: Annotated[int, Field(ge=1)] = 5
    """Consecutive failures that trip a closed breaker."""
    failure_rate_threshold: Annotated[float, Field(gt=0, le=100)] | None = None
    """Percent of failed calls in the window that trips it (once minimum_calls)."""
    slow_call_rate_threshold: Annotated[float, Field(gt=0, le=100)] | None = None
    """Percent of calls slower than slow_call_duration that trips it."""
    slow_call_duration: Annotated[Duration, Field(gt=0)] = 60.0
    """A call at least this long counts as slow."""
    window_type: Literal["count", "time"] = "count"
    """``count``: the last window_size calls; ``time``: the last window_size seconds."""
    window_size: Annotated[int, Field(ge=1)] = 100
    """Calls (count window) or seconds (time window)."""
    minimum_calls: Annotated[int, Field(ge=1)] = 10
    """Calls the window must hold before a rate can trip the breaker."""
    reset_timeout: Annotated[Duration, Field(gt=0)] = 30.0
    """How long the breaker stays open before admitting probes."""
    backoff_multiplier: Annotated[float, Field(ge=1)] = 2.0
    """Growth of reset_timeout on each re-open without a close in between."""
    max_reset_timeout: Annotated[Duration, Field(gt=0)] = 300.0
    """Cap of the grown reset timeout (never below reset_timeout)."""
    jitter: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Random spread of the open time, as a fraction (0.1 = ±10%)."""
    half_open_max_calls: Annotated[int, Field(ge=1)] = 1
    """Concurrent probes a half-open breaker admits; the rest are rejected at once."""
    success_threshold: Annotated[int, Field(ge=1)] = 1
    """Probe successes that close a half-open breaker."""
    request_timeout: Annotated[Duration, Field(gt=0)] | None = 10.0
    """Timeout integrations (httpx, gRPC) apply to the protected request."""
    fallback: Literal["none", "cache", "static", "alternative"] = "none"
    """What serves a rejected call in integrations that support fallbacks."""
    cache_ttl: Annotated[Duration, Field(ge=0)] = 300.0
    """How long a cached response may serve as fallback."""
    cache_max_entries: Annotated[int, Field(ge=1)] = 1000
    """Bound of the fallback cache."""
    fallback_url: str | None = None
    """The alternative service for ``fallback: alternative``."""

    @model_validator(mode="after")
    def _check_window(self) -> BreakerConfig:
        limit = MAX_COUNT_WINDOW if self.window_type == "count" else MAX_TIME_WINDOW
        if self.window_size > limit:
            unit = "calls" if self.window_type == "count" else "seconds"
            msg = (
                f"window_size must be <= {limit} {unit} for a {self.window_type} "
                f"window, got {self.window_size}"
            )
            raise ValueError(msg)
        uses_rates = (
            self.failure_rate_threshold is not None
            or self.slow_call_rate_threshold is not None
        )
        if (
            uses_rates
            and self.window_type == "count"
            and self.minimum_calls > self.window_size
        ):
            msg = (
                f"minimum_calls ({self.minimum_calls}) must be <= window_size "
                f"({self.window_size}) for a count window, or no rate can ever trip "
                "the breaker; lower minimum_calls or raise window_size"
            )
            raise ValueError(msg)
        return self
