"""``cbctl watch``: the fleet as an incident view, redrawn on every change."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Annotated

import typer

from cbctl._errors import boundary
from cbctl._options import SelectorOption, output_option
from cbctl._output import TABLE, Output, Terminal, to_json
from cbctl._session import open_operator

if TYPE_CHECKING:
    from types import ModuleType

    from cbcontrol.operator import Event, Frame


def _shown() -> ModuleType:
    """cbctl._render, imported once a command shows something (not for --help)."""
    from cbctl import _render

    return _render


__all__ = ["watch"]


def _snapshot(frame: Frame) -> str:
    return to_json(
        {
            "kind": "snapshot",
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "breakers": frame.view.to_json(),
        },
        indent=None,
    )


@boundary
def watch(
    ctx: typer.Context,
    *,
    selector: SelectorOption = None,
    count: Annotated[
        int | None,
        typer.Option(
            "--count",
            "-c",
            min=1,
            help="Stop after this many events (default: until Ctrl-C).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[Output, output_option("table", "json")] = TABLE,
) -> None:
    """
    Watch the fleet live: which instance is in which state, overrides with reason,
    actor and expiry, and a line for each state change and applied change.

    On a terminal the view is redrawn in place and new events are highlighted for a
    few seconds. Piped, the table is printed once and then one line per event;
    [bold]-o json[/] prints a snapshot, then one JSON event per line. Nothing is
    printed while nothing changes. While the store fails or hangs, the view says so.
    """
    terminal = Terminal.detect()
    live = output.text and terminal.width is not None
    # Only the latest are drawn; piped output prints each event once and keeps none.
    events: deque[tuple[float, Event]] = deque(
        maxlen=_shown().EVENTS_SHOWN if live else 0
    )
    printed = 0
    stop = threading.Event()
    with open_operator(ctx) as op:
        frames = op.watch(stop, selector=selector)
        try:
            first = True
            for frame in frames:
                now = time.monotonic()
                events.extend((now, e) for e in frame.events)
                if live:
                    sys.stdout.write("\x1b[H\x1b[2J")
                    lines = _shown().watch_lines(frame.view, events, terminal, now=now)
                    sys.stdout.write("".join(f"{line}\n" for line in lines))
                elif first:
                    if output.format == "json":
                        sys.stdout.write(_snapshot(frame))
                    else:
                        lines = _shown().fleet_lines(frame.view, terminal)
                        sys.stdout.write("".join(f"{line}\n" for line in lines) + "\n")
                for event in frame.events if not live else ():
                    text = (
                        to_json(event.to_json(), indent=None)
                        if output.format == "json"
                        else _shown().event_line(event) + "\n"
                    )
                    sys.stdout.write(text)
                sys.stdout.flush()
                first = False
                printed += len(frame.events)
                if count is not None and printed >= count:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                frames.close()
