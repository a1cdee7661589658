"""
A tiny "checkout" service whose ``payment`` breaker is operated live by ``cbctl``.

It connects to the store named by ``CBCONTROL_STORE`` (``file://...`` or
``etcd://...``), creates the ``payment`` breaker, prints one ``ready {...}`` line and
then answers a line protocol on stdin, one JSON line on stdout per command:

``fail N``
    make N calls whose dependency raises ``ConnectionError``;
``ok N``
    make N calls whose dependency succeeds;
``status``
    make no call, just report;
``quit`` (or end of input)
    close the control plane and exit.

Each answer reads ``{"ok": k, "failed": f, "rejected": r, "state": "open",
"max_failures": 3, "generation": 7, "transitions": ["closed -> open"],
"snapshot": {...}}``: the outcomes of the calls just made, the breaker's state, the
effective ``max_failures``, the spec generation applied, the state changes since the
previous answer and the breaker's full snapshot. The end-to-end tests
(``tests/e2e/``) drive several of these at once.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import cbcontrol
from cbcontrol import CircuitOpenError

if TYPE_CHECKING:
    from cbcontrol import CircuitBreaker, StateChanged


def _payment_down() -> None:
    """The dependency when it is failing."""
    msg = "payment service unavailable"
    raise ConnectionError(msg)


def _payment_up() -> str:
    """The dependency when it is healthy."""
    return "charged"


def _calls(breaker: CircuitBreaker, count: int, *, healthy: bool) -> dict[str, int]:
    """Make ``count`` protected calls; count what happened to them."""
    outcomes = {"ok": 0, "failed": 0, "rejected": 0}
    dependency = _payment_up if healthy else _payment_down
    for _ in range(count):
        try:
            breaker.call(dependency)
        except CircuitOpenError:
            outcomes["rejected"] += 1
        except ConnectionError:
            outcomes["failed"] += 1
        else:
            outcomes["ok"] += 1
    return outcomes


def _jsonable(value: Any) -> Any:
    """Snapshot values as JSON: states as their names, mappings as objects."""
    if isinstance(value, cbcontrol.State):
        return value.value
    if isinstance(value, Mapping):  # transitions are keyed by (from, to) pairs
        return {
            "->".join(k) if isinstance(k, tuple) else k: v for k, v in value.items()
        }
    return value


class _Transitions:
    """State changes of the breaker, collected between two answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[str] = []

    def __call__(self, event: StateChanged) -> None:
        with self._lock:
            self._seen.append(f"{event.from_state} -> {event.to_state}")

    def drain(self) -> list[str]:
        with self._lock:
            seen, self._seen = self._seen, []
        return seen


def _answer(
    plane: cbcontrol.ControlPlane,
    breaker: CircuitBreaker,
    transitions: _Transitions,
    outcomes: dict[str, int],
    *,
    calls: bool,
) -> str:
    snap = breaker.snapshot()
    return json.dumps(
        {
            **outcomes,
            "state": snap.state.value,
            "max_failures": breaker.config.max_failures,
            "generation": plane.observed_generation(breaker.name),
            # A status poll leaves them queued: the next call's answer reports them,
            # whether a call or the timer thread (at an override's expiry) made them.
            "transitions": transitions.drain() if calls else [],
            "snapshot": {
                f.name: _jsonable(getattr(snap, f.name))
                for f in dataclasses.fields(snap)
            },
        },
        separators=(",", ":"),
    )


def main() -> int:
    """Connect, create the breaker, and answer commands until quit or end of input."""
    plane = cbcontrol.connect(app="checkout")
    try:
        payment = plane.breaker("payment")
        transitions = _Transitions()
        payment.on_state_change(transitions)
        print("ready " + json.dumps({"instance_id": plane.instance_id}), flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            command, args = words[0], words[1:]
            if command == "quit":
                break
            if command in {"fail", "ok"} and len(args) == 1 and args[0].isdigit():
                outcomes = _calls(payment, int(args[0]), healthy=command == "ok")
            elif command == "status" and not args:
                outcomes = {"ok": 0, "failed": 0, "rejected": 0}
            else:
                error = {"error": f"unknown command: {line.strip()!r}"}
                print(json.dumps(error), flush=True)
                continue
            answer = _answer(
                plane, payment, transitions, outcomes, calls=command != "status"
            )
            print(answer, flush=True)
    finally:
        plane.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
