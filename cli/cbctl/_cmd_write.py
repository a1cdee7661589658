"""The commands that change one breaker: set, unset, trip, bypass, reset, promote."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cbctl._errors import NotAppliedError, UsageError, boundary, flag_error
from cbctl._options import (
    CreateOption,
    DryRunOption,
    ForOption,
    NameArgument,
    OutputOption,
    ReasonOption,
    SelectorOption,
    TimeoutOption,
    WaitOption,
    complete_presets,
    duration_option,
    with_field_flags,
    with_field_options,
)
from cbctl._output import TABLE, Output, Terminal, emit
from cbctl._session import open_operator

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    from cbcontrol import Ack
    from cbcontrol.operator import ChangeResult, Operator


def _shown() -> ModuleType:
    """cbctl._render, imported once a command shows something (not for --help)."""
    from cbctl import _render

    return _render


__all__ = [
    "bypass",
    "check_applied",
    "promote",
    "report",
    "reset",
    "set_",
    "settle",
    "trip",
    "unset",
]


def _progress() -> Callable[[ChangeResult, Ack], object] | None:
    """A status line on stderr while waiting, when stderr is a terminal."""
    if not Terminal.detect(sys.stderr).width:
        return None

    def show(result: ChangeResult, ack: Ack) -> None:
        sys.stderr.write(
            f"\r\x1b[Kwaiting for {result.name} generation {result.generation}: "
            f"{ack.applied}/{ack.instances}"
        )
        sys.stderr.flush()

    return show


def settle(
    op: Operator, results: list[ChangeResult], *, wait: bool, timeout: float
) -> list[ChangeResult]:
    """Wait for the writes (one deadline for all), or count the instances once."""
    if not wait:
        return [op.count(r) for r in results]
    progress = _progress()
    try:
        return op.wait(results, timeout, progress)
    finally:
        if progress is not None:
            sys.stderr.write("\r\x1b[K")


def report(
    results: list[ChangeResult],
    output: Output,
    timeout: float,
    extra: Callable[[ChangeResult], list[str]] | None = None,
) -> None:
    """
    Print what was written and applied; exit 4 when an instance did not apply it.

    Raises:
        NotAppliedError: Some instance concerned did not apply its change in time.
    """

    def lines(_: Terminal) -> list[str]:
        found = []
        for result in results:
            found += _shown().result_lines(result)
            if extra is not None:
                found += extra(result)
        return found

    data = [r.to_json() for r in results]
    emit(
        output,
        data=lambda: data[0] if len(data) == 1 else data,
        lines=lines,
        names=lambda: [f"breaker/{r.name}" for r in results],
    )
    check_applied(results, timeout)


def check_applied(results: list[ChangeResult], timeout: float) -> None:
    """
    Exit 4 when some instance concerned did not apply a write within the timeout.

    Raises:
        NotAppliedError: Naming each breaker, its generation and the pending ids.
    """
    from cbcontrol.config import format_duration

    parts = []
    for result in results:
        ack = result.ack
        if not result.waited or ack is None or not ack.pending:
            continue
        of = _shown().plural(ack.instances, "instance")
        parts.append(
            f"{result.name} generation {result.generation} not applied by "
            f"{len(ack.pending)}/{of} within {format_duration(timeout)}: "
            f"{', '.join(ack.pending)}"
        )
    if parts:
        raise NotAppliedError("; ".join(parts))


def _run(
    ctx: typer.Context,
    write: Callable[[Operator], ChangeResult],
    *,
    wait: bool,
    timeout: str,
    output: Output,
    dry_run: bool,
    create: bool = False,
    extra: Callable[[Operator, ChangeResult], list[str]] | None = None,
) -> None:
    """Open, write, wait, report: the body of every single-breaker write."""
    from cbcontrol import ConfigError

    seconds = duration_option("--timeout", timeout)
    with open_operator(ctx, create=create) as op:
        try:
            result = write(op)
        except ConfigError as exc:
            raise flag_error(exc) from None
        [result] = settle(op, [result], wait=wait and not dry_run, timeout=seconds)
        more = None if extra is None else (lambda r: extra(op, r))
        report([result], output, seconds, more)


@boundary
@with_field_options
def set_(
    ctx: typer.Context,
    *,
    name: NameArgument,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="Start from this preset.",
            show_default=False,
            autocompletion=complete_presets,
        ),
    ] = None,
    selector: SelectorOption = None,
    reason: ReasonOption = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = "10s",
    dry_run: DryRunOption = False,
    create: CreateOption = False,
    output: OutputOption = TABLE,
    **values: str | None,
) -> None:
    """
    Set config fields of a breaker (creating it), live: on every instance, or with
    [bold]-l[/] on those whose labels match (a scope, above the breaker's own fields).

    Values are checked before anything is written. Durations take [bold]30s[/],
    [bold]1m30s[/], [bold]250ms[/]; rates [bold]50%[/] or [bold]50[/]; [bold]none[/]
    clears a field that may be none.
    """
    from cbcontrol import ConfigError
    from cbcontrol.config import parse_text

    given = {}
    for key, text in values.items():
        if text is not None:
            try:
                given[key] = parse_text(key, text)
            except ConfigError as exc:
                raise flag_error(exc) from None
    if not given and preset is None:
        msg = "nothing to set: give a field option (e.g. --max-failures 3) or --preset"
        raise UsageError(msg)
    _run(
        ctx,
        lambda op: op.set(
            name,
            given,
            preset=preset,
            selector=selector,
            reason=reason,
            dry_run=dry_run,
            timeout=duration_option("--timeout", timeout),
        ),
        wait=wait,
        timeout=timeout,
        output=output,
        dry_run=dry_run,
        create=create,
    )


def _shows_through(op: Operator, result: ChangeResult) -> list[str]:
    """After an unset: the value that now shows through, and where it comes from."""
    if result.dry_run or not result.changed:
        return []
    view = op.breaker(result.name)
    lines = []
    for key in result.changes:
        field = key.partition("[")[0]
        found = view.effective.get(field)
        if found is not None:
            lines.append(
                f"{field} is now {_shown().value(field, found.value)} "
                f"(from {found.source})"
            )
    return lines


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
    selector: SelectorOption = None,
    reason: ReasonOption = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = "10s",
    dry_run: DryRunOption = False,
    output: OutputOption = TABLE,
    **chosen: bool,
) -> None:
    """
    Remove live config fields of a breaker, so the layer below shows through (the
    preset, the environment, the default); says what value now applies.

    With [bold]-l[/], remove them from that scope: its instances follow the
    breaker's own fields again, and an empty scope is dropped (a canary rolled back).
    """
    fields = [k for k, on in chosen.items() if on]
    if not (all_fields or preset or fields):
        msg = "nothing to unset: give field flags (--max-failures), --preset or --all"
        raise UsageError(msg)
    _run(
        ctx,
        lambda op: op.unset(
            name,
            fields,
            preset=preset,
            all_fields=all_fields,
            selector=selector,
            reason=reason,
            dry_run=dry_run,
            timeout=duration_option("--timeout", timeout),
        ),
        wait=wait,
        timeout=timeout,
        output=output,
        dry_run=dry_run,
        extra=_shows_through,
    )


def _force(
    ctx: typer.Context,
    name: str,
    action: str,
    *,
    reason: str | None,
    for_: str | None,
    selector: str | None,
    wait: bool,
    timeout: str,
    dry_run: bool,
    output: Output,
) -> None:
    duration = None if for_ is None else duration_option("--for", for_)
    _run(
        ctx,
        lambda op: getattr(op, action)(
            name,
            reason=reason,
            duration=duration,
            selector=selector,
            dry_run=dry_run,
            timeout=duration_option("--timeout", timeout),
        ),
        wait=wait,
        timeout=timeout,
        output=output,
        dry_run=dry_run,
    )


@boundary
def trip(
    ctx: typer.Context,
    *,
    name: NameArgument,
    reason: ReasonOption = None,
    for_: ForOption = None,
    selector: SelectorOption = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = "10s",
    dry_run: DryRunOption = False,
    output: OutputOption = TABLE,
) -> None:
    """
    Force a breaker open: every call is rejected until reset (or [bold]--for[/] a
    while); on every instance, or with [bold]-l[/] on those whose labels match.
    """
    _force(
        ctx,
        name,
        "trip",
        reason=reason,
        for_=for_,
        selector=selector,
        wait=wait,
        timeout=timeout,
        dry_run=dry_run,
        output=output,
    )


@boundary
def bypass(
    ctx: typer.Context,
    *,
    name: NameArgument,
    reason: ReasonOption = None,
    for_: ForOption = None,
    selector: SelectorOption = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = "10s",
    dry_run: DryRunOption = False,
    output: OutputOption = TABLE,
) -> None:
    """
    Force a breaker closed: every call is admitted until reset (or [bold]--for[/] a
    while); on every instance, or with [bold]-l[/] on those whose labels match.
    """
    _force(
        ctx,
        name,
        "bypass",
        reason=reason,
        for_=for_,
        selector=selector,
        wait=wait,
        timeout=timeout,
        dry_run=dry_run,
        output=output,
    )


@boundary
def reset(
    ctx: typer.Context,
    *,
    name: NameArgument,
    selector: SelectorOption = None,
    reason: ReasonOption = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = "10s",
    dry_run: DryRunOption = False,
    output: OutputOption = TABLE,
) -> None:
    """
    Lift the override and reset state and counters, once: on every instance (every
    override, scoped ones too), or with [bold]-l[/] that scope's override and its
    instances.
    """
    _run(
        ctx,
        lambda op: op.reset(
            name,
            selector=selector,
            reason=reason,
            dry_run=dry_run,
            timeout=duration_option("--timeout", timeout),
        ),
        wait=wait,
        timeout=timeout,
        output=output,
        dry_run=dry_run,
    )


@boundary
def promote(
    ctx: typer.Context,
    *,
    name: NameArgument,
    selector: Annotated[
        str,
        typer.Option(
            "--selector",
            "-l",
            metavar="SELECTOR",
            help="The scope to promote (as it was written with set -l).",
            show_default=False,
        ),
    ],
    reason: ReasonOption = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = "10s",
    dry_run: DryRunOption = False,
    output: OutputOption = TABLE,
) -> None:
    """
    Make a scope's config fields the breaker's own, on every instance, and drop the
    scope: the last step of a canary ([bold]set -l[/], watch, then promote).
    """
    _run(
        ctx,
        lambda op: op.promote(
            name,
            selector,
            reason=reason,
            dry_run=dry_run,
            timeout=duration_option("--timeout", timeout),
        ),
        wait=wait,
        timeout=timeout,
        output=output,
        dry_run=dry_run,
    )
