"""
Output: JSON, YAML, and rich tables built from the views of :mod:`cbctl._views`.

Colour only on a terminal (rich honours ``NO_COLOR``, ``FORCE_COLOR`` and ``TERM``);
piped output is plain and wide enough that columns are never wrapped.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from cbctl._fields import fields, format_value

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from rich.console import Console, RenderableType
    from rich.table import Column, Table

__all__ = [
    "KEY_FIELDS",
    "Output",
    "console",
    "emit",
    "get_renderable",
    "history_table",
    "list_table",
    "list_text",
    "presets_table",
    "to_json",
    "to_yaml",
]

Output = Literal["table", "json", "yaml"]

KEY_FIELDS = ("max_failures", "reset_timeout", "failure_rate_threshold")
"""The config columns of ``cbctl list``."""
_PIPE_WIDTH = 1000  # piped output is never wrapped
_STATE_ORDER = ("closed", "half_open", "open", "forced_open", "forced_closed")
_STATE_STYLE = {
    "closed": "green",
    "half_open": "yellow",
    "open": "red",
    "forced_open": "bold red",
    "forced_closed": "magenta",
    "none": "dim",
}


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr): coloured on a terminal, wide when piped."""
    from rich.console import Console

    # emoji=False: a reason such as "see :x: in the runbook" is shown as written.
    out = Console(stderr=stderr, highlight=False, soft_wrap=False, emoji=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(stderr=stderr, highlight=False, emoji=False, width=_PIPE_WIDTH)
    return out


def to_json(data: object) -> str:
    """Stable, indented JSON."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def to_yaml(data: object, *, comment: str | None = None) -> str:
    """Block-style YAML that keeps key order; null written as ``null``."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.representer.add_representer(
        type(None),
        lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"),
    )
    # Views share sub-objects (the top-level `effective` is an instance's); write
    # them out in full each time rather than as `&id001` anchors and aliases.
    yaml.representer.ignore_aliases = lambda _: True
    buffer = io.StringIO()
    if comment is not None:
        buffer.write(f"# {comment}\n")
    yaml.dump(data, buffer)
    return buffer.getvalue()


def emit(
    data: object,
    output: Output,
    table: Callable[[], RenderableType] | None = None,
    plain: Callable[[], str] | None = None,
) -> None:
    """
    Print ``data`` as JSON or YAML, or the renderable ``table()`` makes of it.

    Piped, ``plain()`` (when given) prints the same table as text: rich lays out a
    table cell by cell, seconds for thousands of rows.
    """
    if output == "json":
        sys.stdout.write(to_json(data))
    elif output == "yaml":
        sys.stdout.write(to_yaml(data))
    elif plain is not None and not sys.stdout.isatty():
        sys.stdout.write(plain())
    elif table is not None:
        console().print(table())
    sys.stdout.flush()


def _table(*columns: str | Column, title: str | None = None) -> Table:
    from rich import box
    from rich.table import Table

    return Table(
        *columns,
        box=box.SIMPLE_HEAD,
        title=title,
        title_justify="left",
        title_style="bold",
        header_style="bold",
        pad_edge=False,
        show_edge=False,
    )


def _styled(text: str, style_key: str, *, plain: bool = False) -> str:
    if plain:
        return text
    from rich.markup import escape

    style = _STATE_STYLE.get(style_key)
    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def _last_column(header: str) -> Column:
    """A column cut with an ellipsis on a narrow terminal rather than wrapped."""
    from rich.table import Column

    return Column(header, no_wrap=True, overflow="ellipsis")


def state_summary(instances: list[Mapping[str, Any]], *, plain: bool = False) -> str:
    """``closed 3 · open 1`` (rich markup, unless ``plain``), or ``-``."""
    counts = Counter(str(i["state"]) for i in instances)
    if not counts:
        return "-" if plain else "[dim]-[/]"
    order = [s for s in _STATE_ORDER if s in counts] + sorted(
        s for s in counts if s not in _STATE_ORDER
    )
    return " · ".join(_styled(f"{s} {counts[s]}", s, plain=plain) for s in order)


