"""Commands that only read: list, get, history, presets, export, validate, schema."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Literal

import typer

from cbcontrol.config import SchemaName
from cbctl._document import load
from cbctl._errors import boundary, print_error
from cbctl._options import NameArgument, OutputOption
from cbctl._read import list_breakers, show_breaker
from cbctl._render import (
    emit,
    history_table,
    presets_table,
    to_json,
    to_yaml,
)
from cbctl._session import open_store, options, require_known
from cbctl._views import (
    Fleet,
    export_document,
    history_view,
    presets_view,
)

__all__ = ["export", "get", "history", "list_", "presets", "schema", "validate"]


@boundary
def list_(ctx: typer.Context, *, output: OutputOption = "table") -> None:
    """
    List the breakers across the fleet: state per instance, mode, key config.

    One row per breaker with a spec or on a live instance: states counted over the
    instances ([bold]closed 3 · open 1[/]), the operator override, max_failures,
    reset_timeout and failure_rate_threshold, the worst failure rate, the spec
    generation with how many instances applied it ([bold]7 (3/3)[/]), and errors.
    """
    list_breakers(options(ctx), output)


@boundary
def get(
    ctx: typer.Context, *, name: NameArgument, output: OutputOption = "table"
) -> None:
    """
    Show a breaker: its spec, effective config with sources, status per instance.

    The effective config is what the oldest live instance reports, each field with
    its source (default, preset, env, file, etcd); without a live instance, what the
    store alone gives (default < preset < spec).
    """
    show_breaker(options(ctx), name, output)


@boundary
def history(
    ctx: typer.Context,
    *,
    name: NameArgument,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, help="Show at most this many changes."),
    ] = 50,
    output: OutputOption = "table",
) -> None:
    """Show who changed a breaker, when, why and what (oldest first)."""
    with open_store(ctx) as store:
        records = history_view(store.history(name, limit=limit))
        if not records:
            fleet = Fleet(store)
            require_known(name, fleet.names(), fleet.url)
    emit(records, output, lambda: history_table(records))


@boundary
def presets(ctx: typer.Context, *, output: OutputOption = "table") -> None:
    """List the presets and their values: built-in ones, extended by the store's."""
    with open_store(ctx) as store:
        view = presets_view(store)
    emit(view, output, lambda: presets_table(view))


@boundary
def export(
    ctx: typer.Context,
    *,
    output: Annotated[
        Literal["yaml", "json"], typer.Option("--output", "-o", help="Output format.")
    ] = "yaml",
) -> None:
    """
    Print the desired state as YAML: store presets and every breaker's spec.

    cbctl's metadata (generation, updated_by, ...) is left out. The output is valid
    for [bold]cbctl apply -f[/] and as a file store:
    [bold]cbctl export > cbcontrol.yaml[/].
    """
    with open_store(ctx) as store:
        fleet = Fleet(store)
        document, skipped = export_document(fleet)
    for warning in skipped:
        sys.stderr.write(f"warning: {warning}\n")
    if output == "json":
        sys.stdout.write(to_json(document))
    else:
        sys.stdout.write(to_yaml(document, comment=f"cbctl export of {fleet.url}"))


@boundary
def validate(
    ctx: typer.Context,  # noqa: ARG001 - the boundary reads --debug from it
    *,
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="The YAML document ('-' for stdin).")
    ],
    output: OutputOption = "table",
) -> None:
    """
    Check a config document offline: every error, with its field path.

    Checks the schema and that each breaker resolves over the built-in presets and
    the document's own. Exits 1 when the document is invalid.
    """
    loaded = load(file)
    if output != "table":
        emit(
            {
                "file": loaded.where,
                "valid": not loaded.errors,
                "errors": list(loaded.errors),
            },
            output,
        )
    elif not loaded.errors:
        document = loaded.document
        assert document is not None  # noqa: S101 - no errors means it validated
        sys.stdout.write(
            f"{loaded.where}: valid ({len(document.presets)} presets, "
            f"{len(document.breakers)} breakers)\n"
        )
    if loaded.errors:
        for error in loaded.errors:
            print_error(f"{loaded.where}: {error}")
        raise typer.Exit(1)


@boundary
def schema(
    ctx: typer.Context,  # noqa: ARG001 - the boundary reads --debug from it
    *,
    name: Annotated[
        SchemaName,
        typer.Argument(help="Which document's schema."),
    ] = "config-file",
) -> None:
    """Print the JSON Schema of a config file, a breaker spec or an instance status."""
    from cbcontrol.config import json_schema

    document = json_schema(name)
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
