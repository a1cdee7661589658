"""
The ways into a breaker: ``call``, ``acall``, the decorators, ``with``/``async with``.

There is one fast path per flavour, written out in the two places each runs: the
sync one in ``call`` and in the sync decorator's wrapper, the async one in ``acall``
and in the async decorator's wrapper. Sharing it costs every call a frame: measured
side by side (``bench/overhead.py``), the sync decorator went from 0.29x to 0.38x
circuitbreaker's net overhead through a shared helper, and the async decorator would
take a second coroutine per call (about 1,200 more instructions, 40% of its
overhead, under callgrind). ``tests/test_entry_points.py`` runs every behavioural
scenario through every entry point, so the copies cannot drift. Everything off the
fast path goes through :meth:`Drivers._call` / :meth:`Drivers._acall`, and those
through the admission and recording steps of ``_recording.py``.

``request_timeout`` is enforced for the async drivers by ``_deadline.py``; a sync
call cannot be interrupted from outside, so it is only offered to integrations there.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import sys
from types import CodeType, CoroutineType, TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, Self, TypeVar, overload

from cbcontrol import _deadline
from cbcontrol._fallback import (
    FALLBACK_SOURCES,
    MISS,
    NOT_SERVED,
    default_key,
    mark,
    tracking,
)
from cbcontrol._recording import (
    CALL,
    FAST_ROLL,
    REJECT,
    SAMPLE_MASK,
    BreakerCore,
    logger,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Generator
    from types import FrameType

__all__ = ["Drivers", "is_async_callable"]

P = ParamSpec("P")
T = TypeVar("T")


def is_async_callable(fn: object) -> bool:
    """True for coroutine functions, their partials, and objects with async __call__."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - we want the method, not callable()
    )


