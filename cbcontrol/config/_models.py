"""
The validated, immutable breaker configuration, and the documents of the stores.

Field docstrings are the documentation of each field. They are not read at run time
(pydantic's ``use_attribute_docstrings`` costs ~45 ms of import, which every ``cbctl``
invocation would pay); ``schemas/generate.py`` puts them into the JSON Schemas.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)

from cbcontrol.config._duration import DURATION_PATTERN, parse_duration
from cbcontrol.config._fields import CONFIG_FIELDS
from cbcontrol.exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "CONFIG_FIELDS",
    "BreakerConfig",
    "BreakerCounters",
    "BreakerSpec",
    "BreakerStats",
    "BreakerStatus",
    "ConfigDocument",
    "Duration",
    "FieldValue",
    "InstanceStatus",
    "Override",
    "PartialConfig",
    "PresetSpec",
    "SpecScope",
]

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": DURATION_PATTERN},
            ],
            "examples": ["30s", "1m30s", "250ms", 30],
        }
    ),
]
"""Seconds; accepts ``30s``, ``1m30s``, ``250ms``, numbers and ``timedelta``."""

DurationInput = float | str | timedelta
"""What a duration may be given as: seconds, ``"1m30s"``, or a timedelta."""

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

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, defer_build=True
    )

    max_failures: Annotated[int, Field(ge=1)] | None = Field(
        5,
        description=(
            "Consecutive failures that trip a closed breaker; null disables this rule "
            "(a rate rule must then be set)."
        ),
    )
    failure_rate_threshold: Annotated[float, Field(gt=0, le=100)] | None = Field(
        None,
        description=(
            "Percent of failed calls in the window that trips it (once minimum_calls)."
        ),
    )
    slow_call_rate_threshold: Annotated[float, Field(gt=0, le=100)] | None = Field(
        None,
        description="Percent of calls slower than slow_call_duration that trips it.",
    )
    slow_call_duration: Annotated[Duration, Field(gt=0)] = Field(
        60.0, description="A call at least this long counts as slow."
    )
    window_type: Literal["count", "time"] = Field(
        "count",
        description=(
            "``count``: the last window_size calls; ``time``: the last "
            "window_size seconds."
        ),
    )
    window_size: Annotated[int, Field(ge=1)] = Field(
        100, description="Calls (count window) or seconds (time window)."
    )
    minimum_calls: Annotated[int, Field(ge=1)] = Field(
        10, description="Calls the window must hold before a rate can trip the breaker."
    )
    reset_timeout: Annotated[Duration, Field(gt=0)] = Field(
        30.0, description="How long the breaker stays open before admitting probes."
    )
    backoff_multiplier: Annotated[float, Field(ge=1)] = Field(
        2.0,
        description=(
            "Growth of reset_timeout on each re-open without a close in between."
        ),
    )
    max_reset_timeout: Annotated[Duration, Field(gt=0)] = Field(
        300.0, description="Cap of the grown reset timeout (never below reset_timeout)."
    )
    jitter: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.0, description="Random spread of the open time, as a fraction (0.1 = ±10%)."
    )
    half_open_max_calls: Annotated[int, Field(ge=1)] = Field(
        1,
        description=(
            "Concurrent probes a half-open breaker admits; the rest are "
            "rejected at once."
        ),
    )
    success_threshold: Annotated[int, Field(ge=1)] = Field(
        1, description="Probe successes that close a half-open breaker."
    )
    half_open_max_wait: Annotated[Duration, Field(gt=0)] | None = Field(
        None,
        description=(
            "How long half-open probes may run before their slots are freed and the "
            "breaker re-opens; null means request_timeout (no limit if that is null)."
        ),
    )
    request_timeout: Annotated[Duration, Field(gt=0)] | None = Field(
        10.0,
        description=(
            "Timeout of one protected call: enforced for async calls (a timeout is a "
            "failure), applied by integrations (httpx, gRPC); a sync call cannot be "
            "interrupted."
        ),
    )
    fallback: Literal["none", "cache", "static", "alternative"] = Field(
        "none",
        description=(
            "Where the fallback chain starts for a rejected call: ``cache`` (then "
            "static, then alternative), ``static`` or ``alternative``; ``none`` uses "
            "the code's static and alternative fallbacks only."
        ),
    )
    cache_ttl: Annotated[Duration, Field(ge=0)] = Field(
        300.0, description="How long a cached response may serve as fallback."
    )
    cache_max_entries: Annotated[int, Field(ge=1)] = Field(
        1000, description="Bound of the fallback cache."
    )
    fallback_url: str | None = Field(
        None, description="The alternative service for ``fallback: alternative``."
    )

    if TYPE_CHECKING:
        # What type checkers should accept: durations as text or timedelta too (the
        # validator turns them into float seconds, which is what the fields hold).
        def __init__(
            self,
            *,
            max_failures: int | None = ...,
            failure_rate_threshold: float | None = ...,
            slow_call_rate_threshold: float | None = ...,
            slow_call_duration: DurationInput = ...,
            window_type: Literal["count", "time"] = ...,
            window_size: int = ...,
            minimum_calls: int = ...,
            reset_timeout: DurationInput = ...,
            backoff_multiplier: float = ...,
            max_reset_timeout: DurationInput = ...,
            jitter: float = ...,
            half_open_max_calls: int = ...,
            success_threshold: int = ...,
            half_open_max_wait: DurationInput | None = ...,
            request_timeout: DurationInput | None = ...,
            fallback: Literal["none", "cache", "static", "alternative"] = ...,
            cache_ttl: DurationInput = ...,
            cache_max_entries: int = ...,
            fallback_url: str | None = ...,
        ) -> None: ...

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
        if self.max_failures is None and not uses_rates:
            msg = (
                "max_failures may be null only when failure_rate_threshold or "
                "slow_call_rate_threshold is set, or nothing could ever trip the "
                "breaker; set a rate threshold or give max_failures a number"
            )
            raise ValueError(msg)
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

    def with_changes(self, **changes: Any) -> BreakerConfig:
        """
        A copy with ``changes`` applied, validated like any new config.

        ``config.with_changes(max_failures=3, reset_timeout="1m")``; a change that
        breaks a rule raises :class:`pydantic.ValidationError`, as the constructor does.

        .. versionadded:: 0.2.0
        """
        return type(self).model_validate({**self.__dict__, **changes})

    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> Self:
        """As pydantic's, but an ``update`` is validated (see ``with_changes``)."""
        if update:
            return self.with_changes(**update)  # type: ignore[return-value]
        return super().model_copy(deep=deep)


