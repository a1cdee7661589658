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
from typing import TYPE_CHECKING, Any, ParamSpec, TypeGuard, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from pydantic import ValidationError

# No Typer at import: the typer-free path of `cbctl get` (cbctl._quick) uses `run`.

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
    "run",
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
    import typer

    ctx = kwargs.get("ctx") or next(
        (a for a in args if isinstance(a, typer.Context)), None
    )
    obj = getattr(ctx, "obj", None)
    return bool(getattr(obj, "debug", False))


def _describe(exc: BaseException) -> tuple[str, int]:
    """The user-facing message and exit code of an exception."""
    from cbcontrol import CBControlError

    if isinstance(exc, CliError):
        return "\n".join((exc.message, *exc.details)), exc.exit_code
    if _is_validation_error(exc):
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


def _is_validation_error(exc: BaseException) -> TypeGuard[ValidationError]:
    # Only a loaded pydantic can have raised one: do not import it to find out.
    if "pydantic" not in sys.modules:
        return False
    from pydantic import ValidationError

    return isinstance(exc, ValidationError)


def run(
    command: Callable[[], object],
    *,
    debug: bool = False,
    passthrough: tuple[type[BaseException], ...] = (),
) -> int:
    """
    Run ``command()``; report an error as one ``error:`` line; return the exit code.

    ``passthrough`` exceptions propagate (Typer's ``Exit``, ``BrokenPipeError``).
    """
    if debug:
        logging.basicConfig(
            level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s"
        )
    try:
        command()
    except passthrough:
        raise
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the one boundary for every error
        message, code = _describe(exc)
        if debug:
            import traceback

            traceback.print_exc(file=sys.stderr)
        print_error(message)
        return code
    return 0


def boundary(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """
    Run a command, turning every error into one ``error:`` line and an exit code.

    The command must take the Typer context as ``ctx`` (for ``--debug``).
    """

    @functools.wraps(command)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        import typer

        result: list[_R] = []
        code = run(
            lambda: result.append(command(*args, **kwargs)),
            debug=_debugging(args, kwargs),
            # Typer exits quietly when the reader of a pipe went away.
            passthrough=(typer.Exit, BrokenPipeError),
        )
        if code:
            raise typer.Exit(code)
        return result[0]

    return guarded
