"""pybreaker 1.4's API over a cbcontrol breaker (see ``compat/pybreaker.py``)."""

from __future__ import annotations

import contextlib
import functools
import inspect
import types
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from cbcontrol._events import State, StateChanged
from cbcontrol.compat._registry import backing_breaker, retune
from cbcontrol.exceptions import CircuitOpenError

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator, Sequence

    from cbcontrol._breaker import CircuitBreaker as Breaker
    from cbcontrol._plane import ControlPlane

__all__ = [
    "STATE_CLOSED",
    "STATE_HALF_OPEN",
    "STATE_OPEN",
    "CircuitBreaker",
    "CircuitBreakerError",
    "CircuitBreakerListener",
    "CircuitBreakerState",
    "CircuitBreakerStorage",
    "CircuitClosedState",
    "CircuitHalfOpenState",
    "CircuitMemoryStorage",
    "CircuitOpenState",
    "CircuitRedisStorage",
]

STATE_OPEN = "open"
STATE_CLOSED = "closed"
STATE_HALF_OPEN = "half-open"

T = TypeVar("T")

_NAMES = {
    State.CLOSED: STATE_CLOSED,
    State.FORCED_CLOSED: STATE_CLOSED,
    State.OPEN: STATE_OPEN,
    State.FORCED_OPEN: STATE_OPEN,
    State.HALF_OPEN: STATE_HALF_OPEN,
}


class CircuitBreakerError(Exception):
    """Raised when the breaker rejects a call, or when a failure opens it."""


