"""Entry point of the ``cbctl`` console script and of ``python -m cbctl``."""

import contextlib
import os
import sys
from typing import TextIO


def main() -> None:
    """Run cbctl with the process's command line arguments."""
    from cbctl._app import main as run

    try:
        run()  # always ends in SystemExit
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    except BrokenPipeError:
        code = 1  # as click exits when the reader of a pipe went away
    try:
        _flush(sys.stdout)
    except BrokenPipeError:
        # The reader went away: what is left goes to /dev/null, so exit stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    with contextlib.suppress(OSError, ValueError):
        _flush(sys.stderr)
    sys.exit(code)


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
