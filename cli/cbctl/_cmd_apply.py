"""``cbctl apply -f FILE``: make the store say what a config document says."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cbctl._document import Diff, change_towards, desired_of, diff, load
from cbctl._errors import CliError, boundary
from cbctl._options import (
    OutputOption,
    ReasonOption,
    TimeoutOption,
    WaitOption,
    parse_duration_option,
)
from cbctl._render import Output, console, describe_change, emit
from cbctl._session import open_store
from cbctl._views import Fleet
from cbctl._write import Outcome, Waiting, check_applied, report, settle, write

if TYPE_CHECKING:
    from cbcontrol import ControlStore
    from cbcontrol.config import ConfigDocument

__all__ = ["apply"]


def _show(changes: Diff) -> None:
    from rich.markup import escape

    out = console()
    if not changes:
        out.print("no changes")
        return
    for kind, table in (("preset", changes.presets), ("breaker", changes.breakers)):
        for name, fields in table.items():
            out.print(f"[bold]~ {kind} {escape(name)}[/]")
            for key, (old, new) in fields.items():
                out.print(f"    {escape(describe_change(key, old, new))}")


def _invalid(where: str, errors: tuple[str, ...]) -> CliError:
    return CliError(
        f"{where} is invalid, nothing was written:",
        details=tuple(f"{where}: {e}" for e in errors),
    )


@boundary
def apply(
    ctx: typer.Context,
    *,
    file: Annotated[
        str,
        typer.Option(
            "--filename",
            "-f",
            metavar="FILE",
            help="The YAML document to apply ('-' for stdin).",
        ),
    ],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show the diff, write nothing."),
    ] = False,
    reason: ReasonOption = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = "10s",
    output: OutputOption = "table",
) -> None:
    """
    Apply a config document: show the diff per breaker and field, then write it.

    Each breaker in the file gets exactly the config fields and preset the file
    gives it (fields it leaves out are removed); its [bold]override[/] and
    [bold]reset_generation[/] change only if the file names them, so an incident's
    trip survives. Presets are written before breakers. Breakers and presets absent
    from the file are left alone.
    """
    waiting = Waiting(wait, parse_duration_option("--timeout", timeout))
    with open_store(ctx) as store:
        loaded = load(file, store.presets())
        if loaded.errors or loaded.document is None:
            raise _invalid(loaded.where, loaded.errors)
        document = loaded.document
        fleet = Fleet(store)
        current = {n: dict(s.data) for n, s in fleet.specs.items()}
        changes = diff(document, store.store_presets(), current)
        if output == "table":
            _show(changes)
        outcomes = []
        if not dry_run:
            outcomes = _write_all(store, document, loaded.data, changes, reason)
            settle(store, outcomes, waiting)
    _report(changes, outcomes, output, waiting, dry_run=dry_run)


def _report(
    changes: Diff,
    outcomes: list[Outcome],
    output: Output,
    waiting: Waiting,
    *,
    dry_run: bool,
) -> None:
    if output != "table":
        results = [o.to_json() for o in outcomes]
        emit({"dry_run": dry_run, **changes.to_json(), "results": results}, output)
        check_applied(outcomes, waiting)
    elif dry_run:
        sys.stdout.write("dry run: nothing written\n")
    else:
        report(outcomes, output, waiting)


def _write_all(
    store: ControlStore,
    document: ConfigDocument,
    data: dict[str, Any],
    changes: Diff,
    reason: str | None,
) -> list[Outcome]:
    raw_presets = data.get("presets") or {}
    for name in changes.presets:
        store.put_preset(name, raw_presets.get(name) or {})
    raw_breakers = data.get("breakers") or {}
    return [
        write(
            store,
            name,
            change_towards(desired_of(document, name), raw_breakers.get(name) or {}),
            action="apply",
            reason=reason,
        )
        for name in changes.breakers
    ]
