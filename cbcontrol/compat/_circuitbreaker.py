"""circuitbreaker 2.1's API over a cbcontrol breaker (``compat/circuitbreaker.py``)."""

from __future__ import annotations

import inspect
import math
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import TYPE_CHECKING, Any, ClassVar, Literal, ParamSpec, TypeVar, overload

from cbcontrol._clock import monotonic
from cbcontrol._events import State, StateChanged
from cbcontrol.compat._registry import backing_breaker
from cbcontrol.exceptions import CircuitOpenError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator
    from types import TracebackType

    from cbcontrol._breaker import CircuitBreaker as Breaker

__all__ = [
    "STATE_CLOSED",
    "STATE_HALF_OPEN",
    "STATE_OPEN",
    "STRING_TYPES",
    "CircuitBreaker",
    "CircuitBreakerError",
    "CircuitBreakerMonitor",
    "build_failure_predicate",
    "circuit",
    "in_exception_list",
]

P = ParamSpec("P")
T = TypeVar("T")

STRING_TYPES = (bytes, str)
STATE_CLOSED = "closed"
STATE_OPEN = "open"
STATE_HALF_OPEN = "half_open"

_STATES = {
    State.CLOSED: STATE_CLOSED,
    State.FORCED_CLOSED: STATE_CLOSED,
    State.OPEN: STATE_OPEN,
    State.FORCED_OPEN: STATE_OPEN,
    State.HALF_OPEN: STATE_HALF_OPEN,
}

FailurePredicate = "Callable[[type[BaseException], BaseException], bool]"


def in_exception_list(
    *exc_types: type[BaseException],
) -> Callable[[type[BaseException], BaseException | None], bool]:
    """A predicate ``(type, value) -> bool`` true for subclasses of ``exc_types``."""

    def matches(thrown_type: type[BaseException], _: BaseException | None) -> bool:
        return issubclass(thrown_type, exc_types)

    return matches


def build_failure_predicate(expected_exception: Any) -> Any:
    """
    ``(type, value) -> bool`` from an exception type, an iterable of them or a
    predicate.

    Raises:
        ValueError: A string (a name given in the wrong place) or anything else that
            is neither exception types nor a predicate.
    """
    if inspect.isclass(expected_exception) and issubclass(
        expected_exception, Exception
    ):
        return in_exception_list(expected_exception)
    if isinstance(expected_exception, STRING_TYPES):
        msg = "expected_exception cannot be a string. Did you mean name?"
        raise ValueError(msg)  # noqa: TRY004 - circuitbreaker raises ValueError
    try:
        types = tuple(expected_exception)
    except TypeError:
        if not callable(expected_exception) or inspect.isclass(expected_exception):
            msg = "expected_exception does not look like a predicate"
            raise ValueError(msg) from None
        return expected_exception
    return in_exception_list(*types)