# CONFIG_FIELDS (from the generated catalog) lists BreakerConfig's fields in
# declaration order; `schemas/generate.py --check` keeps it so.

_SPEC_CONFIG = ConfigDict(frozen=True, extra="forbid", strict=True, defer_build=True)


def _optional_fields() -> dict[str, Any]:
    """BreakerConfig's fields, each optional: absent means "not set in this layer"."""
    fields: dict[str, Any] = {}
    for name, info in BreakerConfig.model_fields.items():
        annotation: Any = info.annotation
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        fields[name] = (
            annotation | None,
            Field(default=None, description=info.description),
        )
    return fields


if TYPE_CHECKING:
    PartialConfig = BaseModel
else:
    PartialConfig = create_model(
        "PartialConfig",
        __config__=_SPEC_CONFIG,
        __doc__=(
            "Any subset of BreakerConfig's fields, as one layer (preset, file, etcd) "
            "sets them. Only the fields present in the document count "
            "(``model_fields_set``); an explicit null clears an optional field."
        ),
        **_optional_fields(),
    )


class Override(BaseModel):
    """
    An operator override of the automatic state machine.

    .. versionadded:: 0.1.0
    """

    model_config = _SPEC_CONFIG

    mode: Literal["none", "forced_open", "forced_closed"] = "none"
    """``forced_open`` rejects every call; ``forced_closed`` admits every call."""
    reason: str | None = None
    """Why, for the humans who will see it in ``cbctl list``."""
    actor: str | None = None
    """Who set it (``CBCTL_ACTOR``, else user@host)."""
    until: AwareDatetime | None = None
    """When the override expires by itself, as an ISO 8601 time with a zone."""

    @field_validator("until", mode="before")
    @classmethod
    def _parse_until(cls, value: object) -> object:
        # Documents carry text; strict mode would refuse a string for a datetime.
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                msg = (
                    "must be an ISO 8601 time with a zone, "
                    f"e.g. '2026-11-27T12:00:00Z', got {value!r}"
                )
                raise ValueError(msg) from None
        return value


MAX_SCOPES = 32
"""Scoped layers one breaker may carry."""


