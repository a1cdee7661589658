"""
A breaker tripping and recovering, in about a second of real time.

A flaky "payment" dependency fails for a while, then heals. The breaker opens after
three consecutive failures, rejects calls at once while open, lets one probe through
after the reset timeout, and closes when the probe succeeds.

Run it with ``make demo``.
"""

from __future__ import annotations

import time

from cbcontrol import BreakerConfig, CircuitBreaker, CircuitOpenError, StateChanged

healthy_after = time.monotonic() + 0.35


def charge(order_id: int) -> str:
    """The dependency: down for the first 350 ms, then healthy."""
    if time.monotonic() < healthy_after:
        msg = "payment service unavailable"
        raise ConnectionError(msg)
    return f"order {order_id} charged"


def main() -> None:
    """Call the flaky dependency every 50 ms and print what the breaker does."""
    payment = CircuitBreaker(
        "payment", BreakerConfig(max_failures=3, reset_timeout="400ms")
    )

    def show(event: StateChanged) -> None:
        print(f"  [breaker] {event.from_state} -> {event.to_state}: {event.reason}")

    payment.on_state_change(show)
    protected = payment(charge)

    for order_id in range(1, 21):
        try:
            print(f"call {order_id:2}: {protected(order_id)}")
        except CircuitOpenError as exc:
            print(f"call {order_id:2}: rejected at once ({exc})")
        except ConnectionError as exc:
            print(f"call {order_id:2}: failed ({exc})")
        time.sleep(0.05)

    snap = payment.snapshot()
    print(
        f"\nfinal state {snap.state}: {snap.successes} successes, "
        f"{snap.failures} failures, {snap.rejections} rejections, "
        f"opened {snap.times_opened} time(s)"
    )


if __name__ == "__main__":
    main()
