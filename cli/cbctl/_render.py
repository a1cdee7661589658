"""
How cbctl shows things: tables and lines made from the operator API's read models.

One timestamp format everywhere (``2026-11-27T12:00:00Z``, UTC), ages as ``42s`` or
``3m12s``, durations as ``1m30s``, percentages as ``50%``. Errors and differences go
to footnotes (``[1]``) under a table, each once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cbctl._table import Cell, Column, Footnotes, render_table

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cbcontrol import HistoryRecord
    from cbcontrol.operator import (
        BreakerView,
        ChangeResult,
        DoctorReport,
        Event,
        FieldExplanation,
        FleetView,
        InstanceView,
        Plan,
        PresetView,
    )
    from cbctl._output import Terminal

__all__ = [
    "EVENTS_SHOWN",
    "describe_change",
    "event_line",
    "explain_lines",
    "fleet_lines",
    "get_lines",
    "history_lines",
    "plan_lines",
    "presets_lines",
    "result_lines",
    "watch_lines",
]

STATE_STYLE = {
    "closed": "green",
    "half_open": "yellow",
    "open": "red",
    "forced_open": "bold red",
    "forced_closed": "magenta",
    "live": "green",
    "stale": "yellow",
    "lost": "red",
}
ARROW = "→"


def when(text: str | None) -> str:
    """A stored instant as ``2026-11-27T12:00:00Z``; ``-`` if none."""
    if not text:
        return "-"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def age(seconds: float | None) -> str:
    """``42s``, ``3m12s``, ``2h3m``; ``-`` if unknown."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:  # noqa: PLR2004
        return f"{whole}s"
    if whole < 3600:  # noqa: PLR2004
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def plural(count: int, word: str) -> str:
    """``1 instance``, ``2 instances``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def value(field: str, data: object) -> str:
    """A config value for people."""
    from cbcontrol.config import format_value

    if isinstance(data, dict):
        return (
            "{" + ", ".join(f"{k}: {v}" for k, v in data.items() if v is not None) + "}"
        )
    return format_value(field.partition("[")[0], data)


def describe_change(key: str, old: object, new: object, *, action: str = "set") -> str:
    """``max_failures: 5 → 3``; a removed field ``(removed)``, an unset one ``-``."""
    name = key.partition("[")[0]

    def show(item: object, *, after: bool) -> str:
        if item is None:
            if name in ("override", "preset", "reset_generation"):
                return "-"
            if after and action == "set":  # set never removes: an explicit null
                return "none"
            return (
                "(removed)"
                if after and action in ("unset", "apply", "promote")
                else "-"
            )
        if name == "override" and isinstance(item, dict):
            mode = str(item.get("mode", "none"))
            why = f" ({item['reason']})" if item.get("reason") else ""
            until = f" until {when(item['until'])}" if item.get("until") else ""
            return f"{mode}{why}{until}"
        return value(name, item)

    return f"{key}: {show(old, after=False)} {ARROW} {show(new, after=True)}"


# -- list --------------------------------------------------------------------------


def _state_cell(view: BreakerView) -> Cell:
    states = view.states
    if not states:
        return Cell("-", "dim")
    worst = next(
        (
            s
            for s in ("forced_open", "open", "half_open", "forced_closed")
            if s in states
        ),
        next(iter(states)),
    )
    if len(states) == 1:
        return Cell(worst, STATE_STYLE.get(worst))
    text = ",".join(f"{s}:{len(ids)}" for s, ids in states.items())
    return Cell(text, STATE_STYLE.get(worst))


def _left(until: str | None) -> str:
    if until is None:
        return ""
    try:
        seconds = (datetime.fromisoformat(until) - datetime.now(UTC)).total_seconds()
    except ValueError:
        return ""
    return "(expired)" if seconds <= 0 else f"({age(seconds)})"


def _mode_cell(view: BreakerView) -> Cell:
    parts = []
    override = view.spec.override
    if override.mode != "none":
        parts.append(f"{override.mode}{_left(override.until)}")
    parts += [
        f"{s.override.mode}[{s.selector}]"
        for s in view.spec.scopes
        if s.override is not None and s.override.mode != "none"
    ]
    if not parts:
        return Cell("-", "dim")
    return Cell(",".join(parts), STATE_STYLE.get(override.mode, "bold red"))


def _applied_cell(view: BreakerView, notes: Footnotes) -> Cell:
    if view.spec.error is not None and (view.rejected or not view.instances):
        kept = sorted({i.observed_generation for i in view.rejected})
        on = (
            f"; instances keep generation {', '.join(map(str, kept))} (last good)"
            if kept
            else ""
        )
        note = notes.ref(
            f"{view.name}: generation {view.spec.generation} is invalid{on}: "
            f"{view.spec.error}"
        )
        return Cell(f"invalid{note}", "red")
    if not view.instances:
        return Cell("-", "dim")
    count = len(view.instances)
    style = "green" if view.applied == count else "yellow"
    return Cell(f"{view.applied}/{count}", style)


def _field_cell(view: BreakerView, field: str, notes: Footnotes) -> Cell:
    found = view.effective.get(field)
    text = "-" if found is None else value(field, found.value)
    difference = next((d for d in view.differences if d.field == field), None)
    if difference is None:
        return Cell(text)
    detail = "; ".join(
        f"{value(field, v)} from {s} on {', '.join(ids)}"
        for v, s, ids in difference.values
    )
    ref = notes.ref(f"{view.name}: {field} differs between instances: {detail}")
    return Cell(f"{text}*{ref}", "yellow")


def _notes_cell(view: BreakerView, notes: Footnotes) -> Cell:
    refs = []
    errors: dict[str, list[str]] = {}
    for item in view.instances:
        if item.error and not item.rejected:
            errors.setdefault(item.error, []).append(item.instance_id)
    for error, ids in errors.items():
        refs.append(notes.ref(f"{view.name} on {', '.join(ids)}: {error}"))
    late = [i.instance_id for i in view.instances if i.instance.liveness == "stale"]
    if late:
        refs.append(notes.ref(f"{view.name}: heartbeat late on {', '.join(late)}"))
    return Cell("".join(refs) or "-", "red" if errors else None)


def _rate_cell(view: BreakerView) -> Cell:
    rate = view.failure_rate
    return Cell("-" if rate is None else f"{rate:.1f}%")


LIST_COLUMNS = [
    Column("NAME", keep=True),
    Column("STATE", keep=True),
    Column("MODE", wrap=True, minimum=11),
    Column("APPLIED", minimum=7),
    Column("GEN", right=True, minimum=3, drop=2),
    Column("MAX-FAIL", minimum=4),
    Column("RESET", minimum=5, drop=3),
    Column("THRESHOLD", minimum=5, drop=5),
    Column("FAIL-RATE", minimum=5, drop=4),
    Column("NOTES", minimum=5),
]
WIDE_COLUMNS = [
    Column("PRESET", minimum=6),
    Column("SCOPES", wrap=True, minimum=8, split=False),
    Column("INSTANCES", wrap=True, minimum=12, split=False),
]


def _list_row(view: BreakerView, notes: Footnotes, *, wide: bool) -> list[Cell]:
    row = [
        Cell(view.name, "bold"),
        _state_cell(view),
        _mode_cell(view),
        _applied_cell(view, notes),
        Cell(str(view.spec.generation)),
        _field_cell(view, "max_failures", notes),
        _field_cell(view, "reset_timeout", notes),
        _field_cell(view, "failure_rate_threshold", notes),
        _rate_cell(view),
        _notes_cell(view, notes),
    ]
    if wide:
        chosen = view.spec.preset or next(
            (
                v.source.removeprefix("preset:").partition(" ")[0]
                for v in view.effective.values()
                if v.source.startswith("preset:")
            ),
            "-",
        )
        scopes = ",".join(s.selector for s in view.spec.scopes) or "-"
        instances = (
            ",".join(f"{i.instance_id}={i.state}" for i in view.instances) or "-"
        )
        row += [Cell(chosen), Cell(scopes), Cell(instances)]
    return row


def fleet_lines(
    fleet: FleetView, terminal: Terminal, *, wide: bool = False
) -> list[str]:
    """``cbctl list``: one row per breaker, footnotes, and lost instances."""
    notes = Footnotes()
    rows = [_list_row(view, notes, wide=wide) for view in fleet.breakers]
    columns = LIST_COLUMNS + (WIDE_COLUMNS if wide else [])
    lines = render_table(columns, rows, terminal)
    lines += _lost_lines(fleet.lost, terminal)
    if notes.notes:
        lines += ["", *notes.render(terminal)]
    return lines


def _lost_lines(lost: Iterable[Any], terminal: Terminal) -> list[str]:
    found = [
        f"{i.instance_id} (app {i.app}, host {i.host}, no heartbeat for "
        f"{age(i.heartbeat_age_s)})"
        for i in lost
    ]
    if not found:
        return []
    head = terminal.paint("lost instances (no heartbeat; listed for 5m):", "red")
    return ["", head, *(f"  {line}" for line in found)]


# -- get ---------------------------------------------------------------------------


def _header(view: BreakerView, terminal: Terminal, notes: Footnotes) -> list[str]:
    spec = view.spec
    rows: list[list[Cell | str]] = [["NAME", Cell(view.name, "bold")]]
    if not spec.exists:
        rows.append(["SPEC", "none (what instances run comes from presets, env, code)"])
    else:
        rows.append(
            [
                "SPEC",
                f"generation {spec.generation}, preset {spec.preset or '-'}",
            ]
        )
    applied = _applied_cell(view, notes)
    if view.instances:
        count = len(view.instances)
        text = f"{view.applied}/{count} instances applied generation {spec.generation}"
        if applied.text.startswith("invalid"):
            text = applied.text
        rows.append(["APPLIED", Cell(text, applied.style)])
    elif applied.text.startswith("invalid"):
        rows.append(["APPLIED", applied])
    else:
        rows.append(["APPLIED", "no live instance has this breaker"])
    override = spec.override
    if override.mode != "none":
        until = (
            f" until {when(override.until)} {_left(override.until)}"
            if override.until
            else ""
        )
        rows.append(
            [
                "OVERRIDE",
                Cell(
                    f"{override.mode} by {override.actor or '-'}{until}: "
                    f"{override.reason or '-'}",
                    STATE_STYLE.get(override.mode),
                ),
            ]
        )
    if spec.updated_by is not None:
        why = f": {spec.reason}" if spec.reason else ""
        rows.append(["CHANGED", f"{when(spec.updated_at)} by {spec.updated_by}{why}"])
    columns = [Column("FIELD", keep=True), Column("VALUE", wrap=True)]
    return render_table(columns, rows, terminal)[1:]  # no header line


def _config_lines(view: BreakerView, terminal: Terminal, notes: Footnotes) -> list[str]:
    if not view.effective:
        return ["(no effective config: no instance applied the spec yet)"]
    rows: list[list[Cell | str]] = []
    for field, item in view.effective.items():
        spec_value = view.spec.values.get(field)
        cell = _field_cell(view, field, notes)
        rows.append(
            [
                field,
                cell,
                item.source,
                "-" if field not in view.spec.values else value(field, spec_value),
            ]
        )
    columns = [
        Column("FIELD", keep=True),
        Column("VALUE", keep=True),
        Column("SOURCE", wrap=True, minimum=20),
        Column("SPEC", minimum=5),
    ]
    return render_table(columns, rows, terminal)


def _scope_sets(scope: Any) -> str:
    parts = [f"{k}={value(k, v)}" for k, v in scope.values.items()]
    if scope.preset:
        parts.append(f"preset={scope.preset}")
    if scope.override is not None and scope.override.mode != "none":
        why = f"({scope.override.reason})" if scope.override.reason else ""
        parts.append(f"override={scope.override.mode}{why}")
    if scope.reset_generation is not None:
        parts.append(f"reset={scope.reset_generation}")
    return ", ".join(parts) or "-"


def _scope_lines(view: BreakerView, terminal: Terminal) -> list[str]:
    if not view.spec.scopes:
        return []
    rows: list[list[Cell | str]] = [
        [
            Cell(scope.selector, "bold"),
            _scope_sets(scope),
            f"{len(scope.matching)}: {', '.join(scope.matching)}"
            if scope.matching
            else "0",
        ]
        for scope in view.spec.scopes
    ]
    columns = [
        Column("SCOPE", keep=True),
        Column("SETS", wrap=True, minimum=12),
        Column("INSTANCES", wrap=True, minimum=12),
    ]
    title = "scopes (above the breaker's own fields; the later wins):"
    return ["", title, *render_table(columns, rows, terminal)]


def _instance_rows(
    view: BreakerView, notes: Footnotes, *, wide: bool
) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for item in view.instances:
        stats = item.stats
        rate = stats.get("failure_rate")
        if item.rejected:
            applied = Cell("rejected", "red")
        elif item.applied:
            applied = Cell("yes", "green")
        else:
            applied = Cell("pending", "yellow")
        info = item.instance
        beat = Cell(
            f"{info.liveness}({age(info.heartbeat_age_s)})"
            if info.liveness != "live"
            else age(info.heartbeat_age_s),
            STATE_STYLE.get(info.liveness) if info.liveness != "live" else None,
        )
        row = [
            Cell(item.instance_id, "bold"),
            Cell(item.state, STATE_STYLE.get(item.state)),
            Cell(str(item.observed_generation)),
            applied,
            Cell(str(stats.get("calls", 0))),
            Cell("-" if rate is None else f"{rate:.1f}%"),
            Cell(str(stats.get("times_opened", 0))),
            beat,
            Cell(
                notes.ref(f"{item.instance_id}: {item.error}") if item.error else "-",
                "red",
            ),
        ]
        if wide:
            labels = ",".join(
                f"{k}={v}" for k, v in info.labels.items() if k != "instance"
            )
            row += [Cell(info.host), Cell(str(info.pid)), Cell(labels or "-")]
        rows.append(row)
    return rows


def get_lines(
    view: BreakerView, terminal: Terminal, *, wide: bool = False
) -> list[str]:
    """``cbctl get NAME``: the spec, the effective config, scopes, each instance."""
    notes = Footnotes()
    lines = _header(view, terminal, notes)
    lines += ["", *_config_lines(view, terminal, notes)]
    lines += _scope_lines(view, terminal)
    columns = [
        Column("INSTANCE", keep=True),
        Column("STATE", keep=True),
        Column("GEN", right=True, minimum=3),
        Column("APPLIED", minimum=7),
        Column("CALLS", right=True, minimum=5, drop=3),
        Column("FAIL-RATE", minimum=5, drop=1),
        Column("OPENED", right=True, minimum=6, drop=4),
        Column("HEARTBEAT", minimum=6, drop=2),
        Column("ERROR", minimum=5),
    ]
    if wide:
        columns += [
            Column("HOST", minimum=6),
            Column("PID"),
            Column("LABELS", wrap=True),
        ]
    if view.instances:
        lines += [
            "",
            *render_table(columns, _instance_rows(view, notes, wide=wide), terminal),
        ]
    else:
        lines += ["", "no live instance has this breaker"]
    lines += _lost_lines(view.lost, terminal)
    if notes.notes:
        lines += ["", *notes.render(terminal)]
    return lines


# -- other reads -------------------------------------------------------------------


def history_lines(records: list[HistoryRecord], terminal: Terminal) -> list[str]:
    """``cbctl history``: who changed what, when, why (oldest first)."""
    rows: list[list[Cell | str]] = [
        [
            when(r.at),
            Cell(r.actor or "-"),
            Cell(r.action),
            Cell(str(r.generation)),
            Cell(r.selector or "-"),
            Cell(r.reason or "-"),
            Cell(
                ", ".join(
                    describe_change(k, old, new, action=r.action)
                    for k, (old, new) in r.changes.items()
                )
                or "-"
            ),
        ]
        for r in records
    ]
    columns = [
        Column("AT", keep=True),
        Column("ACTOR", minimum=6),
        Column("ACTION", keep=True),
        Column("GEN", right=True, keep=True),
        Column("SELECTOR", wrap=True, minimum=8),
        Column("REASON", wrap=True, minimum=10),
        Column("CHANGES", wrap=True, minimum=20),
    ]
    return render_table(columns, rows, terminal)


def presets_lines(presets: list[PresetView], terminal: Terminal) -> list[str]:
    """``cbctl presets``: each preset and the fields it sets."""
    rows: list[list[Cell | str]] = [
        [
            Cell(p.name, "bold"),
            p.source,
            ", ".join(f"{k}={value(k, v)}" for k, v in p.values.items()) or "-",
        ]
        for p in presets
    ]
    columns = [
        Column("PRESET", keep=True),
        Column("SOURCE"),
        Column("VALUES", wrap=True),
    ]
    return render_table(columns, rows, terminal)


def explain_lines(found: FieldExplanation, terminal: Terminal) -> list[str]:
    """``cbctl explain FIELD``."""
    info = found.info
    presets = ", ".join(f"{n}={value(info.name, v)}" for n, v in found.presets.items())
    rows: list[list[Cell | str]] = [
        ["FIELD", Cell(info.name, "bold")],
        ["FLAG", info.flag],
        ["TYPE", info.kind + (" (nullable)" if info.nullable else "")],
        ["DEFAULT", value(info.name, info.default)],
        ["UNIT", info.unit or "-"],
        ["RULE", info.rule],
        ["PRESETS", presets or "none sets it"],
        ["HELP", info.help],
    ]
    columns = [Column("KEY", keep=True), Column("VALUE", wrap=True, minimum=20)]
    return render_table(columns, rows, terminal)[1:]


def doctor_lines(report: DoctorReport, terminal: Terminal) -> list[str]:
    """``cbctl doctor``: each check, and the findings behind it (each once)."""
    styles = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}
    rows: list[list[Cell | str]] = [
        [Cell(c.check, "bold"), Cell(c.status, styles[c.status]), c.detail]
        for c in report.checks
    ]
    columns = [
        Column("CHECK", keep=True),
        Column("STATUS", keep=True),
        Column("DETAIL", wrap=True),
    ]
    lines = render_table(columns, rows, terminal)
    for check in report.checks:
        if check.items:
            lines += ["", f"{check.check}:"]
            notes = Footnotes()
            for item in check.items:
                notes.ref(item)
            lines += notes.render(terminal, indent="  ")
    return lines


# -- writes and documents ----------------------------------------------------------


def result_lines(result: ChangeResult) -> list[str]:
    """What a write did and how far it was applied."""
    target = f"{result.name} [{result.selector}]" if result.selector else result.name
    if not result.changed:
        return [f"{target} unchanged (generation {result.generation})"]
    changes = ", ".join(
        describe_change(k, o, n, action=result.action)
        for k, (o, n) in result.changes.items()
    )
    verb = "would be generation" if result.dry_run else "generation"
    lines = [f"{target}: {verb} {result.generation} ({changes})"]
    lines += [f"note: {note}" for note in result.notes]
    ack = result.ack
    if result.dry_run:
        lines.append("dry run: nothing written")
    elif ack is None:
        pass
    elif ack.instances == 0:
        concerned = "matching " if result.selector else ""
        lines.append(f"no live {concerned}instance has breaker {result.name} yet")
    else:
        which = "matching instance" if result.selector else "instance"
        applied = f"applied on {ack.applied}/{plural(ack.instances, which)}"
        if result.selector:
            applied += f", {ack.live} live,"
        timing = (
            f" in {result.elapsed_s * 1000:.0f} ms"
            if result.waited
            else " (not waited for)"
        )
        lines.append(applied + timing)
    return lines


def plan_lines(plan: Plan) -> list[str]:
    """A document's diff, per preset and breaker, field by field."""
    if not plan:
        return ["no changes"]
    lines = []
    for item in plan.items:
        sign = "+" if item.created else "~"
        lines.append(f"{sign} {item.kind} {item.name}")
        lines += [
            f"    {describe_change(k, old, new, action='apply')}"
            for k, (old, new) in item.changes.items()
        ]
        lines += [f"    note: {n}" for n in item.notes]
    return lines


