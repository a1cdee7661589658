"""On-time transitions: the shared timer thread, and who opts in to it."""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import TYPE_CHECKING

import cbcontrol
from cbcontrol import BreakerConfig, CircuitBreaker, State, StateChanged, Trigger
from cbcontrol._recording import GENERAL
from cbcontrol._timers import TIMERS, Timers
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from collections.abc import Callable

WAIT_S = 5.0


class Box:
    """Something to refer to weakly, with a method the timer thread calls."""

    def __init__(self, action: Callable[[], object]) -> None:
        self.action = action

    def fire(self) -> None:
        """Run the action."""
        self.action()


def test_the_thread_runs_callbacks_in_order_and_survives_errors() -> None:
    """A raising callback is logged; later ones still run, earliest deadline first."""
    timers = Timers()
    ran: list[str] = []
    done = threading.Event()

    def boom() -> None:
        raise RuntimeError("callback bug")

    boxes = [
        Box(lambda: (ran.append("second"), done.set())),
        Box(boom),
        Box(lambda: ran.append("first")),
    ]
    timers.call_later(0.03, weakref.WeakMethod(boxes[0].fire))
    timers.call_later(0.0, weakref.WeakMethod(boxes[1].fire))
    timers.call_later(0.01, weakref.WeakMethod(boxes[2].fire))

    assert done.wait(WAIT_S)
    assert ["first", "second"] == ran


def test_a_deadline_centuries_away_does_not_stop_the_thread() -> None:
    """An override until 9999 is a wait longer than the OS allows; the thread waits
    at the limit instead of dying, and sooner deadlines still run."""
    timers = Timers()
    done = threading.Event()
    far, soon = Box(lambda: None), Box(done.set)
    timers.call_later(1e12, weakref.WeakMethod(far.fire))
    first = timers._thread
    assert first is not None

    first.join(0.3)  # a thread that dies on the far wait is gone by now
    alive = first.is_alive()
    timers.call_later(0.01, weakref.WeakMethod(soon.fire))

    assert alive
    assert done.wait(WAIT_S)
    assert first is timers._thread


def test_a_callback_whose_owner_is_gone_is_skipped() -> None:
    """Breakers are held weakly: one that was collected is never called."""
    timers = Timers()
    ran: list[str] = []
    done = threading.Event()
    gone = Box(lambda: ran.append("gone"))
    kept = Box(done.set)
    ref = weakref.WeakMethod(gone.fire)
    del gone  # collected before the thread could reach it, however loaded the machine
    timers.call_later(0.0, ref)
    timers.call_later(0.01, weakref.WeakMethod(kept.fire))

    assert done.wait(WAIT_S)
    assert [] == ran


def test_an_on_time_listener_hears_half_open_without_a_call() -> None:
    """The open -> half-open event arrives when due, with no traffic."""
    breaker = CircuitBreaker("dep", BreakerConfig(max_failures=1, reset_timeout=0.05))
    heard: list[StateChanged] = []
    arrived = threading.Event()

    def listener(event: StateChanged) -> None:
        heard.append(event)
        if event.to_state is State.HALF_OPEN:
            arrived.set()

    breaker.on_state_change(listener, on_time=True)
    with contextlib.suppress(ValueError):
        breaker.call(int, "x")

    assert arrived.wait(WAIT_S)
    assert [Trigger.TRIP, Trigger.TIMEOUT] == [e.trigger for e in heard]
    assert State.HALF_OPEN == breaker._machine.state


def test_without_an_on_time_listener_nothing_is_scheduled() -> None:
    """A breaker nobody asked for on-time events never wakes the timer thread."""
    breaker = CircuitBreaker("quiet", BreakerConfig(max_failures=1, reset_timeout=60))
    breaker.on_state_change(lambda event: None)

    with contextlib.suppress(ValueError):
        breaker.call(int, "x")

    # Other tests' breakers may come due meanwhile: look for this one's callbacks.
    assert [] == _scheduled_for(breaker)
    assert State.OPEN == breaker._machine.state


def _scheduled_for(owner: object) -> list[object]:
    """The callbacks the process's timer thread holds for ``owner``."""
    with TIMERS._cond:
        refs = [ref for _, _, ref in TIMERS._heap]
    return [
        cb for cb in (ref() for ref in refs) if getattr(cb, "__self__", None) is owner
    ]


def test_the_planes_breakers_move_to_half_open_on_time() -> None:
    """The plane opts in, so its status follows open -> half-open without a call."""
    with cbcontrol.connect("memory://", app="t", environ={}) as plane:
        breaker = plane.breaker(
            "payment", code={"max_failures": 1, "reset_timeout": 0.05}
        )
        with contextlib.suppress(ValueError):
            breaker.call(int, "x")

        moved = wait_until(lambda: breaker._machine.state is State.HALF_OPEN)

    assert moved
    assert "half_open" == plane.status().breakers["payment"].state


def _echo(x: int) -> int:
    """The protected call."""
    return x


def test_a_time_window_rolls_on_time_though_its_fast_path_reads_no_clock() -> None:
    """
    Calls after a bucket ends are counted in the next bucket, not the one that ended.

    On the real clock a time window's fast path reads no clock: the timer thread
    ends it when the bucket ends. Were that missing, the three later calls would be
    filed under the first bucket and leave the window with it.
    """
    breaker = CircuitBreaker(
        "rolling",
        BreakerConfig(
            window_type="time",
            window_size=2,  # two buckets of one second
            failure_rate_threshold=50,
            minimum_calls=10,
        ),
    )
    guarded = breaker(_echo)
    for _ in range(5):
        guarded(1)

    # The timer thread has ended the first bucket's fast path.
    assert wait_until(lambda: breaker._fast == GENERAL, timeout=WAIT_S)
    for _ in range(3):
        guarded(1)
    # Once the bucket of the three calls is the older of the two, the first is gone.
    second_ends = breaker._window.roll_at
    assert wait_until(lambda: breaker.clock() >= second_ends, timeout=WAIT_S)

    assert 3 == breaker.snapshot().window_calls
