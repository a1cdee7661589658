"""Entry point of the ``cbctl`` console script and of ``python -m cbctl``."""

import contextlib
import gc
import os
import sys
from typing import TextIO


def main() -> None:
    """Run cbctl with the process's command line arguments."""
    # A plain `get` or `list` runs without Typer (cbctl._quick). It is a short
    # process that builds no cyclic garbage worth collecting: the collector stays off
    # (-7 ms of collections during imports), and it ends with os._exit once its output
    # is flushed, skipping the interpreter's teardown of gRPC (-18 ms, and no exit
    # hang in gRPC's finalizers).
    gc.disable()
    from cbctl._quick import parse, run

    invocation = parse(sys.argv[1:])
    if invocation is None:
        gc.enable()
        from cbctl._app import app

        app(prog_name="cbctl")
        return
    try:
        code = run(invocation)
        _flush(sys.stdout)
    except BrokenPipeError:
        code = 1  # as Typer (click) exits when the reader of a pipe went away
    with contextlib.suppress(OSError, ValueError):
        _flush(sys.stderr)
    os._exit(code)


def _flush(stream: TextIO | None) -> None:
    if stream is not None:  # None when the process was started with it closed
        stream.flush()


if __name__ == "__main__":
    main()