def _rate(instances: list[Mapping[str, Any]]) -> str:
    rates = [
        i["stats"]["failure_rate"]
        for i in instances
        if i["stats"].get("failure_rate") is not None
    ]
    return f"{max(rates):.1f}%" if rates else "-"


def _generation(view: Mapping[str, Any]) -> str:
    instances = view["instances"]
    applied = sum(1 for i in instances if i["applied"])
    return f"{view['spec']['generation']} ({applied}/{len(instances)})"


def _mode(spec: Mapping[str, Any], *, plain: bool = False) -> str:
    """The override in force: ``forced_open (29m left)``, or ``-``."""
    from cbcontrol.config import format_duration

    override = spec["override"]
    mode = str(override["mode"])
    if mode == "none":
        return _styled("-", "none", plain=plain)
    if override["until"] is None:
        return _styled(mode, mode, plain=plain)
    until = datetime.fromisoformat(str(override["until"]))
    left = (until - datetime.now(UTC)).total_seconds()
    if left <= 0:
        return _styled(f"{mode} (expired)", "none", plain=plain)
    text = f"{mode} ({format_duration(max(1, round(left)))} left)"
    return _styled(text, mode, plain=plain)


def errors_of(view: Mapping[str, Any], *, plain: bool = False) -> list[str]:
    """Every error about a breaker: its stored spec, and each instance's."""
    found = [] if view["spec"]["error"] is None else [str(view["spec"]["error"])]
    found += [
        f"{i['instance_id']}: {i['error']}" for i in view["instances"] if i["error"]
    ]
    if plain:
        return found
    from rich.markup import escape

    return [escape(e) for e in found]


LIST_COLUMNS = (
    "NAME",
    "STATE",
    "MODE",
    "MAX-FAILURES",
    "RESET-TIMEOUT",
    "RATE-THRESHOLD",
    "FAILURE-RATE",
    "GENERATION",
    "ERRORS",
)
"""The columns of ``cbctl list``."""


def _list_row(view: Mapping[str, Any], *, plain: bool) -> list[str]:
    """One breaker's row: plain text, or rich markup."""
    effective = view["effective"]
    errors = errors_of(view, plain=plain)
    if plain:
        name, error = view["name"], errors[0] if errors else "-"
        values = [
            format_value(f, effective.get(f, {}).get("value")) for f in KEY_FIELDS
        ]
    else:
        from rich.markup import escape

        name, error = escape(view["name"]), f"[red]{errors[0]}[/]" if errors else "-"
        values = [
            escape(format_value(f, effective.get(f, {}).get("value")))
            for f in KEY_FIELDS
        ]
    return [
        name,
        state_summary(view["instances"], plain=plain),
        _mode(view["spec"], plain=plain),
        *values,
        _rate(view["instances"]),
        _generation(view),
        error,
    ]


def list_table(views: list[dict[str, Any]]) -> Table:
    """``cbctl list``: one row per breaker."""
    table = _table(*LIST_COLUMNS[:-1], _last_column(LIST_COLUMNS[-1]))
    for view in views:
        table.add_row(*_list_row(view, plain=False))
    return table


def list_text(views: list[dict[str, Any]]) -> str:
    """``cbctl list`` as plain text: the same columns, aligned, one line per breaker."""
    rows = [list(LIST_COLUMNS), *(_list_row(view, plain=True) for view in views)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(LIST_COLUMNS) - 1)]
    lines = []
    for number, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("   ".join([*cells, row[-1]]).rstrip())
        if number == 0:
            lines.append("─" * len(lines[0]))
    return "\n".join(lines) + "\n"