# -- watch -------------------------------------------------------------------------


def event_line(event: Event) -> str:
    """One event, as a line: when, what, where, from → to, who, why."""
    where = " ".join(x for x in (event.breaker, event.instance) if x)
    if event.kind == "state":
        why = f" ({event.reason})" if event.reason else ""
        body = f"{event.old} {ARROW} {event.new}{why}"
    elif event.kind == "spec":
        who = f" by {event.actor}" if event.actor else ""
        why = f": {event.reason}" if event.reason else ""
        what = f" ({event.detail})" if event.detail else ""
        body = f"generation {event.old} {ARROW} {event.new}{who}{why}{what}"
    elif event.kind == "applied":
        body = f"generation {event.new} applied on {event.detail}"
    elif event.kind == "rejected":
        body = f"rejected generation {event.new}: {event.detail}"
    elif event.kind == "store":
        why = f" ({event.detail})" if event.detail else ""
        body = f"store {event.old} {ARROW} {event.new}{why}"
    else:
        body = f"instance {event.old or 'new'} {ARROW} {event.new}"
    return f"{when(event.at)}  {event.kind:<8} {where}: {body}"


def _override_text(view: BreakerView, item: InstanceView) -> str:
    """The override in force on an instance: mode, who, until when, why."""
    if item.mode == "none":
        return "-"
    spec = view.spec
    scoped = next(
        (
            s
            for s in reversed(spec.scopes)
            if item.instance_id in s.matching and s.override is not None
        ),
        None,
    )
    source = (
        spec.override if scoped is None or scoped.override is None else scoped.override
    )
    until = f" until {when(source.until)}" if source.until else ""
    why = item.override_reason or source.reason or "-"
    return f"{item.mode} by {source.actor or '-'}{until}: {why}"


