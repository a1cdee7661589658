"""
The one boundary where errors become output and exit codes.

Exit codes (DESIGN.md §6): 0 ok; 1 operational or config error; 2 usage error; 3 not
found; 4 not applied by every instance concerned within the wait timeout. ``diff``
exits 1 when there are differences and 2 or more on an error, as ``kubectl diff``.
An error is ``error: ...`` on stderr, without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from cbcontrol import ConfigError

__all__ = [
    "EXIT_CONFIG",
    "EXIT_NOT_APPLIED",
    "EXIT_NOT_FOUND",
    "EXIT_USAGE",
    "CliError",
    "NotAppliedError",
    "UsageError",
    "boundary",
    "exits",
    "flag_error",
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

    def __init__(
        self,
        message: str,
        *,
        details: tuple[str, ...] = (),
        exit_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CliError):
    """A bad flag or argument value (exit 2), found before anything is written."""

    exit_code = EXIT_USAGE


class NotAppliedError(CliError):
    """Some instance concerned did not apply a write within the timeout (exit 4)."""

    exit_code = EXIT_NOT_APPLIED


def print_error(message: str) -> None:
    """Write ``error: message`` on stderr, as one line per line of ``message``."""
    for line in message.splitlines() or [""]:
        sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()


def flag_error(exc: ConfigError, flags: dict[str, str] | None = None) -> CliError:
    """
    A library rejection of a command line value, as a usage error naming the flag.

    ``flags`` maps a library field (``duration``) to its flag (``--for``); config
    fields map to ``--field-name``. A rejection of something else (a rule spanning the
    stored spec and the flags) keeps the library's message, still a usage error.
    """
    from cbcontrol.config import FIELDS

    field = (exc.field or "").partition(".")[0].partition("[")[0]
    known = {**{f: info.flag for f, info in FIELDS.items()}, "preset": "--preset"}
    known.update({"selector": "--selector", "duration": "--for"})
    known.update(flags or {})
    if field in known:
        shown = exc.value if isinstance(exc.value, str) else repr(exc.value)
        return UsageError(f"invalid {known[field]} {shown}: {exc.rule}")
    return UsageError(str(exc))


def _describe(exc: BaseException) -> tuple[str, int]:
    """The user-facing message and exit code of an exception."""
    from cbcontrol.exceptions import BreakerNotFoundError, CBControlError

    if isinstance(exc, CliError):
        return "\n".join((exc.message, *exc.details)), exc.exit_code
    if isinstance(exc, BreakerNotFoundError):
        return str(exc), EXIT_NOT_FOUND
    if isinstance(exc, CBControlError | OSError | ImportError):
        return str(exc), EXIT_CONFIG
    name = type(exc).__name__
    return f"unexpected {name}: {exc} (run `cbctl --debug ...` for the traceback)", 1


def run(
    command: Callable[[], object],
    *,
    debug: bool = False,
    passthrough: tuple[type[BaseException], ...] = (),
    error_code: Callable[[int], int] | None = None,
) -> int:
    """
    Run ``command()``; report an error as one ``error:`` line; return the exit code.

    ``passthrough`` exceptions propagate (Typer's ``Exit``, ``BrokenPipeError``);
    ``error_code`` maps the exit code of an error (``diff`` moves 1 to 2).
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
        return code if error_code is None else error_code(code)
    return 0


def boundary(command: Callable[_P, _R]) -> Callable[_P, _R]:
    """
    Run a command, turning every error into one ``error:`` line and an exit code.

    The command must take the Typer context as ``ctx`` (for ``--debug``).
    """
    return exits()(command)


def exits(
    error_code: Callable[[int], int] | None = None,
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """:func:`boundary`, with the exit code of errors mapped by ``error_code``."""

    def wrap(inner: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(inner)
        def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            import typer

            from cbctl._session import GlobalOptions

            # The vendored Context of older Typers is no typer.Context: duck-type.
            find = getattr(kwargs.get("ctx"), "find_object", None)
            found = None if find is None else find(GlobalOptions)
            result: list[_R] = []
            code = run(
                lambda: result.append(inner(*args, **kwargs)),
                debug=bool(found and found.debug),
                passthrough=(typer.Exit, BrokenPipeError),
                error_code=error_code,
            )
            if code:
                raise typer.Exit(code)
            return result[0]

        return guarded

    return wrap
