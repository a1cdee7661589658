"""Entry point of the ``cbctl`` console script and of ``python -m cbctl``."""

import contextlib
import gc
import os
import sys
from typing import TextIO


def main() -> None:
    """Run cbctl with the process's command line arguments."""
    # A plain `get` or `list` runs without Typer (cbctl._quick): a short process that
    # builds no cyclic garbage worth collecting, so the collector stays off (-7 ms of
    # collections during imports).
    gc.disable()
    from cbctl._quick import parse, run

    invocation = parse(sys.argv[1:])
    try:
        if invocation is None:
            gc.enable()
            from cbctl._app import app

            app(prog_name="cbctl")  # always ends in SystemExit
            code = 0
        else:
            code = run(invocation)
        _flush(sys.stdout)
    except SystemExit as exc:
        code = _exit_code(exc)
        try:
            _flush(sys.stdout)
        except BrokenPipeError:
            _drop_stdout()
    except BrokenPipeError:
        code = 1  # as Typer (click) exits when the reader of a pipe went away
        _drop_stdout()
    with contextlib.suppress(OSError, ValueError):
        _flush(sys.stderr)
    # Every command closed its store (gRPC channel and streams), so the
    # interpreter's teardown has no gRPC call left to collect.
    sys.exit(code)


def _drop_stdout() -> None:
    """The reader went away: send what is left to /dev/null, so exit stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _flush(stream: TextIO | None) -> None:
    if stream is not None:  # None when the process was started with it closed
        stream.flush()


def _exit_code(exc: SystemExit) -> int:
    """The status ``sys.exit(code)`` would give the process."""
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    sys.stderr.write(f"{exc.code}\n")  # what the interpreter does with a message
    return 1


if __name__ == "__main__":
    main()
