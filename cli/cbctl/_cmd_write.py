"""The commands that change one breaker: set, unset, trip, bypass, reset."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cbctl._errors import UsageError, boundary
from cbctl._fields import fields
from cbctl._options import (
    ForOption,
    NameArgument,
    OutputOption,
    ReasonOption,
    TimeoutOption,
    WaitOption,
    parse_duration_option,
    with_field_flags,
    with_field_options,
)
from cbctl._render import Output
from cbctl._session import actor, open_store, require_known
from cbctl._views import Fleet, utc_now
from cbctl._write import (
    Waiting,
    parse_values,
    report,
    same_value,
    settle,
    usage_error,
    write,
)

if TYPE_CHECKING:
    from cbctl._write import Change

__all__ = ["bypass", "reset", "set_", "trip", "unset"]

_PANEL = "Write options"


def _waiting(wait: bool, timeout: str) -> Waiting:
    return Waiting(wait, parse_duration_option("--timeout", timeout))


def _change_one(
    ctx: typer.Context,
    name: str,
    change: Change,
    *,
    action: str,
    reason: str | None,
    waiting: Waiting,
    output: Output,
    must_exist: bool = True,
    flags_are_usage: bool = False,
) -> None:
    """Check the name, write, wait, report: the body of every single-breaker write."""
    with open_store(ctx) as store:
        if must_exist:
            fleet = Fleet(store, name)
            if name not in fleet.names():  # read every name only to suggest some
                require_known(name, store.view().names(), fleet.url)
        outcome = write(
            store,
            name,
            change,
            action=action,
            reason=reason,
            on_config_error=usage_error if flags_are_usage else None,
            timeout=waiting.timeout,
        )
        settle(store, [outcome], waiting)
    report([outcome], output, waiting)


@boundary
@with_field_options
def set_(
    ctx: typer.Context,
    *,
    name: NameArgument,
    preset: Annotated[
        str | None,
        typer.Option("--preset", help="Start from this preset.", show_default=False),
    ] = None,
    reason: ReasonOption = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = "10s",
    output: OutputOption = "table",
    **values: str | None,
) -> None:
    """
    Set config fields of a breaker on every instance, live (creates the breaker).

    Values are checked before anything is written. Durations take [bold]30s[/],
    [bold]1m30s[/], [bold]250ms[/]; [bold]none[/] clears an optional field.
    """
    given = parse_values(name, values, preset)
    if not given:
        msg = (
            "nothing to set: give at least one field option "
            "(e.g. --max-failures 3) or --preset"
        )
        raise UsageError(msg)
    waiting = _waiting(wait, timeout)

    def change(doc: dict[str, Any]) -> dict[str, Any]:
        new = dict(doc)
        for key, value in given.items():
            if key not in new or not same_value(key, new[key], value):
                new[key] = value
        return new

    _change_one(
        ctx,
        name,
        change,
        action="set",
        reason=reason,
        waiting=waiting,
        output=output,
        must_exist=False,
        flags_are_usage=True,
    )


@boundary
@with_field_flags
def unset(
    ctx: typer.Context,
    *,
    name: NameArgument,
    all_fields: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Remove every config field (the override stays).",
            show_default=False,
        ),
    ] = False,
    preset: Annotated[
        bool,
        typer.Option("--preset", help="Remove the preset choice.", show_default=False),
    ] = False,
    reason: ReasonOption = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = "10s",
    output: OutputOption = "table",
    **chosen: bool,
) -> None:
    """
    Remove live config fields of a breaker, so the lower layer shows through.

    What the preset, the environment or the default says applies again.
    """
    keys = list(fields()) if all_fields else [k for k, on in chosen.items() if on]
    if preset:
        keys.append("preset")
    if not keys:
        msg = (
            "nothing to unset: give field flags (e.g. --max-failures), "
            "--preset or --all"
        )
        raise UsageError(msg)
    waiting = _waiting(wait, timeout)

    def change(doc: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in doc.items() if k not in keys}

    _change_one(
        ctx,
        name,
        change,
        action="unset",
        reason=reason,
        waiting=waiting,
        output=output,
        flags_are_usage=True,
    )


def _override(mode: str, reason: str | None, for_: str | None) -> dict[str, Any]:
    override: dict[str, Any] = {"mode": mode, "actor": actor()}
    if reason is not None:
        override["reason"] = reason
    if for_ is not None:
        until = utc_now() + timedelta(seconds=parse_duration_option("--for", for_))
        text = until.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        override["until"] = text
    return override


def _force(
    ctx: typer.Context,
    name: str,
    mode: str,
    *,
    reason: str | None,
    for_: str | None,
    waiting: Waiting,
    output: Output,
) -> None:
    override = _override(mode, reason, for_)

    def change(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "override": override}

    action = "trip" if mode == "forced_open" else "bypass"
    _change_one(
        ctx, name, change, action=action, reason=reason, waiting=waiting, output=output
    )


@boundary
def trip(
    ctx: typer.Context,
    *,
    name: NameArgument,
    reason: ReasonOption = None,
    for_: ForOption = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = "10s",
    output: OutputOption = "table",
) -> None:
    """Force a breaker open on every instance: every call is rejected until reset."""
    waiting = _waiting(wait, timeout)
    _force(
        ctx,
        name,
        "forced_open",
        reason=reason,
        for_=for_,
        waiting=waiting,
        output=output,
    )


@boundary
def bypass(
    ctx: typer.Context,
    *,
    name: NameArgument,
    reason: ReasonOption = None,
    for_: ForOption = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = "10s",
    output: OutputOption = "table",
) -> None:
    """Force a breaker closed on every instance: every call is admitted until reset."""
    waiting = _waiting(wait, timeout)
    _force(
        ctx,
        name,
        "forced_closed",
        reason=reason,
        for_=for_,
        waiting=waiting,
        output=output,
    )


@boundary
def reset(
    ctx: typer.Context,
    *,
    name: NameArgument,
    reason: ReasonOption = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = "10s",
    output: OutputOption = "table",
) -> None:
    """
    Clear the override and reset state and counters on every instance, once.

    Bumps the spec's [bold]reset_generation[/]: each instance resets its breaker to
    closed with empty counters and window when it sees the new value.
    """
    waiting = _waiting(wait, timeout)

    def change(doc: dict[str, Any]) -> dict[str, Any]:
        new = {k: v for k, v in doc.items() if k != "override"}
        previous = doc.get("reset_generation")
        new["reset_generation"] = (previous if isinstance(previous, int) else 0) + 1
        return new

    _change_one(
        ctx,
        name,
        change,
        action="reset",
        reason=reason,
        waiting=waiting,
        output=output,
    )
