"""Real threads and tasks: exact half-open admission, no lost counts, no lock held."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from typing import TYPE_CHECKING, TypeAlias

import pytest

from cbcontrol import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    State,
    StateChanged,
    Trigger,
)
from cbcontrol._recording import FAST
from cbcontrol.testing import FakeClock

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

JOIN_TIMEOUT_S = 10.0
WORKERS = 8


@pytest.fixture
def anyio_backend() -> str:
    """Run the async tests on asyncio."""
    return "asyncio"


class Boom(Exception):
    """The dependency's failure."""


def fail() -> None:
    """A dependency call that fails at once."""
    raise Boom


def succeed() -> None:
    """A dependency call that succeeds at once."""


def half_open_breaker(max_probes: int) -> CircuitBreaker:
    """A breaker whose reset timeout elapsed on a fake clock: its next call probes."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        "dep",
        BreakerConfig(max_failures=1, reset_timeout=10, half_open_max_calls=max_probes),
        clock=clock,
    )
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.advance(11)
    assert State.HALF_OPEN == breaker.state
    return breaker


def run_threads(target: Callable[[int], None], count: int) -> None:
    """Start ``count`` threads on ``target(i)`` and join them, failing on a hang."""
    threads = [
        threading.Thread(target=target, args=(i,), daemon=True) for i in range(count)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT_S)
    assert [] == [t.name for t in threads if t.is_alive()]


class HeldCall:
    """A call through the breaker, on its own thread, held inside the dependency."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fails = False
        self.outcome: str | None = None
        self.thread = threading.Thread(target=self._run, args=(breaker,), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while not self.entered.is_set() and self.thread.is_alive():
            if time.monotonic() > deadline:
                msg = "call neither entered the dependency nor returned"
                raise AssertionError(msg)
            self.entered.wait(0.001)

    def _run(self, breaker: CircuitBreaker) -> None:
        def dependency() -> None:
            self.entered.set()
            self.release.wait(JOIN_TIMEOUT_S)
            if self.fails:
                raise Boom

        try:
            breaker.call(dependency)
            self.outcome = "succeeded"
        except CircuitOpenError:
            self.outcome = "rejected"
        except Boom:
            self.outcome = "failed"

    @property
    def admitted(self) -> bool:
        """Whether the breaker let the call reach the dependency."""
        return self.entered.is_set()

    def finish(self, *, fail: bool = False) -> str | None:
        """Let the dependency return (or raise) and wait for the call to end."""
        self.fails = fail
        self.release.set()
        self.thread.join(JOIN_TIMEOUT_S)
        return self.outcome


# -- exact half-open admission -------------------------------------------------------


@pytest.mark.parametrize("max_probes", [1, 3])
def test_half_open_admits_exactly_max_probes_threads(max_probes: int) -> None:
    """8 threads at once: exactly half_open_max_calls probe, the rest fail fast."""
    breaker = half_open_breaker(max_probes)
    barrier = threading.Barrier(WORKERS, timeout=JOIN_TIMEOUT_S)
    outcomes: list[str | None] = [None] * WORKERS
    # Each probe holds its slot until every other caller has been rejected: a caller
    # that waited for the probes instead of failing fast would leave it waiting.
    rejected = threading.Condition()
    released: list[bool] = []

    def held_failing_dependency() -> None:
        with rejected:
            released.append(
                rejected.wait_for(
                    lambda: outcomes.count("rejected") == WORKERS - max_probes,
                    timeout=JOIN_TIMEOUT_S,
                )
            )
        raise Boom

    def worker(i: int) -> None:
        barrier.wait()
        try:
            breaker.call(held_failing_dependency)
        except CircuitOpenError:
            with rejected:
                outcomes[i] = "rejected"
                rejected.notify_all()
        except Boom:
            outcomes[i] = "probed"

    run_threads(worker, WORKERS)

    assert [True] * max_probes == released
    assert max_probes == outcomes.count("probed")
    assert WORKERS - max_probes == outcomes.count("rejected")
    assert WORKERS - max_probes == breaker.snapshot().rejections


async def _gather_probes(
    breaker: CircuitBreaker, via: str, max_probes: int
) -> tuple[list[bool], list[str]]:
    """
    Run 8 tasks through the breaker at once: whether each probe saw every other task
    rejected while it held its slot, and each task's outcome.
    """
    outcomes: list[str] = [""] * WORKERS
    all_rejected = asyncio.Event()
    released: list[bool] = []

    async def held_failing_dependency() -> None:
        try:
            async with asyncio.timeout(JOIN_TIMEOUT_S):
                await all_rejected.wait()
            released.append(True)
        except TimeoutError:
            released.append(False)
        raise Boom

    async def task(i: int) -> None:
        try:
            if via == "acall":
                await breaker.acall(held_failing_dependency)
            else:
                async with breaker:
                    await held_failing_dependency()
        except CircuitOpenError:
            outcomes[i] = "rejected"
            if outcomes.count("rejected") == WORKERS - max_probes:
                all_rejected.set()
        except Boom:
            outcomes[i] = "probed"

    async with asyncio.timeout(2 * JOIN_TIMEOUT_S):
        await asyncio.gather(*(task(i) for i in range(WORKERS)))
    return released, outcomes


@pytest.mark.anyio
@pytest.mark.parametrize("via", ["acall", "async with"])
@pytest.mark.parametrize("max_probes", [1, 3])
async def test_half_open_admits_exactly_max_probes_tasks(
    max_probes: int, via: str
) -> None:
    """8 tasks at once: exactly half_open_max_calls probe, the rest fail fast."""
    breaker = half_open_breaker(max_probes)

    released, outcomes = await _gather_probes(breaker, via, max_probes)

    assert [True] * max_probes == released
    assert max_probes == outcomes.count("probed")
    assert WORKERS - max_probes == outcomes.count("rejected")
    assert WORKERS - max_probes == breaker.snapshot().rejections


def test_a_probe_outliving_its_half_open_episode_frees_no_slot() -> None:
    """A probe left over from an earlier half-open episode frees no slot of the next."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        "dep",
        BreakerConfig(
            max_failures=1, reset_timeout=10, half_open_max_calls=2, success_threshold=2
        ),
        clock=clock,
    )
    with pytest.raises(Boom):
        breaker.call(fail)
    clock.advance(11)
    first, slow = HeldCall(breaker), HeldCall(breaker)  # both probes of episode 1
    first_outcome = first.finish(fail=True)  # re-opens for 20 s
    clock.advance(21)
    current = HeldCall(breaker)  # episode 2: one of its two probe slots taken
    slow_outcome = slow.finish()  # the episode-1 probe ends late
    extra = [HeldCall(breaker) for _ in range(3)]
    admitted = [call.admitted for call in extra]
    for call in (current, *extra):
        call.finish()

    assert ("failed", "succeeded") == (first_outcome, slow_outcome)
    assert current.admitted
    assert [True, False, False] == admitted


# -- no lost counts ------------------------------------------------------------------

CALLS_PER_THREAD = 20_000


@pytest.fixture
def fine_switching() -> Iterator[None]:
    """Make the interpreter switch threads every 10 µs, so that calls interleave."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def _hammer(breaker: CircuitBreaker, threads: int, pick: Callable[[int], bool]) -> None:
    """Run CALLS_PER_THREAD calls per thread; call j fails iff ``pick(j)``."""
    barrier = threading.Barrier(threads, timeout=JOIN_TIMEOUT_S)

    def worker(_: int) -> None:
        call = breaker.call
        barrier.wait()
        for j in range(CALLS_PER_THREAD):
            if pick(j):
                with contextlib.suppress(Boom):
                    call(fail)
            else:
                call(succeed)

    run_threads(worker, threads)


@pytest.mark.usefixtures("fine_switching")
@pytest.mark.parametrize("threads", [4, 8])
def test_no_failure_is_lost_under_contention(threads: int) -> None:
    """Every failure recorded by concurrent threads shows up in the counters."""
    breaker = CircuitBreaker("dep")
    breaker.force_closed()

    _hammer(breaker, threads, lambda j: True)

    snap = breaker.snapshot()
    assert threads * CALLS_PER_THREAD == snap.failures
    assert threads * CALLS_PER_THREAD == snap.calls
    assert 0 == snap.successes
    assert State.FORCED_CLOSED == snap.state


@pytest.mark.usefixtures("fine_switching")
@pytest.mark.parametrize("threads", [4, 8])
def test_no_mixed_outcome_is_lost_under_contention(threads: int) -> None:
    """Alternating successes and failures from concurrent threads are all counted."""
    breaker = CircuitBreaker("dep")
    breaker.force_closed()

    _hammer(breaker, threads, lambda j: j % 2 == 1)

    snap = breaker.snapshot()
    half = threads * CALLS_PER_THREAD // 2
    assert (half, half) == (snap.successes, snap.failures)
    assert threads * CALLS_PER_THREAD == snap.calls


@pytest.mark.usefixtures("fine_switching")
@pytest.mark.parametrize("threads", [4, 8])
def test_no_success_is_lost_on_the_lock_free_path(threads: int) -> None:
    """Successes counted without the lock by concurrent threads are all counted."""
    breaker = CircuitBreaker("dep")

    _hammer(breaker, threads, lambda j: False)

    snap = breaker.snapshot()
    assert threads * CALLS_PER_THREAD == snap.successes
    assert threads * CALLS_PER_THREAD == snap.calls
    assert 0 == snap.failures


@pytest.mark.usefixtures("fine_switching")
def test_no_fallback_answer_is_lost_on_the_lock_free_path() -> None:
    """Rejections answered by a fallback in concurrent threads are all counted."""
    threads = 4
    breaker = CircuitBreaker(
        "dep",
        BreakerConfig(max_failures=1, reset_timeout=3600),
        static_fallback="spare",
    )
    with pytest.raises(Boom):
        breaker.call(fail)
    barrier = threading.Barrier(threads, timeout=JOIN_TIMEOUT_S)
    answers: list[set[object]] = []

    def worker(_: int) -> None:
        call = breaker.call
        barrier.wait()  # the first answers race to make the counters, too
        answers.append({call(succeed) for _ in range(CALLS_PER_THREAD)})

    run_threads(worker, threads)

    snap = breaker.snapshot()
    assert [{"spare"}] * threads == answers
    assert threads * CALLS_PER_THREAD == snap.fallbacks_by_source["static"]
    assert threads * CALLS_PER_THREAD == snap.rejections


def test_a_sampled_call_meeting_a_busy_lock_still_restores_the_fast_path() -> None:
    """
    The sampled call waits for the lock rather than leave the fast path off.

    Another thread holds the lock (as one does while it restores the fast path
    itself, when the GIL moves); were the sampled call to give up, every later call
    would stay on the general path until some call found the lock free.
    """
    breaker = CircuitBreaker("dep")
    breaker.call(int, "1")  # the first call is sampled; the fast path is on after it
    breaker._sample_next()  # as one call in 64 does
    caller = threading.Thread(target=breaker.call, args=(int, "1"))
    with breaker._lock:
        caller.start()
        caller.join(timeout=0.2)  # enough for the call to reach the lock
    caller.join(JOIN_TIMEOUT_S)

    assert not caller.is_alive()
    assert FAST == breaker._fast


# -- no lock held across the protected call ------------------------------------------

BLOCKING_CALLS = 5

Blocker: TypeAlias = "Callable[[], None]"  # what a protected call runs


def _forced_closed_failing(breaker: CircuitBreaker, block: Blocker) -> Blocker:
    breaker.force_closed()

    def blocked_failure() -> None:
        block()
        raise Boom

    def run() -> None:
        with pytest.raises(Boom):
            breaker.call(blocked_failure)

    return run


def _listened_success(breaker: CircuitBreaker, block: Blocker) -> Blocker:
    breaker.on_call(lambda event: None)  # moves every call to the locked general path
    return lambda: breaker.call(block)


def _context_manager_success(breaker: CircuitBreaker, block: Blocker) -> Blocker:
    def run() -> None:
        with breaker:
            block()

    return run


@pytest.mark.parametrize(
    "make_call",
    [
        lambda b, block: lambda: b.call(block),
        _listened_success,
        _context_manager_success,
        _forced_closed_failing,
    ],
    ids=["fast-path", "general-path", "with-block", "failures"],
)
def test_a_blocking_call_does_not_serialise_other_threads(
    make_call: Callable[[CircuitBreaker, Blocker], Blocker],
) -> None:
    """Blocking calls run in parallel: no lock is held across the protected call."""
    breaker = CircuitBreaker("dep")
    # Every thread's protected call waits inside the dependency until all of them are
    # inside it at once: a lock held across the call would keep that from happening.
    inside = threading.Barrier(WORKERS, timeout=JOIN_TIMEOUT_S)
    broken: list[int] = []

    def block() -> None:
        try:
            inside.wait()
        except threading.BrokenBarrierError:
            broken.append(threading.get_ident())

    one_call = make_call(breaker, block)

    def worker(_: int) -> None:
        for _ in range(BLOCKING_CALLS):
            one_call()

    run_threads(worker, WORKERS)

    assert [] == broken
    assert WORKERS * BLOCKING_CALLS == breaker.snapshot().calls


# -- listeners run without the lock ----------------------------------------------------


def test_state_listener_may_read_the_breaker() -> None:
    """A state-change listener can call snapshot() and state without deadlocking."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        "dep", BreakerConfig(max_failures=1, reset_timeout=10), clock=clock
    )
    seen: list[tuple[Trigger, State, State]] = []

    def listener(event: StateChanged) -> None:
        seen.append((event.trigger, breaker.state, breaker.snapshot().state))

    breaker.on_state_change(listener)

    def scenario() -> None:
        with pytest.raises(Boom):
            breaker.call(fail)  # trips
        clock.advance(11)
        breaker.call(succeed)  # times out, probes, closes
        breaker.force_open()
        breaker.reset()

    worker = threading.Thread(target=scenario, daemon=True)
    worker.start()
    worker.join(JOIN_TIMEOUT_S)

    assert not worker.is_alive(), "deadlock: a listener blocked on the breaker's lock"
    assert [
        (Trigger.TRIP, State.OPEN, State.OPEN),
        (Trigger.TIMEOUT, State.HALF_OPEN, State.HALF_OPEN),
        (Trigger.PROBES_PASSED, State.CLOSED, State.CLOSED),
        (Trigger.FORCE_OPEN, State.FORCED_OPEN, State.FORCED_OPEN),
        (Trigger.RESET, State.CLOSED, State.CLOSED),
    ] == seen
