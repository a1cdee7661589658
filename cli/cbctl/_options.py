"""
Options shared by several commands, declared once as ``Annotated`` aliases.

The ``--FIELD`` options of ``set`` and the flags of ``unset`` come from the field
catalog that ``schemas/generate.py`` writes from the models
(:data:`cbcontrol.config.FIELDS`): a field added to the library gets its option,
its help and its parsing without a change here, and nothing is introspected at start.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cbctl._output import Output, parse_output

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CreateOption",
    "DryRunOption",
    "ForOption",
    "NameArgument",
    "OutputOption",
    "ReasonOption",
    "SelectorOption",
    "TimeoutOption",
    "WaitOption",
    "WatchOption",
    "complete_breakers",
    "complete_presets",
    "duration_option",
    "invalid_name",
    "output_option",
    "with_field_flags",
    "with_field_options",
]

_F = TypeVar("_F", bound="Callable[..., Any]")
CONFIG_PANEL = "Config fields"
WRITE_PANEL = "Write options"


def _completing_operator(ctx: typer.Context) -> Any:
    """The operator API for completion: the store of the command line, or the env."""
    from cbcontrol.operator import open_operator

    store = namespace = None
    for context in (ctx, *_parents(ctx)):
        params = context.params or {}
        store = store or params.get("store")
        namespace = namespace or params.get("namespace")
    return open_operator(store, namespace=namespace, timeout=1.0)


def _parents(ctx: typer.Context) -> list[Any]:
    found = []
    parent = ctx.parent
    while parent is not None:
        found.append(parent)
        parent = parent.parent
    return found


def complete_breakers(ctx: typer.Context, incomplete: str) -> list[str]:
    """Breaker names from the store that start with ``incomplete``."""
    try:
        with _completing_operator(ctx) as op:
            return [n for n in op.names() if n.startswith(incomplete)]
    except Exception:  # noqa: BLE001 - completion must never print an error
        return []


def complete_presets(ctx: typer.Context, incomplete: str) -> list[str]:
    """Preset names (built-in and the store's) that start with ``incomplete``."""
    try:
        with _completing_operator(ctx) as op:
            return [n for n in op.preset_names() if n.startswith(incomplete)]
    except Exception:  # noqa: BLE001 - completion must never print an error
        return []


def invalid_name(value: str) -> str | None:
    """Why ``value`` is not a breaker name (quoting it in part), or None if it is."""
    from cbcontrol.store import NAME_RULE, is_name

    if is_name(value):
        return None
    shown = value if len(value) <= 130 else value[:130] + "..."  # noqa: PLR2004
    return f"invalid breaker name {shown!r}: {NAME_RULE}"


def _name(value: str) -> str:
    """A breaker name of the name grammar, or a usage error (exit 2)."""
    why = invalid_name(value)
    if why is not None:
        raise typer.BadParameter(why)
    return value


NameArgument = Annotated[
    str,
    typer.Argument(
        metavar="NAME",
        help="The breaker's name.",
        show_default=False,
        callback=_name,
        autocompletion=complete_breakers,
    ),
]


def output_option(*allowed: str, default: str = "table") -> Any:
    """An ``-o/--output`` option taking ``allowed`` formats (all, if none given)."""
    formats = allowed or None

    def parser(value: str | Output) -> Output:
        if isinstance(value, Output):
            return value
        try:
            return parse_output(value, formats)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    shown = (
        ", ".join(allowed)
        if allowed
        else "table, wide, json, yaml, name, jsonpath=TEMPLATE"
    )
    return typer.Option(
        "--output",
        "-o",
        metavar="FORMAT",
        parser=parser,
        help=f"Output format: {shown}.",
        show_default=default,
    )


OutputOption = Annotated[Output, output_option()]
SelectorOption = Annotated[
    str | None,
    typer.Option(
        "--selector",
        "-l",
        metavar="SELECTOR",
        help=(
            "Only instances whose labels match, kubectl's syntax: zone=eu-1, "
            "zone!=eu-1, 'zone in (eu-1,eu-2)', canary, !canary; commas join (AND)."
        ),
        show_default=False,
    ),
]
WatchOption = Annotated[
    bool,
    typer.Option(
        "--watch", "-w", help="Print it again whenever it changes (Ctrl-C to stop)."
    ),
]
ReasonOption = Annotated[
    str | None,
    typer.Option(
        "--reason",
        "-r",
        help="Why: recorded with the change, shown in history and watch.",
        rich_help_panel=WRITE_PANEL,
        show_default=False,
    ),
]
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="Wait until every instance concerned applied it (exit 4 if not).",
        rich_help_panel=WRITE_PANEL,
    ),
]
TimeoutOption = Annotated[
    str,
    typer.Option(
        "--timeout",
        metavar="DURATION",
        help="How long --wait waits, e.g. 10s, 1m30s.",
        rich_help_panel=WRITE_PANEL,
    ),
]
DryRunOption = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Check and show what would change; write nothing.",
        rich_help_panel=WRITE_PANEL,
    ),
]
CreateOption = Annotated[
    bool,
    typer.Option(
        "--create",
        help="Create the file store if it does not exist (a missing file is an error).",
        rich_help_panel=WRITE_PANEL,
    ),
]
ForOption = Annotated[
    str | None,
    typer.Option(
        "--for",
        metavar="DURATION",
        help="Lift the override by itself after this long, e.g. 30m, 1h.",
        show_default=False,
    ),
]