class SpecScope(PartialConfig):
    """
    A scoped layer of a breaker's spec: fields for the instances a selector picks.

    It sits above the breaker's own (unscoped) fields on the instances whose labels
    the selector matches; of two matching scopes, the later in the list wins
    (``docs/cli.md``, "Targeted changes").

    .. versionadded:: 0.3.0
    """

    selector: str
    """A label selector, kubectl's syntax: ``zone=eu-1,track in (canary)``."""
    preset: str | None = None
    """The preset the selected instances start from."""
    override: Override | None = None
    """An operator override on the selected instances only."""
    reset_generation: Annotated[int, Field(ge=0)] | None = None
    """Bumped by ``cbctl reset --selector``: the selected instances reset once."""

    @field_validator("selector")
    @classmethod
    def _check_selector(cls, value: str) -> str:
        from cbcontrol._labels import Selector

        try:
            selector = Selector.parse(value)
        except ConfigError as exc:
            raise ValueError(exc.rule) from None
        if not selector:
            msg = (
                "must select something: an empty selector picks every instance, so "
                "put these fields in the breaker itself"
            )
            raise ValueError(msg)
        return value

    def config_values(self) -> dict[str, object]:
        """The config fields this scope sets (an explicit null included)."""
        return {
            f: getattr(self, f) for f in CONFIG_FIELDS if f in self.model_fields_set
        }


class BreakerSpec(PartialConfig):
    """
    The desired state of one breaker: one flat document (DESIGN.md §5).

    Any subset of the config fields, plus the preset, the operator override, the
    reset generation, scoped layers for the instances selectors pick, and the
    metadata ``cbctl`` maintains. The same shape lives in etcd (JSON) and under
    ``breakers.<name>`` in the YAML file.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.3.0
       ``scopes``.
    """

    preset: str | None = None
    """The preset this breaker starts from (default: the preset named like it)."""
    override: Override | None = None
    """An operator override, if any."""
    reset_generation: Annotated[int, Field(ge=0)] | None = None
    """Bumped by ``cbctl reset``; every instance resets once per new value."""
    scopes: list[SpecScope] | None = None
    """Scoped layers, each above the unscoped fields on the instances it selects."""
    generation: Annotated[int, Field(ge=0)] | None = None
    """Bumped by cbctl on every change; derived from the content if absent."""
    updated_by: str | None = None
    """Who made the last change."""
    updated_at: AwareDatetime | str | None = None
    """When the last change was made."""
    reason: str | None = None
    """Why the last change was made."""

    @field_validator("scopes")
    @classmethod
    def _check_scopes(cls, value: list[SpecScope] | None) -> list[SpecScope] | None:
        from cbcontrol._labels import Selector

        if value is None:
            return None
        if len(value) > MAX_SCOPES:
            msg = f"must hold at most {MAX_SCOPES} scopes, got {len(value)}"
            raise ValueError(msg)
        seen: set[str] = set()
        for scope in value:  # each selector parsed when its scope validated
            canonical = str(Selector.parse(scope.selector))
            if canonical in seen:
                msg = (
                    f"has two scopes with the selector {canonical!r}; merge them "
                    "into one"
                )
                raise ValueError(msg)
            seen.add(canonical)
        return value

    def config_values(self) -> dict[str, object]:
        """The config fields this document sets (an explicit null included)."""
        return {
            f: getattr(self, f) for f in CONFIG_FIELDS if f in self.model_fields_set
        }


class PresetSpec(PartialConfig):
    """
    A named partial config that breakers start from.

    .. versionadded:: 0.1.0
    """

    def config_values(self) -> dict[str, object]:
        """The config fields this preset sets."""
        return {
            f: getattr(self, f) for f in CONFIG_FIELDS if f in self.model_fields_set
        }


class ConfigDocument(BaseModel):
    """
    The YAML file store's document: ``version``, ``presets``, ``breakers``.

    .. versionadded:: 0.1.0
    """

    model_config = _SPEC_CONFIG

    version: Literal[1] = 1
    """The document format version."""
    presets: dict[str, PresetSpec] = Field(default_factory=dict)
    """Presets defined here extend or override the built-in ones, field by field."""
    breakers: dict[str, BreakerSpec] = Field(default_factory=dict)
    """Desired state per breaker."""


