"""
``cbctl get NAME`` and ``cbctl list`` without Typer.

Importing Typer and building its command tree costs about 30 ms, a third of what a
``cbctl get`` against etcd may take (the target: at most 1.5 x a bare etcd read,
measured by bench/ack.py).
These two read commands, in their plain forms, are parsed here and run the same
bodies as the Typer commands (:mod:`cbctl._read`). Anything else (help, ``--debug``,
an option this parser does not know, a misspelt command, a bad ``-o`` value) is left
to Typer, so that help and usage errors read as they do everywhere else.

The forms taken, with the global options before the command as in DESIGN.md §6::

    cbctl [--store URL] [--namespace NS] get NAME [-o table|json|yaml]
    cbctl [--store URL] [--namespace NS] list [-o table|json|yaml]

Each option also as ``--store=URL``, ``--output=json`` or ``-ojson``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from cbctl._session import GlobalOptions

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cbctl._render import Output

__all__ = ["Invocation", "parse", "run"]

_GLOBAL = {"--store": "store", "--namespace": "namespace"}
_OUTPUTS = ("table", "json", "yaml")
_COMMANDS = ("get", "list")


@dataclass(frozen=True, slots=True)
class Invocation:
    """A parsed plain ``get`` or ``list``."""

    command: str
    options: GlobalOptions
    name: str | None
    output: Output


def _option(args: Sequence[str], i: int, flag: str) -> tuple[str | None, int]:
    """The value of the option at ``args[i]`` (``--flag V`` or ``--flag=V``), next i."""
    arg = args[i]
    if arg == flag:
        return (args[i + 1], i + 2) if i + 1 < len(args) else (None, i + 1)
    return arg.partition("=")[2], i + 1


def _global_options(argv: Sequence[str]) -> tuple[dict[str, str], int] | None:
    """``--store`` and ``--namespace`` before the command, and where the command is."""
    given: dict[str, str] = {}
    i = 0
    while i < len(argv) and argv[i].startswith("--"):
        flag = argv[i].partition("=")[0]
        if flag not in _GLOBAL or _GLOBAL[flag] in given:
            return None
        value, i = _option(argv, i, flag)
        if not value:
            return None
        given[_GLOBAL[flag]] = value
    return given, i


def _command_args(args: Sequence[str]) -> tuple[str | None, str] | None:
    """The NAME (if any) and the ``-o`` value after the command."""
    name: str | None = None
    output = "table"
    j = 0
    while j < len(args):
        arg = args[j]
        if arg == "-o" or arg.partition("=")[0] == "--output":
            value, j = _option(args, j, "-o" if arg == "-o" else "--output")
        elif arg.startswith("-o"):
            value, j = arg[2:], j + 1
        elif arg.startswith("-") or name is not None:
            return None
        else:
            name, j = arg, j + 1
            continue
        if value not in _OUTPUTS:
            return None
        output = value
    return name, output


def parse(argv: Sequence[str]) -> Invocation | None:
    """What ``argv`` (without the program name) asks for; None leaves it to Typer."""
    found = _global_options(argv)
    if found is None:
        return None
    given, i = found
    if i >= len(argv) or argv[i] not in _COMMANDS:
        return None
    command = argv[i]
    rest = _command_args(argv[i + 1 :])
    if rest is None or (command == "get") != (rest[0] is not None):
        return None
    name, output = rest
    # As Typer's envvar: --store, else a non-empty CBCONTROL_STORE.
    store = given.get("store") or os.environ.get("CBCONTROL_STORE") or None
    options = GlobalOptions(store=store, namespace=given.get("namespace"))
    return Invocation(command, options, name, cast("Output", output))


def run(invocation: Invocation) -> int:
    """
    Run a parsed invocation; return its exit code (errors reported on stderr).

    Raises:
        BrokenPipeError: The reader of stdout went away.
    """
    from cbctl._errors import run as guarded
    from cbctl._read import list_breakers, show_breaker

    opts, name, output = invocation.options, invocation.name, invocation.output
    if name is not None:  # parse() gives `get`, and only `get`, a name
        return guarded(
            lambda: show_breaker(opts, name, output), passthrough=(BrokenPipeError,)
        )
    return guarded(lambda: list_breakers(opts, output), passthrough=(BrokenPipeError,))
