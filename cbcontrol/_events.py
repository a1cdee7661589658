"""The breaker's vocabulary: states, triggers, outcomes and the frozen events."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CallRecorded", "Event", "Outcome", "State", "StateChanged", "Trigger"]


class State(enum.Enum):
    """
    A breaker's state.

    ``CLOSED``, ``OPEN`` and ``HALF_OPEN`` are the automatic machine; ``FORCED_OPEN``
    and ``FORCED_CLOSED`` are operator overrides that no timer or outcome undoes.

    .. versionadded:: 0.1.0
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    FORCED_CLOSED = "forced_closed"

    def __str__(self) -> str:
        return self.value


class Trigger(enum.Enum):
    """
    What moved the breaker from one state to another.

    .. versionadded:: 0.1.0
    """

    TRIP = "trip"
    TIMEOUT = "timeout"
    PROBE_FAILED = "probe_failed"
    PROBE_TIMEOUT = "probe_timeout"
    PROBES_PASSED = "probes_passed"
    FORCE_OPEN = "force_open"
    FORCE_CLOSED = "force_closed"
    CLEAR_OVERRIDE = "clear_override"
    RESET = "reset"

    def __str__(self) -> str:
        return self.value


class Outcome(enum.Enum):
    """
    How one protected call ended, as far as the breaker is concerned.

    .. versionadded:: 0.1.0
    """

    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"
    REJECTED = "rejected"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class StateChanged:
    """
    The breaker moved from one state to another.

    Attributes:
        breaker: The breaker's name.
        from_state: The state before.
        to_state: The state after.
        trigger: What caused the move.
        reason: A human sentence: which condition tripped, or the operator's reason.
        at: The breaker clock's reading when it happened.
        retry_after_s: For ``OPEN``: seconds until the breaker admits probes.

    .. versionadded:: 0.1.0
    """

    breaker: str
    from_state: State
    to_state: State
    trigger: Trigger
    reason: str
    at: float
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class CallRecorded:
    """
    One call's outcome, delivered to ``on_call`` listeners.

    Attributes:
        breaker: The breaker's name.
        outcome: Success, failure, ignored or rejected.
        at: The breaker clock's reading when the outcome was recorded.
        duration_s: How long the call took, when the breaker timed it.
        exception: The exception the call raised, if any.

    .. versionadded:: 0.1.0
    """

    breaker: str
    outcome: Outcome
    at: float
    duration_s: float | None = None
    exception: BaseException | None = None


Event = StateChanged | CallRecorded