class CircuitBreakerListener:
    """Override any of these to hear what a breaker does."""

    def before_call(
        self, cb: CircuitBreaker, func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        """Called before the breaker calls ``func``."""

    def failure(self, cb: CircuitBreaker, exc: BaseException) -> None:
        """Called when a call failed."""

    def success(self, cb: CircuitBreaker) -> None:
        """Called when a call succeeded."""

    def state_change(
        self,
        cb: CircuitBreaker,
        old_state: CircuitBreakerState | None,
        new_state: CircuitBreakerState,
    ) -> None:
        """Called when the breaker's state changed."""


class CircuitBreakerState:
    """A state as pybreaker's listeners see it: ``state.name``."""

    def __init__(self, cb: CircuitBreaker, name: str) -> None:
        self._breaker = cb
        self._name = name

    @property
    def name(self) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"``."""
        return self._name


class _NamedState(CircuitBreakerState):
    """A state whose name is fixed by its class."""

    NAME: ClassVar[str]

    def __init__(
        self,
        cb: CircuitBreaker,
        prev_state: CircuitBreakerState | None = None,
        notify: bool = False,
    ) -> None:
        super().__init__(cb, self.NAME)


class CircuitClosedState(_NamedState):
    """The closed state."""

    NAME = STATE_CLOSED


class CircuitOpenState(_NamedState):
    """The open state."""

    NAME = STATE_OPEN


class CircuitHalfOpenState(_NamedState):
    """The half-open state."""

    NAME = STATE_HALF_OPEN


_STATE_CLASSES: dict[str, type[_NamedState]] = {
    STATE_CLOSED: CircuitClosedState,
    STATE_OPEN: CircuitOpenState,
    STATE_HALF_OPEN: CircuitHalfOpenState,
}


class CircuitBreakerStorage:
    """Where pybreaker keeps a breaker's state; cbcontrol keeps it in the process."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        """The storage's name."""
        return self._name


class CircuitMemoryStorage(CircuitBreakerStorage):
    """In-process state (the default): the breaker starts in ``state``."""

    def __init__(self, state: str) -> None:
        super().__init__("memory")
        self.initial_state = state


class CircuitRedisStorage(CircuitBreakerStorage):
    """Not supported: cbcontrol shares settings through its control plane instead."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        msg = (
            "CircuitRedisStorage is not supported by cbcontrol.compat.pybreaker: a "
            "cbcontrol breaker keeps its state in the process and shares its settings "
            "and overrides through the control plane (cbctl); use pybreaker itself "
            "to share state in Redis"
        )
        raise NotImplementedError(msg)


class CircuitBreaker:
    """
    pybreaker's ``CircuitBreaker``, backed by a cbcontrol breaker.

    ``fail_max``, ``reset_timeout`` and ``success_threshold`` are the breaker's code
    layer (no backoff, no request timeout), which presets, env, the file and etcd
    may override once the breaker has a name; the setters change that layer.
    """

    def __init__(
        self,
        fail_max: int = 5,
        reset_timeout: float = 60,
        success_threshold: int = 1,
        exclude: Iterable[type[BaseException] | Callable[[Any], bool]] | None = None,
        listeners: Sequence[CircuitBreakerListener] | None = None,
        state_storage: CircuitBreakerStorage | None = None,
        name: str | None = None,
        throw_new_error_on_trip: bool = True,
    ) -> None:
        if state_storage is not None and not isinstance(
            state_storage, CircuitMemoryStorage
        ):
            msg = (
                f"state_storage {state_storage!r} is not supported by "
                "cbcontrol.compat.pybreaker (only CircuitMemoryStorage)"
            )
            raise NotImplementedError(msg)
        self._initial = None if state_storage is None else state_storage.initial_state
        self._code: dict[str, object] = {
            "max_failures": fail_max,
            "reset_timeout": reset_timeout,
            "success_threshold": success_threshold,
            "backoff_multiplier": 1.0,
            "request_timeout": None,
        }
        self._excluded_exceptions = list(exclude or [])
        self._listeners = list(listeners or [])
        self._name = name
        self._throw_new_error_on_trip = throw_new_error_on_trip
        self._backing: Breaker | None = None
        self._plane: ControlPlane | None = None

    # -- the cbcontrol breaker -------------------------------------------------------

    @property
    def _breaker(self) -> Breaker:
        backing = self._backing
        if backing is None:
            backing, self._plane = backing_breaker(
                self._name, self._code, failure_on=self.is_system_error
            )
            self._backing = backing
            backing.on_state_change(self._state_changed)
            if self._initial == STATE_OPEN:
                self.open()
            elif self._initial == STATE_HALF_OPEN:
                self.half_open()
        return backing

    def _state_changed(self, event: StateChanged) -> None:
        old, new = _NAMES[event.from_state], _NAMES[event.to_state]
        if old == new:
            return
        old_state = _STATE_CLASSES[old](self)
        new_state = _STATE_CLASSES[new](self)
        for listener in self.listeners:
            listener.state_change(self, old_state, new_state)

    def _retune(self, **changes: object) -> None:
        self._code.update(changes)
        if self._backing is not None:
            retune(self._backing, self._plane, self._code)

    # -- settings ----------------------------------------------------------------------

    @property
    def fail_max(self) -> int:
        """Consecutive failures that open the breaker (the effective value)."""
        if self._backing is None:
            return self._code["max_failures"]  # type: ignore[return-value]
        return self._breaker.config.max_failures  # type: ignore[return-value]

    @fail_max.setter
    def fail_max(self, number: int) -> None:
        self._retune(max_failures=number)

    @property
    def reset_timeout(self) -> float:
        """Seconds the breaker stays open (the effective value)."""
        if self._backing is None:
            return self._code["reset_timeout"]  # type: ignore[return-value]
        return self._breaker.config.reset_timeout

    @reset_timeout.setter
    def reset_timeout(self, timeout: float) -> None:
        self._retune(reset_timeout=timeout)

    @property
    def success_threshold(self) -> int:
        """Half-open successes that close the breaker (the effective value)."""
        if self._backing is None:
            return self._code["success_threshold"]  # type: ignore[return-value]
        return self._breaker.config.success_threshold

    @success_threshold.setter
    def success_threshold(self, threshold: int) -> None:
        self._retune(success_threshold=threshold)

    @property
    def name(self) -> str | None:
        """The breaker's name (used by cbctl; set it before the first call)."""
        return self._name

    @name.setter
    def name(self, name: str) -> None:
        self._name = name

    # -- state -------------------------------------------------------------------------

    @property
    def current_state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"``."""
        return _NAMES[self._breaker.state]

    @property
    def state(self) -> CircuitBreakerState:
        """The state, as an object with a ``name``."""
        return _STATE_CLASSES[self.current_state](self)

    @state.setter
    def state(self, state_str: str) -> None:
        if state_str == STATE_OPEN:
            self.open()
        elif state_str == STATE_CLOSED:
            self.close()
        elif state_str == STATE_HALF_OPEN:
            self.half_open()
        else:
            valid = ", ".join(_STATE_CLASSES)
            msg = f"Unknown state {state_str!r}, valid states: {valid}"
            raise ValueError(msg)

    @property
    def fail_counter(self) -> int:
        """Consecutive failures."""
        return self._breaker.snapshot().consecutive_failures

    @property
    def success_counter(self) -> int:
        """Consecutive successes while half-open."""
        machine = self._breaker._machine  # noqa: SLF001 - cbcontrol's own
        if machine.state is not State.HALF_OPEN:
            return 0
        return machine.probe_calls - machine.probe_fails

    def open(self) -> bool:
        """Open the breaker now; returns ``throw_new_error_on_trip``."""
        self._breaker._manual(  # noqa: SLF001 - cbcontrol's own
            lambda m, now, rand: m.trip(now, rand, "opened by hand")
        )
        return self._throw_new_error_on_trip

    def half_open(self) -> None:
        """Let the next call through as a trial."""
        self._breaker._manual(  # noqa: SLF001
            lambda m, now, rand: m.half_open(now, rand)
        )

    def close(self) -> None:
        """Close the breaker and forget its failures."""
        self._breaker.reset()

    # -- exceptions --------------------------------------------------------------------

    @property
    def excluded_exceptions(
        self,
    ) -> tuple[type[BaseException] | Callable[[Any], bool], ...]:
        """Exceptions (or predicates) that do not count as failures."""
        return tuple(self._excluded_exceptions)

    def add_excluded_exception(self, exception: type[BaseException]) -> None:
        """Stop counting ``exception`` as a failure."""
        self._excluded_exceptions.append(exception)

    def add_excluded_exceptions(self, *exceptions: type[BaseException]) -> None:
        """Stop counting each of ``exceptions`` as a failure."""
        self._excluded_exceptions.extend(exceptions)

    def remove_excluded_exception(self, exception: type[BaseException]) -> None:
        """Count ``exception`` as a failure again."""
        self._excluded_exceptions.remove(exception)

    def is_system_error(self, exception: BaseException) -> bool:
        """Whether ``exception`` counts as a failure (it is not excluded)."""
        for exclusion in self._excluded_exceptions:
            if isinstance(exclusion, type):
                if isinstance(exception, exclusion):
                    return False
            elif callable(exclusion) and exclusion(exception):
                return False
        return True

    # -- listeners ---------------------------------------------------------------------

    @property
    def listeners(self) -> tuple[CircuitBreakerListener, ...]:
        """The registered listeners."""
        return tuple(self._listeners)

    def add_listener(self, listener: CircuitBreakerListener) -> None:
        """Register a listener."""
        self._listeners.append(listener)

    def add_listeners(self, *listeners: CircuitBreakerListener) -> None:
        """Register listeners."""
        self._listeners.extend(listeners)

    def remove_listener(self, listener: CircuitBreakerListener) -> None:
        """Unregister a listener."""
        self._listeners.remove(listener)

    # -- calling -----------------------------------------------------------------------

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``func`` through the breaker (a generator is one call, to its end)."""
        breaker = self._breaker
        admission, t0 = self._admit(breaker)
        for listener in self.listeners:
            listener.before_call(self, func, *args, **kwargs)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            self._failed(breaker, exc, admission, t0)
            raise
        if isinstance(result, types.GeneratorType):
            return self._generator(  # type: ignore[return-value]
                breaker, result, admission, t0
            )
        self._succeeded(breaker, admission, t0)
        return result

    async def _acall(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        breaker = self._breaker
        admission, t0 = self._admit(breaker)
        for listener in self.listeners:
            listener.before_call(self, func, *args, **kwargs)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            self._failed(breaker, exc, admission, t0)
            raise
        self._succeeded(breaker, admission, t0)
        return result

    def call_async(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Tornado coroutines are not supported; decorate ``async def`` instead."""
        msg = "No module named tornado"
        raise ImportError(msg)

    @contextlib.contextmanager
    def calling(self) -> Iterator[None]:
        """``with breaker.calling():`` runs the block as one call."""
        breaker = self._breaker
        admission, t0 = self._admit(breaker)
        try:
            yield
        except BaseException as exc:
            self._failed(breaker, exc, admission, t0)
            raise
        self._succeeded(breaker, admission, t0)

    def __call__(self, *call_args: Any, **call_kwargs: bool) -> Callable[..., Any]:
        """``@breaker`` or ``@breaker()`` on a function (``async def`` is awaited)."""
        if call_kwargs.pop("__pybreaker_call_async", False):
            msg = "No module named tornado"
            raise ImportError(msg)

        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def awrapper(*args: Any, **kwargs: Any) -> Any:
                    return await self._acall(func, *args, **kwargs)

                return awrapper

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return self.call(func, *args, **kwargs)

            return wrapper

        return decorate(*call_args) if call_args else decorate

    # -- internals ---------------------------------------------------------------------

    def _admit(self, breaker: Breaker) -> tuple[int, float | None]:
        try:
            return breaker._enter()  # noqa: SLF001 - cbcontrol's own
        except CircuitOpenError:
            msg = "Timeout not elapsed yet, circuit breaker still open"
            raise CircuitBreakerError(msg) from None

    def _succeeded(self, breaker: Breaker, admission: int, t0: float | None) -> None:
        breaker._exit_ok(admission, t0)  # noqa: SLF001
        for listener in self.listeners:
            listener.success(self)

    def _failed(
        self, breaker: Breaker, exc: BaseException, admission: int, t0: float | None
    ) -> None:
        """Record a raised call; raise CircuitBreakerError if it opened the breaker."""
        # pybreaker counts any BaseException; cbcontrol ignores cancellation.
        probe = admission > 0
        if not isinstance(exc, Exception):
            breaker._exit_error(exc, admission, t0)  # noqa: SLF001 - ignored
            return
        system = self.is_system_error(exc)
        for listener in self.listeners:
            if system:
                listener.failure(self, exc)
        events = breaker._exit_error(exc, admission, t0)  # noqa: SLF001
        if not system:
            for listener in self.listeners:
                listener.success(self)
            return
        opened = any(e.to_state is State.OPEN for e in events)
        if opened and self._throw_new_error_on_trip:
            msg = (
                "Trial call failed, circuit breaker opened"
                if probe
                else "Failures threshold reached, circuit breaker opened"
            )
            raise CircuitBreakerError(msg).with_traceback(exc.__traceback__)

    def _generator(
        self,
        breaker: Breaker,
        generator: Generator[Any, Any, Any],
        admission: int,
        t0: float | None,
    ) -> Generator[Any, Any, Any]:
        try:
            value = yield next(generator)
            while True:
                value = yield generator.send(value)
        except StopIteration:
            self._succeeded(breaker, admission, t0)
            return
        except BaseException as exc:
            self._failed(breaker, exc, admission, t0)
            raise
