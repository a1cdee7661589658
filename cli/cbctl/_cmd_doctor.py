"""``cbctl doctor``, ``cbctl schema`` and ``cbctl version``."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from cbctl._errors import CliError, boundary
from cbctl._options import OutputOption, ReasonOption
from cbctl._output import TABLE, emit
from cbctl._session import open_operator


def _shown() -> ModuleType:
    """cbctl._render, imported once a command shows something (not for --help)."""
    from cbctl import _render

    return _render


if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["doctor", "schema", "version"]


@boundary
def doctor(
    ctx: typer.Context,
    *,
    write_test: Annotated[
        bool,
        typer.Option(
            "--write-test",
            help="Check write permission too: write a preset, then remove it.",
        ),
    ] = False,
    accept_history: Annotated[
        bool,
        typer.Option(
            "--accept-history",
            help=(
                "Accept the store as it is after its history went backwards (wiped "
                "or restored): every instance applies its state again."
            ),
        ),
    ] = False,
    reason: ReasonOption = None,
    output: OutputOption = TABLE,
) -> None:
    """
    Check the store and the fleet; exit 1 if a check fails.

    Reachability and latency, read (and with [bold]--write-test[/] write)
    permission, cbcontrol versions, live, late and lost instances, clock skew,
    instances holding their state because the store's history went backwards
    ([bold]--accept-history[/] accepts the store as it is), config errors (each
    once, with the instances reporting it), and fields that differ between
    instances.
    """
    with open_operator(ctx) as op:
        if accept_history:
            epoch = op.accept_history(reason=reason)
            sys.stderr.write(f"accepted {op.url} as it is (epoch {epoch})\n")
        report = op.doctor(write_test=write_test)
    emit(output, data=report.to_json, lines=lambda t: _shown().doctor_lines(report, t))
    if not report.ok:
        failed = "; ".join(
            f"{c.check}: {c.detail}" for c in report.checks if c.status == "fail"
        )
        raise CliError(failed)


def _schema_names() -> list[str]:
    return ["config-file", "breaker-spec", "instance-status"]


@boundary
def schema(
    ctx: typer.Context,  # noqa: ARG001 - the boundary reads --debug from it
    *,
    name: Annotated[
        str,
        typer.Argument(
            help="Which document's schema: config-file, breaker-spec, instance-status."
        ),
    ] = "config-file",
) -> None:
    """Print the JSON Schema of a config file, a breaker spec or an instance status."""
    from cbcontrol.config import json_schema

    if name not in _schema_names():
        from cbctl._errors import UsageError

        msg = f"unknown schema {name!r}: choose {', '.join(_schema_names())}"
        raise UsageError(msg)
    document = json_schema(name)  # type: ignore[arg-type]
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")


def version() -> None:
    """Print cbctl's version."""
    import cbcontrol

    typer.echo(f"cbctl {cbcontrol.__version__}")
