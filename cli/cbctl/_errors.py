"""
The one boundary where errors become output and exit codes.

Exit codes (DESIGN.md §6): 0 ok; 1 operational or config error; 2 usage error; 3 not
found; 4 not applied by every instance within the wait timeout. An error is one line,
``error: ...`` on stderr, without a traceback unless ``--debug`` was given.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "EXIT_CONFIG",
    "EXIT_NOT_APPLIED",
    "EXIT_NOT_FOUND",
    "EXIT_USAGE",
    "CliError",
    "NotAppliedError",
    "NotFoundError",
    "UsageError",
    "boundary",
    "print_error",
]

EXIT_CONFIG = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_NOT_APPLIED = 4

_P = ParamSpec("_P")
_R = TypeVar("_R")


class CliError(Exception):
    """An error cbctl reports itself: a message, and the exit code that goes with it."""

    exit_code = EXIT_CONFIG

    def __init__(self, message: str, *, details: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class UsageError(CliError):
    """A bad flag or argument value (exit 2), found before anything is written."""

    exit_code = EXIT_USAGE


class NotFoundError(CliError):
    """An unknown breaker (exit 3)."""

    exit_code = EXIT_NOT_FOUND


class NotAppliedError(CliError):
    """Some live instance did not apply a write within the timeout (exit 4)."""

    exit_code = EXIT_NOT_APPLIED


def print_error(message: str) -> None:
    """Write ``error: message`` on stderr, as one line per line of ``message``."""
    for line in message.splitlines() or [""]:
        sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()


def _debugging(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    ctx = kwargs.get("ctx") or next(
        (a for a in args if isinstance(a, typer.Context)), None
    )
    obj = getattr(ctx, "obj", None)
    return bool(getattr(obj, "debug", False))


def _describe(exc: BaseException) -> tuple[str, int]:
    """The user-facing message and exit code of an exception."""
    from pydantic import ValidationError

    from cbcontrol import CBControlError

    if isinstance(exc, CliError):
        return "\n".join((exc.message, *exc.details)), exc.exit_code
    if isinstance(exc, ValidationError):
        lines = [
            f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}"
            for e in exc.errors()
        ]
        return "\n".join(lines), EXIT_CONFIG
    if isinstance(exc, CBControlError | OSError):
        return str(exc), EXIT_CONFIG
    if isinstance(exc, ImportError):
        return str(exc), EXIT_CONFIG
    name = type(exc).__name__
    return (
        f"unexpected {name}: {exc} (run `cbctl --debug ...` for the traceback)",
        EXIT_CONFIG,
    )


def boundary(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """
    Run a command, turning every error into one ``error:`` line and an exit code.

    The command must take the Typer context as ``ctx`` (for ``--debug``).
    """

    @functools.wraps(command)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        debug = _debugging(args, kwargs)
        if debug:
            logging.basicConfig(
                level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s"
            )
        try:
            return command(*args, **kwargs)
        except (typer.Exit, BrokenPipeError):
            raise  # Typer exits quietly when the reader of a pipe went away
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the one boundary for every error
            message, code = _describe(exc)
            if debug:
                import traceback

                traceback.print_exc(file=sys.stderr)
            print_error(message)
            raise typer.Exit(code) from None

    return run
