"""Commands that read: list, get, history, presets, explain."""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from cbctl._errors import UsageError, boundary, flag_error
from cbctl._options import (
    NameArgument,
    OutputOption,
    SelectorOption,
    WatchOption,
    invalid_name,
    output_option,
)
from cbctl._output import TABLE, Output, Terminal, emit
from cbctl._session import open_operator

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

    from cbcontrol.operator import BreakerView, FleetView, Operator


def _shown() -> ModuleType:
    """cbctl._render, imported once a command shows something (not for --help)."""
    from cbctl import _render

    return _render


_T = TypeVar("_T")

__all__ = ["explain", "get", "history", "list_", "presets"]


def _selected(read: Callable[[], _T]) -> _T:
    """``read()``, with a malformed selector as a usage error."""
    from cbcontrol import ConfigError

    try:
        return read()
    except ConfigError as exc:
        if exc.field == "selector":
            raise flag_error(exc) from None
        raise


def _show_fleet(fleet: FleetView, output: Output) -> None:
    emit(
        output,
        data=fleet.to_json,
        lines=lambda t: _shown().fleet_lines(fleet, t, wide=output.wide),
        names=lambda: [f"breaker/{b.name}" for b in fleet.breakers],
    )


def _follow(
    op: Operator,
    selector: str | None,
    show: Callable[[FleetView], None],
    key: Callable[[FleetView], object],
) -> None:
    """``-w``: show the view again whenever what it shows changes (until Ctrl-C)."""
    stop = threading.Event()
    last: object = None
    terminal = Terminal.detect()
    frames = op.watch(stop, selector=selector)
    try:
        first = _selected(lambda: next(frames, None))  # parses the selector
        for frame in frames if first is None else itertools.chain([first], frames):
            now = key(frame.view)
            if now == last:
                continue
            if last is not None and terminal.width is not None:
                sys.stdout.write("\x1b[H\x1b[2J")  # redraw in place on a terminal
            elif last is not None:
                sys.stdout.write("\n")
            last = now
            show(frame.view)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            frames.close()


@boundary
def list_(
    ctx: typer.Context,
    *,
    selector: SelectorOption = None,
    watch: WatchOption = False,
    output: OutputOption = TABLE,
) -> None:
    """
    List the breakers across the fleet: states, override, applied, key config.

    One row per breaker with a spec or on a live instance: the states of its
    instances ([bold]closed:2,open:1[/]), the override, how many instances applied
    the spec ([bold]3/3[/], or [bold]invalid[/]), max_failures, reset_timeout and
    failure_rate_threshold as the instances run them ([bold]3*[/] when they
    differ), the worst failure rate, and footnotes for errors and differences. With
    [bold]-l[/], only breakers on instances whose labels match, counted over those.
    """
    with open_operator(ctx) as op:
        if watch:  # the watch's first view is the first read
            _follow(
                op, selector, lambda f: _show_fleet(f, output), lambda f: f.to_json()
            )
            return
        fleet = _selected(lambda: op.fleet(selector=selector))
    _show_fleet(fleet, output)


@boundary
def get(
    ctx: typer.Context,
    *,
    name: NameArgument,
    selector: SelectorOption = None,
    watch: WatchOption = False,
    output: OutputOption = TABLE,
) -> None:
    """
    Show a breaker: spec, effective config with sources, scopes, each instance.

    The effective config is what the oldest live instance runs, each field with
    its source (default, preset, env, file, etcd, and the scope that set it); a
    field that differs between instances is marked and explained in a footnote.
    Without a live instance, what the store alone gives (default < preset < spec).
    """
    with open_operator(ctx) as op:
        view = _selected(lambda: op.breaker(name, selector=selector))

        def show(found: BreakerView) -> None:
            emit(
                output,
                data=found.to_json,
                lines=lambda t: _shown().get_lines(found, t, wide=output.wide),
                names=lambda: [f"breaker/{name}"],
            )

        if watch:
            _follow(
                op,
                selector,
                lambda f: show(f.breaker(name) or view),
                lambda f: b.to_json() if (b := f.breaker(name)) else None,
            )
            return
    show(view)


@boundary
def history(
    ctx: typer.Context,
    *,
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME]",
            help="The breaker (all breakers if left out).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, help="Show at most this many changes."),
    ] = 50,
    output: OutputOption = TABLE,
) -> None:
    """Show who changed a breaker, when, why and what, oldest first."""
    why = None if name is None else invalid_name(name)
    if why is not None:
        raise UsageError(why)
    with open_operator(ctx) as op:
        records = op.history(name, limit=limit)
    emit(
        output,
        data=lambda: [r.to_json() for r in records],
        lines=lambda t: _shown().history_lines(records, t),
        names=lambda: [f"breaker/{r.name}" for r in records],
    )


@boundary
def presets(
    ctx: typer.Context,
    *,
    output: OutputOption = TABLE,
) -> None:
    """List the presets and their values: built-in ones, extended by the store's."""
    with open_operator(ctx) as op:
        found = op.presets()
    emit(
        output,
        data=lambda: {p.name: p.to_json() for p in found},
        lines=lambda t: _shown().presets_lines(found, t),
        names=lambda: [f"preset/{p.name}" for p in found],
    )


@boundary
def explain(
    ctx: typer.Context,
    *,
    field: Annotated[
        str,
        typer.Argument(
            metavar="FIELD",
            help="A config field: max_failures, or --max-failures, or max-failures.",
            show_default=False,
        ),
    ],
    output: Annotated[Output, output_option("table", "json", "yaml")] = TABLE,
) -> None:
    """
    Explain a config field: its type, default, unit, rule and help, and which
    presets set it (built-in ones and the store's).
    """
    from cbcontrol import ConfigError

    with open_operator(ctx) as op:
        try:
            found = op.explain(field.removeprefix("--"))
        except ConfigError as exc:
            msg = f"unknown field {field}: {exc.rule}"
            raise UsageError(msg) from None
    emit(output, data=found.to_json, lines=lambda t: _shown().explain_lines(found, t))