_STATUS_CONFIG = ConfigDict(frozen=True, extra="ignore", defer_build=True)
# Reported state is read by tools that may be older or newer than the app that wrote
# it: unknown fields are ignored rather than rejected.


class FieldValue(BaseModel):
    """One effective config field: its value and where it came from."""

    model_config = _STATUS_CONFIG

    value: Any
    """The effective value (durations in seconds)."""
    source: str
    """Its provenance: ``default``, ``preset:payment``, ``env:...``, ``file:...``."""


class BreakerStats(BaseModel):
    """A breaker's sliding-window view."""

    model_config = _STATUS_CONFIG

    window_calls: int = 0
    """Calls in the window."""
    failure_rate: float | None = None
    """Percent of failed calls in the window (None when empty)."""
    slow_call_rate: float | None = None
    """Percent of slow calls in the window (None when empty)."""
    consecutive_failures: int = 0
    """The current run of failures."""


class BreakerCounters(BaseModel):
    """A breaker's totals since start or its last reset."""

    model_config = _STATUS_CONFIG

    calls: int = 0
    """Calls that ran."""
    successes: int = 0
    """Calls that succeeded."""
    failures: int = 0
    """Calls that failed."""
    ignored: int = 0
    """Calls whose exception counted as neither."""
    rejections: int = 0
    """Calls the breaker rejected."""
    fallbacks: int = 0
    """Rejected calls a fallback served."""
    slow_calls: int = 0
    """Calls slower than slow_call_duration."""


class BreakerStatus(BaseModel):
    """
    One breaker as one instance reports it.

    .. versionadded:: 0.1.0
    """

    model_config = _STATUS_CONFIG

    state: str
    """``closed``, ``open``, ``half_open``, ``forced_open`` or ``forced_closed``."""
    mode: Literal["none", "forced_open", "forced_closed"] = "none"
    """The operator override in force."""
    override_reason: str | None = None
    """The override's reason."""
    observed_generation: int = 0
    """The spec generation this instance last applied."""
    observed_digest: str | None = None
    """The digest of the spec document it applied (None: no spec)."""
    rejected_digest: str | None = None
    """The digest of a spec document it rejected as invalid, if any."""
    effective: dict[str, FieldValue] = Field(default_factory=dict)
    """Every effective field with its source."""
    stats: BreakerStats = Field(default_factory=BreakerStats)
    """The window."""
    counters: BreakerCounters = Field(default_factory=BreakerCounters)
    """The totals."""
    times_opened: int = 0
    """How often it opened."""
    last_state_change: AwareDatetime | None = None
    """When the state last changed."""
    retry_after_s: float | None = None
    """For an open breaker: seconds until it admits a probe."""
    error: str | None = None
    """The config error in force for this breaker, if any."""


class InstanceStatus(BaseModel):
    """
    What one running process reports: who it is and each of its breakers.

    Published under ``instances/<instance_id>`` (etcd, on a lease) or as
    ``<instance_id>.json`` in the file store's status directory.

    .. versionadded:: 0.1.0
    """

    model_config = _STATUS_CONFIG

    format: int = 0
    """The layout of this document (0 if written before layouts were numbered)."""
    instance_id: str
    """Unique per process: ``<app>-<host>-<pid>-<random>``."""
    app: str
    """The application's name."""
    host: str
    """The host name."""
    pid: int
    """The process id."""
    started_at: AwareDatetime | None = None
    """When the process connected (None if it did not say)."""
    heartbeat_at: AwareDatetime | None = None
    """When this status was last written (None if it did not say)."""
    version: str = "unknown"
    """cbcontrol's version in the process."""
    store: str = ""
    """The store the process reads."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Its labels (``app``, ``host``, ``instance``, ``CBCONTROL_LABELS``)."""
    heartbeat_age_s: float | None = None
    """Seconds since its last heartbeat, as the store tells (None if it cannot)."""
    liveness: Literal["live", "stale", "lost"] = "live"
    """``stale``: its heartbeat is late; ``lost``: none for the TTL (listed a while)."""
    breakers: dict[str, BreakerStatus] = Field(default_factory=dict)
    """Its breakers by name."""
    errors: dict[str, str] = Field(default_factory=dict)
    """Config errors in force: ``{"breakers/payment": message, "store": message}``."""
    health: dict[str, Any] = Field(default_factory=dict)
    """The control plane's health: ``reachable``, ``loaded_from``,
    ``history_backwards``."""