class Drivers(BreakerCore):
    """The entry points of a breaker (a mixin of :class:`~cbcontrol.CircuitBreaker`)."""

    __slots__ = ()

    # -- sync --------------------------------------------------------------------------

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """
        Call ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: The breaker rejected the call and no fallback served it.
            TypeError: ``fn`` is a coroutine function; use :meth:`acall`.
        """
        if self._fast:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self._exit_error(exc, CALL, None)
                raise
            if result.__class__ is CoroutineType:
                self._refuse_coroutine(result, CALL)
            if self._fast == FAST_ROLL and self.clock() >= self._window.roll_at:
                self._roll()
            elif not next(self._tickets) & SAMPLE_MASK:
                self._sample_next()
            return result
        result = self._call(fn, args, kwargs)
        if result is NOT_SERVED:
            raise self._rejection(self.clock())
        return result

    def _call(self, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
        """
        The sync general path; ``NOT_SERVED`` for a rejection nothing answered.

        The caller raises the rejection: every frame an exception leaves costs about
        200 ns (a frame object and a traceback entry), more than the rest of it.
        """
        admission, t0 = self._admit()
        if admission == REJECT:
            if self._fallback.idle:
                return NOT_SERVED  # type: ignore[no-any-return]
            return self._serve(args, kwargs)  # type: ignore[no-any-return]
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._exit_error(exc, admission, t0)
            raise
        if result.__class__ is CoroutineType:
            self._refuse_coroutine(result, admission)
        self._exit_ok(admission, t0)
        if self._fallback.cache is not None:
            self._remember(args, kwargs, result)
        return result

    # -- async -------------------------------------------------------------------------

    async def acall(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Await ``fn(*args, **kwargs)`` through the breaker.

        A call still running after ``request_timeout`` is cancelled and raises
        :class:`TimeoutError`, which counts as a failure.

        Raises:
            CircuitOpenError: The breaker rejected the call and no fallback served it.
            TimeoutError: The call outlived ``request_timeout``.
            TypeError: ``fn`` is not async; use :meth:`call`.
        """
        if self._fast:
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                error = self._async_error(exc, CALL, None, fn, sys._getframe())  # noqa: SLF001
                if error is exc:
                    raise
                raise error from exc
            if self._fast == FAST_ROLL and self.clock() >= self._window.roll_at:
                self._roll()
            elif not next(self._tickets) & SAMPLE_MASK:
                self._sample_next()
            return result
        result = await self._acall(fn, args, kwargs)
        if result is NOT_SERVED:
            raise self._rejection(self.clock())
        return result

    async def _acall(
        self, fn: Callable[..., Awaitable[T]], args: Any, kwargs: Any
    ) -> T:
        """The async general path; ``NOT_SERVED`` as for :meth:`_call`."""
        admission, t0 = self._admit()
        if admission == REJECT:
            served = self._serve(args, kwargs)
            if served is NOT_SERVED or not inspect.isawaitable(served):
                return served  # type: ignore[no-any-return]
            return await served  # type: ignore[no-any-return]
        timeout = self._settings.request_timeout
        if timeout is not None:
            _deadline.watch(timeout)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            seen = self._async_error(exc, admission, t0, fn, sys._getframe())  # noqa: SLF001
            if seen is exc:
                raise
            raise seen from exc
        self._exit_ok(admission, t0)
        if self._fallback.cache is not None:
            self._remember(args, kwargs, result)
        return result

    def _async_error(
        self,
        exc: BaseException,
        admission: int,
        t0: float | None,
        fn: object,
        frame: FrameType,
    ) -> BaseException:
        """Record an awaited call that raised; returns what the caller should see."""
        if isinstance(exc, asyncio.CancelledError):
            timeout = _deadline.claim(frame)
            if timeout is not None:
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                msg = (
                    f'circuit breaker "{self.name}": the call took longer than '
                    f"request_timeout ({timeout:g}s)"
                )
                error = TimeoutError(msg)
                self._record_failure(error, admission, t0)
                return error
        tb = exc.__traceback__
        if isinstance(exc, TypeError) and tb is not None and tb.tb_next is None:
            # Raised by the call or the await in this frame, not by the dependency.
            self._exit_ignored(admission, exc)
            if "await" in str(exc):
                msg = (
                    f"CircuitBreaker.acall() needs an async function, got {fn!r}; use "
                    f"`breaker.call(...)` for sync functions (breaker {self.name!r})"
                )
                return TypeError(msg)
            return exc
        self._exit_error(exc, admission, t0)
        return exc

    # -- decorators --------------------------------------------------------------------

    @overload
    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync, async, generator or async-generator function."""
        if inspect.isasyncgenfunction(fn):
            return self._wrap_async_gen(fn)
        if inspect.isgeneratorfunction(fn):
            return self._wrap_gen(fn)
        if is_async_callable(fn):
            return self._wrap_async(fn)
        return self._wrap_sync(fn)

    def _wrap_sync(self, fn: Callable[P, T]) -> Callable[P, T]:
        breaker = self

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            fast = breaker._fast
            if fast:  # the fast path of `call`
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    breaker._exit_error(exc, CALL, None)
                    raise
                if result.__class__ is CoroutineType:
                    breaker._refuse_coroutine(result, CALL)
                if fast == FAST_ROLL and breaker.clock() >= breaker._window.roll_at:
                    breaker._roll()
                elif not next(breaker._tickets) & SAMPLE_MASK:
                    breaker._sample_next()
                return result
            result = breaker._call(fn, args, kwargs)
            if result is NOT_SERVED:
                raise breaker._rejection(breaker.clock())
            return result

        return guarded

    def _wrap_async(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        breaker = self

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            fast = breaker._fast
            if fast:  # the fast path of `acall`
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    error = breaker._async_error(exc, CALL, None, fn, sys._getframe())  # noqa: SLF001
                    if error is exc:
                        raise
                    raise error from exc
                if fast == FAST_ROLL and breaker.clock() >= breaker._window.roll_at:
                    breaker._roll()
                elif not next(breaker._tickets) & SAMPLE_MASK:
                    breaker._sample_next()
                return result
            result = await breaker._acall(fn, args, kwargs)
            if result is NOT_SERVED:
                raise breaker._rejection(breaker.clock())
            return result

        return guarded

    def _wrap_gen(
        self, fn: Callable[P, Generator[T, Any, Any]]
    ) -> Callable[P, Generator[T, Any, Any]]:
        breaker = self

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> Generator[T, Any, Any]:
            # The whole iteration is one call, admitted at the first next(); a
            # consumer that stops early raises GeneratorExit, which is ignored.
            admission, t0 = breaker._admit()
            if admission == REJECT:
                served = breaker._serve(args, kwargs)
                if served is NOT_SERVED:
                    raise breaker._rejection(t0)
                return (yield from served)
            try:
                result = yield from fn(*args, **kwargs)
            except BaseException as exc:
                breaker._exit_error(exc, admission, t0)
                raise
            breaker._exit_ok(admission, t0)
            return result

        return guarded

    def _wrap_async_gen(
        self, fn: Callable[P, AsyncIterator[T]]
    ) -> Callable[P, AsyncIterator[T]]:
        breaker = self

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
            admission, t0 = breaker._admit()
            if admission == REJECT:
                served = breaker._serve(args, kwargs)
                if served is NOT_SERVED:
                    raise breaker._rejection(t0)
                if hasattr(served, "__aiter__"):
                    async for item in served:
                        yield item
                else:
                    for item in served:
                        yield item
                return
            try:
                async for item in fn(*args, **kwargs):
                    yield item
            except BaseException as exc:
                breaker._exit_error(exc, admission, t0)
                raise
            breaker._exit_ok(admission, t0)

        return guarded

    # -- with / async with -------------------------------------------------------------

    def __enter__(self) -> Self:
        admission, t0 = self._enter()
        self._ctx.set((admission, t0, self._ctx.get()))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        frame = self._ctx.get()
        if frame is None:  # pragma: no cover - only if __exit__ is called by hand
            msg = f'circuit breaker "{self.name}": __exit__ without __enter__'
            raise RuntimeError(msg)
        admission, t0, outer = frame
        self._ctx.set(outer)
        if exc is None:
            self._exit_ok(admission, t0)
        else:
            self._exit_error(exc, admission, t0)

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- the fallback chain ------------------------------------------------------------

    def _serve(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Answer a rejected call from the fallback chain, else ``NOT_SERVED``."""
        chain = self._fallback
        cache = chain.cache
        if cache is not None:
            key = self._cache_key(args, kwargs)
            now = self.clock()
            lock = self._lock
            lock.acquire()  # not `with`: 3.11 makes that ~90 ns dearer per call
            try:
                value = MISS if key is None else cache.get(key, now)
                if value is MISS:
                    self._cache_misses += 1
                else:
                    self._cache_hits += 1
            finally:
                lock.release()
            if value is not MISS:  # counted as a fallback too: _cache_hits is it
                if tracking():
                    mark(self, "cache")
                return value
        source = chain.first
        if source is None:
            return NOT_SERVED
        # Counted without the lock, like rejections: a fallback answers an open
        # breaker's calls, the path a failing service takes at full rate.
        next((self._fallbacks or self._new_fallback_counts())[source])
        if tracking():
            mark(self, source)
        return chain.produce(source, args, kwargs)

    def _new_fallback_counts(self) -> dict[str, itertools.count[int]]:
        """The per-source counts, made at the first fallback."""
        with self._lock:
            counts = self._fallbacks
            if counts is None:
                counts = self._fallbacks = {
                    source: itertools.count() for source in FALLBACK_SOURCES
                }
            return counts

    def _cache_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        key_of = self._fallback.cache_key
        if key_of is None:
            return default_key(args, kwargs)
        try:
            return key_of(*args, **kwargs)
        except Exception:  # noqa: BLE001 - a broken key function only skips the cache
            logger.exception('circuit breaker "%s": cache_key raised', self.name)
            return None

    def _remember(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any
    ) -> None:
        """Keep a success for the response cache."""
        key = self._cache_key(args, kwargs)
        if key is None:
            return
        with self._lock:
            cache = self._fallback.cache
            if cache is not None:
                cache.put(key, result, self.clock())


def _inner_code(method: Callable[..., Any], name: str) -> CodeType:
    """The code object of the function ``name`` defined inside ``method``."""
    return next(
        c
        for c in method.__code__.co_consts
        if isinstance(c, CodeType) and c.co_name == name
    )


_deadline.register_drivers(
    outer=[Drivers.acall.__code__, _inner_code(Drivers._wrap_async, "guarded")],  # noqa: SLF001
    inner=[Drivers._acall.__code__],  # noqa: SLF001
)
