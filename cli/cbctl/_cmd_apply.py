"""Config documents: apply, diff (GitOps drift), export, validate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cbctl._cmd_write import check_applied, report, settle
from cbctl._errors import CliError, boundary, exits
from cbctl._options import (
    CreateOption,
    DryRunOption,
    OutputOption,
    ReasonOption,
    TimeoutOption,
    WaitOption,
    duration_option,
    output_option,
)
from cbctl._output import TABLE, YAML, Output, emit, to_json, to_yaml
from cbctl._session import open_operator

if TYPE_CHECKING:
    from types import ModuleType

    from cbcontrol.operator import CheckedDocument, Operator, Plan


def _shown() -> ModuleType:
    """cbctl._render, imported once a command shows something (not for --help)."""
    from cbctl import _render

    return _render


__all__ = ["apply", "diff", "export", "validate"]

FileOption = Annotated[
    str,
    typer.Option(
        "--filename",
        "-f",
        metavar="FILE",
        help="The YAML document ('-' for stdin).",
        show_default=False,
    ),
]


def _read(path: str) -> tuple[str, bytes]:
    """The bytes of a document, never more than one past the limit (refused then)."""
    from cbcontrol.config import MAX_FILE_BYTES

    if path == "-":
        return "<stdin>", sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    try:
        with Path(path).open("rb") as file:
            return path, file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror or exc}"
        raise CliError(msg) from None


def _checked(op: Operator, path: str) -> CheckedDocument:
    """The document, checked; every error at once (exit 1) if it is invalid."""
    where, raw = _read(path)
    checked = op.check_document(raw, where)
    if not checked.valid:
        msg = f"{where} is invalid, nothing was written:"
        raise CliError(msg, details=tuple(f"{where}: {e}" for e in checked.errors))
    return checked


def _show_plan(plan: Plan, output: Output, results: list[object] | None = None) -> None:
    emit(
        output,
        data=lambda: {**plan.to_json(), "results": results or []},
        lines=lambda _: _shown().plan_lines(plan),
        names=lambda: [f"{i.kind}/{i.name}" for i in plan.items],
    )


@boundary
def apply(
    ctx: typer.Context,
    *,
    file: FileOption,
    dry_run: DryRunOption = False,
    reason: ReasonOption = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = "10s",
    create: CreateOption = False,
    output: OutputOption = TABLE,
) -> None:
    """
    Apply a config document: show the diff per breaker and field, then write it.

    Each breaker in the file gets exactly the config fields, preset and scopes the
    file gives it (what it leaves out is removed). Run-time state is never taken
    back: an [bold]override[/] changes only if the file names one (a trip survives),
    [bold]reset_generation[/] is never lowered (an old export resets nothing).
    Presets are written before breakers; what the file does not name is left alone.
    """
    seconds = duration_option("--timeout", timeout)
    with open_operator(ctx, create=create) as op:
        plan = op.plan(_checked(op, file))
        if output.text:
            _show_plan(plan, output)
            for note in plan.notes:
                sys.stdout.write(f"note: {note}\n")
        if dry_run:
            if output.text:
                sys.stdout.write("dry run: nothing written\n")
            else:
                _show_plan(plan, output)
            return
        results = settle(op, op.apply(plan, reason=reason), wait=wait, timeout=seconds)
    if output.text:
        report(results, output, seconds)
    else:
        _show_plan(plan, output, [r.to_json() for r in results])
        check_applied(results, seconds)


@exits(lambda code: max(code, 2))
def diff(
    ctx: typer.Context,
    *,
    file: FileOption,
    output: Annotated[Output, output_option("table", "json", "yaml")] = TABLE,
) -> None:
    """
    Show what applying a document would change; exit 1 when anything would.

    As [bold]kubectl diff[/]: exit 0 when the store already says what the file says,
    1 when it differs (drift, for CI), 2 or more on an error.
    """
    with open_operator(ctx) as op:
        plan = op.plan(_checked(op, file))
    _show_plan(plan, output)
    if plan:
        raise typer.Exit(1)


@boundary
def export(
    ctx: typer.Context,
    *,
    output: Annotated[Output, output_option("yaml", "json", default="yaml")] = YAML,
) -> None:
    """
    Print the store's configuration as a document: presets and breakers.

    Run-time state is left out (overrides, reset markers, cbctl's metadata): the
    output is the configuration, valid for [bold]cbctl apply -f[/] and as a file
    store ([bold]cbctl export > cbcontrol.yaml[/]), and applying it later never trips
    or resets anything.
    """
    with open_operator(ctx) as op:
        document, skipped = op.export()
        url = op.url
    for warning in skipped:
        sys.stderr.write(f"warning: {warning}\n")
    if output.format == "json":
        sys.stdout.write(to_json(document))
    else:
        sys.stdout.write(to_yaml(document, comment=f"cbctl export of {url}"))


@boundary
def validate(
    ctx: typer.Context,
    *,
    file: Annotated[
        str,
        typer.Argument(metavar="FILE", help="The YAML document ('-' for stdin)."),
    ],
    output: Annotated[Output, output_option("table", "json", "yaml")] = TABLE,
) -> None:
    """
    Check a config document: every error, with its path; exit 1 if it is invalid.

    Checks the schema and that each breaker (and each of its scopes) resolves over
    the built-in presets, the store's (when a store is given) and the document's.
    """
    from cbcontrol.operator import check_document

    where, raw = _read(file)
    try:
        with open_operator(ctx) as op:
            checked = op.check_document(raw, where)
    except CliError:
        checked = check_document(raw, where)  # no store: the built-in presets
    except Exception:  # noqa: BLE001 - an unreachable store: check without it
        checked = check_document(raw, where)
    presets, breakers = checked.counts()
    emit(
        output,
        data=lambda: {
            "file": checked.where,
            "valid": checked.valid,
            "errors": list(checked.errors),
        },
        lines=lambda _: (
            [
                (
                    f"{checked.where}: valid ({_shown().plural(presets, 'preset')}, "
                    f"{_shown().plural(breakers, 'breaker')})"
                )
            ]
            if checked.valid
            else []
        ),
    )
    if not checked.valid:
        msg = f"{checked.where} is invalid:"
        raise CliError(
            msg, details=tuple(f"{checked.where}: {e}" for e in checked.errors)
        )