def duration_option(flag: str, text: str) -> float:
    """
    Seconds from a duration option, or a usage error naming the flag.

    Raises:
        UsageError: Not a duration, or not positive.
    """
    from cbcontrol.config import parse_duration
    from cbctl._errors import UsageError

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        msg = f"invalid {flag} {text}: {exc}".replace(f", got {text!r}", "")
        raise UsageError(msg) from None
    if seconds <= 0:
        msg = f"invalid {flag} {text}: must be > 0"
        raise UsageError(msg)
    return seconds


def _extend(command: _F, extra: list[inspect.Parameter]) -> _F:
    """Replace ``**fields`` in ``command``'s signature with one option per field."""
    signature = inspect.signature(command, eval_str=True)
    params = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    command.__signature__ = signature.replace(parameters=[*params, *extra])  # type: ignore[attr-defined]
    for param in extra:
        command.__annotations__[param.name] = param.annotation
    return command


def _metavar(kind: str, choices: tuple[str, ...], nullable: bool) -> str:
    word = {
        "int": "INT",
        "float": "NUMBER",
        "duration": "DURATION",
        "text": "TEXT",
        "choice": "|".join(choices),
    }[kind]
    return f"{word}|none" if nullable else word


def with_field_options(command: _F) -> _F:
    """Give ``command`` a ``--FIELD VALUE`` option per config field (``**fields``)."""
    from cbcontrol.config import FIELDS

    extra = [
        inspect.Parameter(
            info.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option(
                    info.flag,
                    metavar=_metavar(info.kind, info.choices, info.nullable),
                    help=f"{info.help} ({info.rule}.)",
                    show_default=False,
                    rich_help_panel=CONFIG_PANEL,
                ),
            ],
        )
        for info in FIELDS.values()
    ]
    return _extend(command, extra)


def with_field_flags(command: _F) -> _F:
    """Give ``command`` a ``--FIELD`` flag per config field, into ``**fields``."""
    from cbcontrol.config import FIELDS

    extra = [
        inspect.Parameter(
            info.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[
                bool,
                typer.Option(
                    info.flag,
                    help=f"Remove {info.name}.",
                    show_default=False,
                    rich_help_panel=CONFIG_PANEL,
                ),
            ],
        )
        for info in FIELDS.values()
    ]
    return _extend(command, extra)