class CircuitBreaker:
    """
    circuitbreaker's ``CircuitBreaker``, backed by a cbcontrol breaker.

    ``failure_threshold`` and ``recovery_timeout`` become the breaker's code layer
    (``max_failures``, ``reset_timeout``; no backoff, no request timeout), which
    presets, env, the file and etcd may override once the breaker has a name.
    """

    FAILURE_THRESHOLD = 5
    RECOVERY_TIMEOUT = 30
    EXPECTED_EXCEPTION: Any = Exception
    FALLBACK_FUNCTION: Any = None

    def __init__(
        self,
        failure_threshold: int | None = None,
        recovery_timeout: float | None = None,
        expected_exception: Any = None,
        name: str | None = None,
        fallback_function: Callable[..., Any] | None = None,
    ) -> None:
        self._last_failure: BaseException | None = None
        self._failure_threshold = failure_threshold or self.FAILURE_THRESHOLD
        self._recovery_timeout = recovery_timeout or self.RECOVERY_TIMEOUT
        if not expected_exception:
            # The subclass's own attribute, read from __dict__ so that a predicate
            # function is not turned into a method.
            expected_exception = type(self).__dict__.get(
                "EXPECTED_EXCEPTION", CircuitBreaker.EXPECTED_EXCEPTION
            )
        self.is_failure = build_failure_predicate(expected_exception)
        self._fallback_function = fallback_function or self.FALLBACK_FUNCTION
        self._name = name
        self._backing: Breaker | None = None
        self._open_until = monotonic() + self._recovery_timeout

    # -- the cbcontrol breaker -------------------------------------------------------

    @property
    def _breaker(self) -> Breaker:
        backing = self._backing
        if backing is None:
            code = {
                "max_failures": self._failure_threshold,
                "reset_timeout": self._recovery_timeout,
                "backoff_multiplier": 1.0,
                "request_timeout": None,
            }
            backing, _ = backing_breaker(
                self._name,
                code,
                failure_on=lambda exc: bool(self.is_failure(type(exc), exc)),
            )
            self._backing = backing
            backing.on_state_change(self._state_changed)
        return backing

    def _state_changed(self, event: StateChanged) -> None:
        if event.to_state is State.OPEN and event.retry_after_s is not None:
            self._open_until = event.at + event.retry_after_s

    def _record(self, exc: BaseException | None) -> None:
        """Keep ``last_failure`` as circuitbreaker does: cleared by any non-failure."""
        failed = exc is not None and self.is_failure(type(exc), exc)
        self._last_failure = exc if failed else None

    # -- decorating ------------------------------------------------------------------

    def __call__(self, wrapped: Callable[P, T]) -> Callable[P, T]:
        return self.decorate(wrapped)

    def decorate(self, function: Callable[P, T]) -> Callable[P, T]:
        """Apply the breaker to a sync, async, generator or async-generator function."""
        if self._name is None:
            self._name = getattr(function, "__qualname__", None) or function.__name__
        CircuitBreakerMonitor.register(self)
        if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(
            function
        ):
            return self._decorate_async(function)
        return self._decorate_sync(function)

    def _decorate_sync(self, function: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.opened:
                if self.fallback_function:
                    return self.fallback_function(*args, **kwargs)
                raise CircuitBreakerError(self)
            return self.call(function, *args, **kwargs)

        @wraps(function)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            if self.opened:
                if self.fallback_function:
                    yield from self.fallback_function(*args, **kwargs)
                    return
                raise CircuitBreakerError(self)
            yield from self.call_generator(function, *args, **kwargs)

        return gen_wrapper if inspect.isgeneratorfunction(function) else wrapper

    def _decorate_async(self, function: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(function)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            if self.opened:
                if self.fallback_function:
                    return await self.fallback_function(*args, **kwargs)
                raise CircuitBreakerError(self)
            return await self.call_async(function, *args, **kwargs)

        @wraps(function)
        async def gen_awrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            if self.opened:
                if self.fallback_function:
                    async for item in self.fallback_function(*args, **kwargs):
                        yield item
                    return
                raise CircuitBreakerError(self)
            async for item in self.call_async_generator(function, *args, **kwargs):
                yield item

        return gen_awrapper if inspect.isasyncgenfunction(function) else awrapper

    # -- calling ---------------------------------------------------------------------

    def call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``func`` through the breaker."""
        with self:
            return func(*args, **kwargs)

    def call_generator(
        self, func: Callable[..., Iterable[Any]], *args: Any, **kwargs: Any
    ) -> Iterator[Any]:
        """Iterate ``func(*args, **kwargs)`` through the breaker, as one call."""
        breaker = self._breaker
        admission, t0 = self._admit(breaker)
        try:
            yield from func(*args, **kwargs)
        except BaseException as exc:
            self._record(exc)
            breaker._exit_error(exc, admission, t0)  # noqa: SLF001 - cbcontrol's own
            raise
        self._record(None)
        breaker._exit_ok(admission, t0)  # noqa: SLF001

    async def call_async(
        self, func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        """Await ``func(*args, **kwargs)`` through the breaker."""
        with self:
            return await func(*args, **kwargs)

    async def call_async_generator(
        self, func: Callable[..., AsyncIterator[Any]], *args: Any, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Iterate ``func(*args, **kwargs)`` asynchronously, as one call."""
        breaker = self._breaker
        admission, t0 = self._admit(breaker)
        try:
            async for item in func(*args, **kwargs):
                yield item
        except BaseException as exc:
            self._record(exc)
            breaker._exit_error(exc, admission, t0)  # noqa: SLF001
            raise
        self._record(None)
        breaker._exit_ok(admission, t0)  # noqa: SLF001

    def _admit(self, breaker: Breaker) -> tuple[int, float | None]:
        try:
            return breaker._enter()  # noqa: SLF001
        except CircuitOpenError:
            raise CircuitBreakerError(self) from None

    def __enter__(self) -> None:
        try:
            self._breaker.__enter__()
        except CircuitOpenError:
            raise CircuitBreakerError(self) from None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        self._record(exc_value)
        self._breaker.__exit__(exc_type, exc_value, traceback)
        return False

    # -- state -------------------------------------------------------------------------

    def reset(self) -> None:
        """Close the breaker and forget its failures."""
        self._breaker.reset()
        self._last_failure = None

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"``."""
        return _STATES[self._breaker.state]

    @property
    def open_until(self) -> datetime:
        """Approximately when the breaker will admit a call again."""
        return datetime.now(UTC) + timedelta(seconds=self.open_remaining)

    @property
    def open_remaining(self) -> int:
        """Whole seconds the breaker stays open (negative once the time is up)."""
        remain = self._open_until - monotonic()
        return math.ceil(remain) if remain > 0 else math.floor(remain)

    @property
    def failure_count(self) -> int:
        """Failures since the last success."""
        return self._breaker.snapshot().consecutive_failures

    @property
    def closed(self) -> bool:
        """Whether the breaker is closed."""
        return self.state == STATE_CLOSED

    @property
    def opened(self) -> bool:
        """Whether the breaker is open."""
        return self.state == STATE_OPEN

    @property
    def name(self) -> str | None:
        """The breaker's name (a decorated function's qualified name by default)."""
        return self._name

    @property
    def last_failure(self) -> BaseException | None:
        """The exception of the last failed call, until a call succeeds."""
        return self._last_failure

    @property
    def fallback_function(self) -> Callable[..., Any] | None:
        """Called instead of the function while the breaker is open."""
        return self._fallback_function

    def __str__(self) -> str:
        return self.name or "unnamed_CircuitBreaker"


class CircuitBreakerError(Exception):
    """Raised instead of calling the function while the breaker is open."""

    def __init__(self, circuit_breaker: CircuitBreaker, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._circuit_breaker = circuit_breaker

    def __str__(self) -> str:
        cb = self._circuit_breaker
        return (
            f'Circuit "{cb.name}" OPEN until {cb.open_until} ({cb.failure_count} '
            f"failures, {round(cb.open_remaining)} sec remaining) "
            f"(last_failure: {cb.last_failure!r})"
        )


class CircuitBreakerMonitor:
    """The decorated breakers of the process, by name."""

    circuit_breakers: ClassVar[dict[str | None, CircuitBreaker]] = {}

    @classmethod
    def register(cls, circuit_breaker: CircuitBreaker) -> None:
        """Remember ``circuit_breaker`` under its name."""
        cls.circuit_breakers[circuit_breaker.name] = circuit_breaker

    @classmethod
    def all_closed(cls) -> bool:
        """Whether no breaker is open."""
        return len(list(cls.get_open())) == 0

    @classmethod
    def get_circuits(cls) -> Iterable[CircuitBreaker]:
        """Every registered breaker."""
        return cls.circuit_breakers.values()

    @classmethod
    def get(cls, name: str) -> CircuitBreaker | None:
        """The breaker called ``name``, if any."""
        return cls.circuit_breakers.get(name)

    @classmethod
    def get_open(cls) -> Iterator[CircuitBreaker]:
        """The open breakers."""
        return (c for c in cls.get_circuits() if c.opened)

    @classmethod
    def get_closed(cls) -> Iterator[CircuitBreaker]:
        """The closed breakers."""
        return (c for c in cls.get_circuits() if c.closed)


@overload
def circuit(failure_threshold: Callable[P, T]) -> Callable[P, T]: ...
@overload
def circuit(
    failure_threshold: int | None = None,
    recovery_timeout: float | None = None,
    expected_exception: Any = None,
    name: str | None = None,
    fallback_function: Callable[..., Any] | None = None,
    cls: type[CircuitBreaker] = ...,
) -> CircuitBreaker: ...
def circuit(
    failure_threshold: Any = None,
    recovery_timeout: float | None = None,
    expected_exception: Any = None,
    name: str | None = None,
    fallback_function: Callable[..., Any] | None = None,
    cls: type[CircuitBreaker] = CircuitBreaker,
) -> Any:
    """
    ``@circuit`` or ``@circuit(failure_threshold=..., ...)``: a breaker as decorator.

    Without arguments the function itself arrives as the first argument.
    """
    if callable(failure_threshold):
        return cls().decorate(failure_threshold)
    return cls(
        failure_threshold=failure_threshold,
        recovery_timeout=recovery_timeout,
        expected_exception=expected_exception,
        name=name,
        fallback_function=fallback_function,
    )