def get_renderable(view: dict[str, Any]) -> RenderableType:
    """``cbctl get NAME``: the spec, the effective config, the instances."""
    from rich.console import Group
    from rich.markup import escape

    spec = view["spec"]
    override = spec["override"]
    head = (
        f"[bold]{escape(view['name'])}[/]  generation {spec['generation']}"
        f"  preset {escape(str(spec['preset'] or '-'))}  mode {_mode(spec)}"
    )
    lines = [head]
    if override["mode"] != "none":
        until = "" if override["until"] is None else f" until {override['until']}"
        lines.append(
            f"override {override['mode']} by {escape(str(override['actor'] or '-'))}"
            f"{until}: {escape(str(override['reason'] or '-'))}"
        )
    if spec["updated_by"] is not None:
        lines.append(
            f"last change {escape(str(spec['updated_at']))} by "
            f"{escape(str(spec['updated_by']))}"
            + (f": {escape(str(spec['reason']))}" if spec["reason"] else "")
        )
    lines += [f"[red]error: {e}[/]" for e in errors_of(view)]
    config = _table("FIELD", "VALUE", "SOURCE", "SPEC", title="config")
    for name, item in view["effective"].items():
        set_here = format_value(name, spec[name]) if name in spec else ""
        config.add_row(
            name,
            escape(format_value(name, item["value"])),
            escape(str(item["source"])),
            escape(set_here),
        )
    return Group(*lines, "", config, "", _instances_table(view))


def _instances_table(view: Mapping[str, Any]) -> Table:
    from rich.markup import escape

    table = _table(
        "INSTANCE",
        "APP",
        "STATE",
        "GENERATION",
        "CALLS",
        "FAILURE-RATE",
        "OPENED",
        _last_column("ERROR"),
        title="instances",
    )
    for item in view["instances"]:
        stats = item["stats"]
        rate = stats.get("failure_rate")
        mark = "" if item["applied"] else " [yellow](pending)[/]"
        table.add_row(
            escape(item["instance_id"]),
            escape(item["app"]),
            _styled(item["state"], item["state"]),
            f"{item['observed_generation']}{mark}",
            str(stats["calls"]),
            "-" if rate is None else f"{rate:.1f}%",
            str(stats["times_opened"]),
            escape(item["error"] or "-"),
        )
    if not view["instances"]:
        table.add_row("[dim]no live instance has this breaker[/]", *[""] * 7)
    return table


def history_table(records: list[dict[str, Any]]) -> Table:
    """``cbctl history NAME``: who changed what, when, why."""
    from rich.markup import escape

    table = _table(
        "AT", "ACTOR", "ACTION", "GENERATION", "REASON", _last_column("CHANGES")
    )
    for record in records:
        changes = ", ".join(
            f"{k}: {_short(k, old)} → {_short(k, new)}"
            for k, (old, new) in record["changes"].items()
        )
        table.add_row(
            escape(record["at"]),
            escape(record["actor"]),
            escape(record["action"]),
            str(record["generation"]),
            escape(record["reason"] or "-"),
            escape(changes),
        )
    return table


def _short(name: str, value: object) -> str:
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{k}: {v}" for k, v in value.items() if v is not None)
            + "}"
        )
    return "(unset)" if value is None else format_value(name, value)


def describe_change(name: str, old: object, new: object) -> str:
    """``max_failures: 5 → 3`` for a diff or a write summary."""
    return f"{name}: {_short(name, old)} → {_short(name, new)}"


def presets_table(view: Mapping[str, Mapping[str, Any]]) -> Table:
    """``cbctl presets``: each preset and the fields it sets."""
    from rich.markup import escape

    table = _table("PRESET", "SOURCE", "VALUES")
    for name, item in view.items():
        values = ", ".join(
            f"{k}={format_value(k, v)}"
            for k, v in item["values"].items()
            if k in fields()
        )
        table.add_row(escape(name), escape(item["source"]), escape(values or "-"))
    return table
