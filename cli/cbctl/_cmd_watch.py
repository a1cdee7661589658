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
    from rich.live import Live

    from cbcontrol import ControlStore

__all__ = ["watch"]


def _frames(store: ControlStore, stop: threading.Event) -> Generator[Fleet]:
    """The store as it changes (the first frame at once), from the store's watch."""
    with contextlib.closing(store.watch(stop)) as changes:
        for view in changes:
            yield Fleet(store, view=view)


def _dashboard(fleet: Fleet, views: list[dict[str, Any]], fresh: str) -> RenderableType:
    from rich.console import Group
    from rich.markup import escape

    now = datetime.now(UTC).strftime("%H:%M:%S")
    header = (
        f"[bold]cbctl watch[/] · {escape(fleet.url)} · "
        f"{len(fleet.instances)} instances · {now} UTC · [dim]Ctrl-C to quit[/]"
    )
    if fleet.stale is None:
        return Group(header, "", list_table(views))
    stale = (
        f"[bold red]STALE[/] since {fresh} UTC: the data below may be out of date: "
        f"{escape(fleet.stale)}"
    )
    return Group(header, stale, "", list_table(views))


def _draw(
    fleet: Fleet,
    views: list[dict[str, Any]],
    fresh: str,
    output: str,
    live: Live | None,
) -> None:
    """One frame: redrawn in place on a terminal, else printed after the last."""
    if live is not None and output == "table":
        live.update(_dashboard(fleet, views, fresh), refresh=True)
    elif output == "table":
        out = console()
        out.print(_dashboard(fleet, views, fresh))
        out.print()
    else:
        if fleet.stale is not None:
            sys.stderr.write(f"stale since {fresh} UTC: {fleet.stale}\n")
        sys.stdout.write(_text(views, output))
        sys.stdout.flush()


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
    JSON list per line). While the store fails or hangs, the frame says since when
    its data is stale.
    """
    from rich.live import Live

    stop = threading.Event()
    out = console()
    live = Live(console=out, auto_refresh=False) if out.is_terminal else None
    frames = 0
    last = None
    fresh = datetime.now(UTC).strftime("%H:%M:%S")
    try:
        with open_store(ctx) as store, contextlib.closing(_frames(store, stop)) as each:
            if live is not None and output == "table":
                live.start()
            for fleet in each:
                views = [breaker_view(fleet, n) for n in fleet.names()]
                if (views, fleet.stale) == last:
                    continue
                last = (views, fleet.stale)
                if fleet.stale is None:
                    fresh = datetime.now(UTC).strftime("%H:%M:%S")
                _draw(fleet, views, fresh, output, live)
                frames += 1
                if iterations is not None and frames >= iterations:
                    stop.set()
                    break
    except KeyboardInterrupt:
        stop.set()
    finally:
        if live is not None and live.is_started:
            live.stop()
