"""``cbctl watch``: the fleet, redrawn on every change of the store."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cbctl._errors import boundary
from cbctl._options import OutputOption
from cbctl._render import console, list_table, to_yaml
from cbctl._session import open_store
from cbctl._views import Fleet, breaker_view

if TYPE_CHECKING:
    from collections.abc import Generator

    from rich.console import RenderableType

    from cbcontrol import ControlStore

__all__ = ["watch"]


def _frames(store: ControlStore, stop: threading.Event) -> Generator[Fleet]:
    """A fresh read of the store after each change (the first one at once)."""
    changes = store.watch(stop)
    try:
        for _ in changes:
            yield Fleet(store)
    finally:
        # A generator underneath: closing it cancels the store's watch at once.
        close = getattr(changes, "close", None)
        if close is not None:
            close()


def _dashboard(fleet: Fleet, views: list[dict[str, Any]]) -> RenderableType:
    from rich.console import Group
    from rich.markup import escape

    now = datetime.now(UTC).strftime("%H:%M:%S")
    header = (
        f"[bold]cbctl watch[/] · {escape(fleet.url)} · "
        f"{len(fleet.instances)} instances · {now} UTC · [dim]Ctrl-C to quit[/]"
    )
    return Group(header, "", list_table(views))


def _text(views: list[dict[str, Any]], output: str) -> str:
    if output == "json":
        return json.dumps(views, ensure_ascii=False) + "\n"
    return "---\n" + to_yaml(views)


@boundary
def watch(
    ctx: typer.Context,
    *,
    iterations: Annotated[
        int | None,
        typer.Option(
            "--iterations",
            "-n",
            min=1,
            help="Stop after this many frames (default: until Ctrl-C).",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = "table",
) -> None:
    """
    Live dashboard of the fleet, redrawn whenever desired or reported state changes.

    Driven by the store's watch, not by polling. On a terminal the table is redrawn
    in place; piped, each changed frame is printed in turn ([bold]-o json[/]: one
    JSON list per line).
    """
    from rich.live import Live

    stop = threading.Event()
    out = console()
    live = Live(console=out, auto_refresh=False) if out.is_terminal else None
    frames = 0
    last = None
    try:
        with open_store(ctx) as store, contextlib.closing(_frames(store, stop)) as each:
            if live is not None and output == "table":
                live.start()
            for fleet in each:
                views = [breaker_view(fleet, n) for n in fleet.names()]
                if views == last:
                    continue
                last = views
                if live is not None and output == "table":
                    live.update(_dashboard(fleet, views), refresh=True)
                elif output == "table":
                    out.print(_dashboard(fleet, views))
                    out.print()
                else:
                    sys.stdout.write(_text(views, output))
                    sys.stdout.flush()
                frames += 1
                if iterations is not None and frames >= iterations:
                    stop.set()
                    break
    except KeyboardInterrupt:
        stop.set()
    finally:
        if live is not None and live.is_started:
            live.stop()
