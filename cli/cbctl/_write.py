"""
Writes: change one breaker's spec, then wait until the fleet applied it.

Every write goes through :meth:`cbcontrol.ControlStore.update` (compare-and-swap,
history, validation before anything is written, retries while the store is briefly
unavailable, within ``--timeout``) and, with ``--wait``, through
:meth:`~cbcontrol.ControlStore.wait_applied`, which counts an instance once it
reports the exact document written (its digest). ``-o json`` prints
``{"name", "generation", "changed", "applied", "instances", "elapsed_ms", "pending",
"waited"}``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cbctl._errors import NotAppliedError, UsageError
from cbctl._fields import coerce, fields, flag, normalize
from cbctl._render import Output, console, describe_change, emit
from cbctl._session import actor

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from cbcontrol import Ack, ControlStore, WriteResult
    from cbcontrol.exceptions import ConfigError

    Change = Callable[[dict[str, Any]], dict[str, Any]]
    """Gets a copy of the stored spec (``{}`` if none), returns the new one."""

__all__ = [
    "Outcome",
    "Waiting",
    "check_applied",
    "parse_values",
    "report",
    "same_value",
    "settle",
    "usage_error",
    "write",
]


@dataclass(frozen=True, slots=True)
class Waiting:
    """How a write waits for the fleet (``--wait``, ``--timeout``)."""

    wait: bool
    timeout: float


@dataclass(slots=True)
class Outcome:
    """One written (or unchanged) breaker and how far the fleet applied it."""

    name: str
    generation: int
    changed: bool
    changes: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    applied: int = 0
    instances: int = 0
    elapsed_s: float = 0.0
    pending: tuple[str, ...] = ()
    waited: bool = False
    digest: str | None = None
    started: float = (
        0.0  # time.monotonic() when the write began: elapsed counts from it
    )

    def to_json(self) -> dict[str, Any]:
        """The ``-o json`` object of a write."""
        return {
            "name": self.name,
            "generation": self.generation,
            "changed": self.changed,
            "applied": self.applied,
            "instances": self.instances,
            "elapsed_ms": round(self.elapsed_s * 1000, 1),
            "pending": list(self.pending),
            "waited": self.waited,
        }


def parse_values(
    name: str, given: Mapping[str, str | None], preset: str | None = None
) -> dict[str, object]:
    """
    The config values of ``set``'s options, validated by the library before any write.

    Raises:
        UsageError: A value is malformed or breaks a rule, naming the flag.
    """
    from cbcontrol import ConfigError
    from cbcontrol.config import ConfigBuilder

    specs = fields()
    values: dict[str, object] = {}
    for key, text in given.items():
        if text is None:
            continue
        try:
            values[key] = coerce(specs[key], text)
        except ValueError as exc:
            msg = f"invalid {flag(key)} {text!r}: {exc}"
            raise UsageError(msg) from None
    if preset is not None:
        values["preset"] = preset
    try:
        ConfigBuilder(name).with_values("etcd", **values)
    except ConfigError as exc:
        raise usage_error(exc) from None
    return values


def usage_error(exc: ConfigError) -> UsageError:
    """A library rejection of flag values, naming the flag, the value and the rule."""
    if exc.field is not None and exc.field.split(".")[0] in (*fields(), "preset"):
        return UsageError(f"invalid {flag(exc.field)} {exc.value!r}: {exc.rule}")
    return UsageError(str(exc))


def same_value(key: str, old: object, new: object) -> bool:
    """Whether two stored values mean the same (``30s`` and ``30``)."""
    return normalize({key: old}) == normalize({key: new})


def _progress(name: str, generation: int) -> Any:
    """A status line on stderr while waiting, when stderr is a terminal."""
    err = console(stderr=True)
    if not err.is_terminal:
        return None
    return err.status(f"waiting for the fleet to apply {name} generation {generation}")


def _wait(store: ControlStore, outcome: Outcome, deadline: float) -> None:
    status = _progress(outcome.name, outcome.generation)

    def progress(ack: Ack) -> None:
        if status is not None:
            status.update(
                f"waiting for the fleet to apply {outcome.name} generation "
                f"{outcome.generation}: {ack.applied}/{ack.instances}"
            )

    if status is not None:
        status.start()
    waiting_since = time.monotonic()
    try:
        ack = store.wait_applied(
            outcome.name,
            outcome.generation,
            max(0.0, deadline - time.monotonic()),
            progress=progress,
            digest=outcome.digest,
        )
    finally:
        if status is not None:
            status.stop()
    outcome.applied, outcome.instances = ack.applied, ack.instances
    # From the start of the write, not of the wait: what an operator waited for.
    since = outcome.started or waiting_since
    outcome.elapsed_s = waiting_since - since + ack.elapsed_s
    outcome.pending = ack.pending
    outcome.waited = True


def _count(store: ControlStore, outcome: Outcome) -> None:
    """How many live instances applied it right now (no waiting)."""
    having = [
        (s["instance_id"], s["breakers"][outcome.name])
        for s in store.instance_documents(outcome.name)
        if outcome.name in s["breakers"]
    ]
    outcome.pending = tuple(
        instance
        for instance, breaker in having
        if breaker["observed_generation"] <= outcome.generation
        and breaker["observed_digest"] != outcome.digest
    )
    outcome.instances = len(having)
    outcome.applied = outcome.instances - len(outcome.pending)


def write(
    store: ControlStore,
    name: str,
    change: Change,
    *,
    action: str,
    reason: str | None,
    on_config_error: Callable[[ConfigError], Exception] | None = None,
    timeout: float = 10.0,
) -> Outcome:
    """
    Change one spec (compare-and-swap, history) and say what changed.

    Raises:
        UsageError: The change is invalid and ``on_config_error`` maps it so.
        ConfigError: The change is invalid.
    """
    from cbcontrol import ConfigError

    started = time.monotonic()
    try:
        result: WriteResult = store.update(
            name, change, actor=actor(), reason=reason, action=action, timeout=timeout
        )
    except ConfigError as exc:
        if on_config_error is None:
            raise
        raise on_config_error(exc) from None
    return Outcome(
        result.name,
        result.generation,
        result.changed,
        result.changes,
        started=started,
        digest=result.digest,
    )


def settle(store: ControlStore, outcomes: list[Outcome], waiting: Waiting) -> None:
    """Wait for every changed breaker (one deadline for all), or count without it."""
    deadline = time.monotonic() + waiting.timeout
    for outcome in outcomes:
        if outcome.changed and waiting.wait:
            _wait(store, outcome, deadline)
        else:
            _count(store, outcome)


def _lines(outcome: Outcome) -> list[str]:
    if not outcome.changed:
        return [f"{outcome.name} unchanged (generation {outcome.generation})"]
    changes = ", ".join(
        describe_change(k, o, n) for k, (o, n) in outcome.changes.items()
    )
    lines = [f"{outcome.name}: generation {outcome.generation} ({changes})"]
    if not outcome.waited:
        return lines
    if outcome.instances == 0:
        lines.append(f"no live instance has breaker {outcome.name} yet")
    else:
        lines.append(
            f"applied on {outcome.applied}/{outcome.instances} instances in "
            f"{outcome.elapsed_s * 1000:.0f} ms"
        )
    return lines


def report(outcomes: list[Outcome], output: Output, waiting: Waiting) -> None:
    """
    Print what was written and applied; exit 4 when some instance did not apply it.

    Raises:
        NotAppliedError: Some live instance did not apply its change in time.
    """
    if output == "table":
        for outcome in outcomes:
            for line in _lines(outcome):
                sys.stdout.write(line + "\n")
        sys.stdout.flush()
    else:
        data = [o.to_json() for o in outcomes]
        emit(data[0] if len(data) == 1 else data, output)
    check_applied(outcomes, waiting)


def check_applied(outcomes: list[Outcome], waiting: Waiting) -> None:
    """
    Exit 4 when some live instance did not apply a write within the wait timeout.

    Raises:
        NotAppliedError: Naming each breaker, its generation and the pending ids.
    """
    late = [o for o in outcomes if o.waited and o.pending]
    if not late:
        return
    from cbcontrol.config import format_duration

    parts = [
        f"{o.name} generation {o.generation} not applied by "
        f"{len(o.pending)}/{o.instances} instances within "
        f"{format_duration(waiting.timeout)}: {', '.join(o.pending)}"
        for o in late
    ]
    raise NotAppliedError("; ".join(parts))
