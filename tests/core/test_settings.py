"""The core's plain settings object stays in step with BreakerConfig."""

from __future__ import annotations

import dataclasses

from cbcontrol import BreakerConfig
from cbcontrol._settings import DEFAULT_SETTINGS, Settings, settings_of
from cbcontrol.config import CONFIG_FIELDS


def test_fields_and_defaults_are_breaker_configs() -> None:
    """Same fields, same order, same defaults as BreakerConfig."""
    fields = tuple(f.name for f in dataclasses.fields(Settings))

    assert CONFIG_FIELDS == fields
    assert BreakerConfig().model_dump() == dataclasses.asdict(DEFAULT_SETTINGS)


def test_a_config_converts_field_by_field() -> None:
    """settings_of() carries every validated value over; Settings pass through."""
    config = BreakerConfig(max_failures=None, failure_rate_threshold=20, jitter=0.1)

    settings = settings_of(config)

    assert config.model_dump() == dataclasses.asdict(settings)
    assert settings is settings_of(settings)


def test_probe_wait_falls_back_to_request_timeout() -> None:
    """half_open_max_wait, else request_timeout, else no limit."""
    assert 4.0 == Settings(half_open_max_wait=4.0).probe_wait
    assert 10.0 == Settings().probe_wait
    assert float("inf") == Settings(request_timeout=None).probe_wait
