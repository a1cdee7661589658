"""
Every error cbcontrol raises on purpose.

The hierarchy::

    CBControlError
    ├── CircuitOpenError          a call was rejected by an open breaker
    ├── TransitionError           internal: an illegal state-machine transition
    ├── BreakerNotFoundError (LookupError)  no spec and no live instance has it
    ├── ConfigError (ValueError)  a bad config value, with breaker, field, value, source
    └── StoreError                a config store failed
        ├── StoreUnavailableError   the store cannot be reached (down, hung, refused)
        ├── StoreAuthError          credentials or permissions were refused
        └── StoreConflictError      a compare-and-swap lost against another writer

Messages are derived from structured attributes, so callers can inspect what went wrong
without parsing text.
"""

from __future__ import annotations

__all__ = [
    "BreakerNotFoundError",
    "CBControlError",
    "CircuitOpenError",
    "ConfigError",
    "StoreAuthError",
    "StoreConflictError",
    "StoreError",
    "StoreUnavailableError",
    "TransitionError",
]


class CBControlError(Exception):
    """
    Root of every error cbcontrol raises on purpose.

    .. versionadded:: 0.1.0
    """


class CircuitOpenError(CBControlError):
    """
    A call was rejected because the breaker does not admit it.

    Args:
        breaker: The breaker's name.
        state: The state that rejected the call (``"open"``, ``"half_open"`` or
            ``"forced_open"``).
        retry_after_s: Seconds until the breaker will admit a probe, or ``None`` when no
            timer will (a forced-open breaker).
        reason: The operator's reason for a forced-open breaker, if any.

    .. versionadded:: 0.1.0
    """

    # Slots, not the instance dict: building the error is half the cost of a
    # rejection, and a dict made per error doubled it (bench/overhead.py).
    __slots__ = ("breaker", "reason", "retry_after_s", "state")

    def __init__(
        self,
        breaker: str,
        state: str,
        retry_after_s: float | None,
        reason: str | None = None,
    ) -> None:
        # The message is made when read, and BaseException.__new__ has set ``args``
        # already: a rejection is on the fail-fast path.
        self.breaker = breaker
        self.state = state
        self.retry_after_s = retry_after_s
        self.reason = reason

    def __str__(self) -> str:
        if self.retry_after_s is None:
            when = "until an operator clears it"
        else:
            when = f"retry after {self.retry_after_s:.3f}s"
        why = f" ({self.reason})" if self.reason else ""
        return f'circuit breaker "{self.breaker}" is {self.state}{why}; {when}'

    def __reduce__(self) -> tuple[object, ...]:
        return (
            type(self),
            (self.breaker, self.state, self.retry_after_s, self.reason),
        )


class TransitionError(CBControlError, RuntimeError):
    """
    Internal: the state machine was asked for a transition its table does not allow.

    The state is left unchanged. Seeing this is a bug in cbcontrol; please report it.

    .. versionadded:: 0.1.0
    """

    def __init__(self, breaker: str, state: str, trigger: str) -> None:
        self.breaker = breaker
        self.state = state
        self.trigger = trigger
        msg = (
            f'circuit breaker "{breaker}": no transition from state {state!r} '
            f"on {trigger!r}; the state is unchanged"
        )
        super().__init__(msg)


class BreakerNotFoundError(CBControlError, LookupError):
    """
    No spec and no live instance has the breaker an operation names.

    Args:
        name: The breaker asked for.
        store: The store, without credentials.
        known: The breakers there are (the closest are suggested).

    .. versionadded:: 0.3.0
    """

    def __init__(self, name: str, store: str, known: tuple[str, ...] = ()) -> None:
        import difflib

        self.name = name
        self.store = store
        self.known = known
        self.suggestions = tuple(difflib.get_close_matches(name, known, n=3))
        if self.suggestions:
            hint = "did you mean " + " or ".join(f'"{c}"' for c in self.suggestions)
            hint += "?"
        elif known:
            more = f" and {len(known) - 10} more" if len(known) > 10 else ""  # noqa: PLR2004
            hint = f"known breakers: {', '.join(known[:10])}{more}"
        else:
            hint = "the store has no breaker yet (set one to create it)"
        super().__init__(f'no breaker "{name}" in {store}; {hint}')


class ConfigError(CBControlError, ValueError):
    """
    A config value was rejected.

    Args:
        breaker: The breaker (or preset) the value was meant for, if known.
        field: The field name, if the error is about one field.
        value: The offending value.
        source: Where the value came from (``"env:PAYMENT_CB_MAX_FAILURES"``, ...).
        rule: What the value must be, or how to fix it.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        rule: str,
        *,
        breaker: str | None = None,
        field: str | None = None,
        value: object = None,
        source: str | None = None,
    ) -> None:
        self.breaker = breaker
        self.field = field
        self.value = value
        self.source = source
        self.rule = rule
        head = f'breaker "{breaker}": ' if breaker is not None else ""
        subject = f'field "{field}"' if field is not None else "config"
        origin = f' from source "{source}"' if source is not None else ""
        got = f", got {value!r}" if field is not None else ""
        msg = f"{head}{subject}{origin} {rule}{got}"
        super().__init__(msg)


class StoreError(CBControlError):
    """
    A config store (file or etcd) failed.

    .. versionadded:: 0.1.0
    """

    def __init__(self, message: str, *, store: str | None = None) -> None:
        self.store = store
        super().__init__(message)


class StoreUnavailableError(StoreError):
    """
    The store could not be reached: down, hung, or refusing connections.

    .. versionadded:: 0.1.0
    """


class StoreAuthError(StoreError):
    """
    The store refused the credentials, or the user lacks the permission.

    .. versionadded:: 0.1.0
    """


class StoreConflictError(StoreError):
    """
    A compare-and-swap write lost against a concurrent writer.

    .. versionadded:: 0.1.0
    """