def _watch_row(view: BreakerView, item: InstanceView) -> list[Cell]:
    rate = item.stats.get("failure_rate")
    if item.applied:
        applied = Cell("yes", "green")
    else:
        applied = Cell("rejected" if item.rejected else "pending", "yellow")
    return [
        Cell(view.name, "bold"),
        Cell(item.instance_id),
        Cell(item.state, STATE_STYLE.get(item.state)),
        Cell(str(item.observed_generation)),
        applied,
        Cell("-" if rate is None else f"{rate:.1f}%"),
        Cell(_override_text(view, item), STATE_STYLE.get(item.mode)),
    ]


def _wrapped(text: str, terminal: Terminal, indent: int = 0) -> list[str]:
    """``text`` wrapped to the terminal (as it is, piped)."""
    if terminal.width is None:
        return [text]
    import textwrap

    wrapped = textwrap.wrap(
        text,
        width=terminal.width,
        subsequent_indent=" " * indent,
        break_on_hyphens=False,
    )
    return wrapped or [""]


EVENTS_SHOWN = 10
"""How many of the latest events ``cbctl watch`` draws on a terminal."""


def watch_lines(
    fleet: FleetView,
    events: Iterable[tuple[float, Event]],
    terminal: Terminal,
    *,
    now: float,
    fresh_s: float = 5.0,
) -> list[str]:
    """``cbctl watch`` on a terminal: who is in which state, and the latest events."""
    live = sum(1 for i in fleet.instances if i.liveness == "live")
    late = sum(1 for i in fleet.instances if i.liveness == "stale")
    lost = len(fleet.lost)
    clock = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    head = (
        f"cbctl watch · {fleet.store} · {live} live, {late} late, {lost} lost · {clock}"
        " · Ctrl-C to quit"
    )
    lines = [terminal.paint(line, "bold") for line in _wrapped(head, terminal)]
    if fleet.stale is not None:
        stale = f"STALE: the store fails ({fleet.stale})"
        lines += [
            terminal.paint(line, "bold red") for line in _wrapped(stale, terminal)
        ]
    notes = Footnotes()
    rows: list[list[Cell]] = []
    for view in fleet.breakers:
        if not view.instances:
            rows.append(
                [
                    Cell(view.name, "bold"),
                    Cell("-"),
                    Cell("-", "dim"),
                    Cell(str(view.spec.generation)),
                    _applied_cell(view, notes),
                    Cell("-"),
                    _mode_cell(view),
                ]
            )
        rows += [_watch_row(view, item) for item in view.instances]
    columns = [
        Column("BREAKER", keep=True),
        Column("INSTANCE", keep=True),
        Column("STATE", keep=True),
        Column("GEN", right=True, minimum=3, drop=2),
        Column("APPLIED", minimum=7, drop=3),
        Column("FAIL-RATE", minimum=5, drop=1),
        Column("OVERRIDE", wrap=True, minimum=10),
    ]
    lines += render_table(columns, rows, terminal)
    lines += _lost_lines(fleet.lost, terminal)
    if notes.notes:
        lines += ["", *notes.render(terminal)]
    latest = list(events)[-EVENTS_SHOWN:]
    if latest:
        lines += ["", terminal.paint("events:", "bold")]
        for seen, event in latest:
            style = "reverse" if now - seen < fresh_s else None
            lines += [
                terminal.paint(line, style)
                for line in _wrapped(event_line(event), terminal, indent=22)
            ]
    return lines
