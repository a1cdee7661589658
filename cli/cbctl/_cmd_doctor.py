"""``cbctl doctor``: is the store reachable and healthy, and is the fleet?"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from cbctl._errors import CliError, boundary
from cbctl._options import OutputOption, ReasonOption
from cbctl._render import emit
from cbctl._session import actor, open_store

if TYPE_CHECKING:
    from rich.table import Table

    from cbcontrol import ControlStore
    from cbcontrol.store import StoreView

__all__ = ["doctor"]

Status = Literal["ok", "warn", "fail", "skip"]
WRITE_TEST_PRESET = "cbctl-doctor"
"""The preset ``--write-test`` writes (a harmless preset no breaker uses)."""
_SKEW_WARN_S = 1.0
_LISTED = 20
_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the doctor's report."""

    check: str
    status: Status
    detail: str


def _ms(start: float) -> str:
    return f"{(time.perf_counter() - start) * 1000:.0f} ms"


def _reach(store: ControlStore) -> tuple[list[Check], StoreView | None]:
    """Read specs, presets and instances; stop at the first failure."""
    from cbcontrol.exceptions import StoreAuthError, StoreError

    url = str(store.url)
    checks = []
    start = time.perf_counter()
    try:
        view = store.view()
    except StoreAuthError as exc:
        checks.append(Check("auth", "fail", str(exc)))
        return checks, None
    except StoreError as exc:
        checks.append(Check("store", "fail", str(exc)))
        return checks, None
    checks.append(Check("store", "ok", f"{url} answered in {_ms(start)}"))
    detail = (
        f"read {len(view.specs)} breaker specs, {len(view.presets)} presets and "
        f"{len(view.instances)} instance statuses"
    )
    checks.append(Check("read", "ok", detail))
    return checks, view


def _write_test(store: ControlStore) -> Check:
    from cbcontrol.exceptions import StoreError

    current = store.store_presets().get(WRITE_TEST_PRESET)
    value = 2 if current and current.config_values().get("max_failures") == 1 else 1
    start = time.perf_counter()
    try:
        store.put_preset(WRITE_TEST_PRESET, {"max_failures": value})
    except StoreError as exc:
        return Check("write", "fail", str(exc))
    return Check("write", "ok", f"wrote preset {WRITE_TEST_PRESET} in {_ms(start)}")


def _versions(instances: list[dict[str, Any]]) -> Check:
    import cbcontrol

    mine = cbcontrol.__version__
    seen = Counter(str(s["version"]) for s in instances)
    listed = ", ".join(f"{v} ({n})" for v, n in sorted(seen.items())) or "none"
    others = set(seen) - {mine}
    status: Status = "warn" if others else "ok"
    return Check(
        "versions", status, f"cbctl uses cbcontrol {mine}; instances: {listed}"
    )


def _instances(instances: list[dict[str, Any]]) -> Check:
    if not instances:
        return Check("instances", "warn", "no live instance reports to this store")
    apps = Counter(str(s["app"]) for s in instances)
    listed = ", ".join(f"{a} ({n})" for a, n in sorted(apps.items()))
    return Check("instances", "ok", f"{len(instances)} live ({listed})")


def _skew(instances: list[dict[str, Any]]) -> Check:
    """A status written in the future means that instance's clock is ahead of ours."""
    now = datetime.now(UTC)
    times = []
    for status in instances:
        with contextlib.suppress(TypeError, ValueError):
            written = datetime.fromisoformat(str(status["heartbeat_at"]))
            times.append(((written - now).total_seconds(), status["instance_id"]))
    if not times:
        return Check("clock skew", "skip", "no instance to compare with")
    seconds, ahead = max(times)
    if seconds > _SKEW_WARN_S:
        detail = (
            f"{ahead} is {seconds:.1f} s ahead of this host "
            "(override expiry with --for depends on clocks)"
        )
        return Check("clock skew", "warn", detail)
    return Check("clock skew", "ok", "no instance clock is ahead of this host")


def _history(view: StoreView) -> Check:
    """Instances that hold their desired state because the store went backwards."""
    holding = [
        s["instance_id"]
        for s in view.instances
        if (s.get("health") or {}).get("history_backwards")
    ]
    if not holding:
        return Check("history", "ok", "no instance saw the store's history go back")
    reason = next(
        (s["errors"].get("store/history") for s in view.instances if s["errors"]),
        None,
    )
    detail = (
        f"{len(holding)} instance(s) keep their desired state because the store's "
        f"history went backwards ({', '.join(holding[:5])}): {reason or ''} "
        "Restore the store from its latest backup, or accept it as it is: "
        "cbctl doctor --accept-history --reason '...'"
    )
    return Check("history", "fail", detail)


def _config_errors(view: StoreView) -> Check:
    problems = [
        f"breakers/{n}: {s.error}" for n, s in sorted(view.specs.items()) if s.error
    ]
    problems += [f"{key}: {error}" for key, error in sorted(view.invalid.items())]
    for status in view.instances:
        problems += [
            f"{status['instance_id']} {k}: {v}"
            for k, v in status["errors"].items()
            if k != "store/history"
        ]
    if problems:
        shown = "; ".join(problems[:_LISTED])
        extra = len(problems) - _LISTED
        more = f"; and {extra} more" if extra > 0 else ""
        return Check("config errors", "fail", shown + more)
    return Check("config errors", "ok", "no stored spec or instance reports an error")


def _table(checks: list[Check]) -> Table:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table("CHECK", "STATUS", "DETAIL", box=box.SIMPLE_HEAD, show_edge=False)
    for check in checks:
        style = _STYLE[check.status]
        table.add_row(check.check, f"[{style}]{check.status}[/]", escape(check.detail))
    return table


@boundary
def doctor(
    ctx: typer.Context,
    *,
    write_test: Annotated[
        bool,
        typer.Option(
            "--write-test",
            help=f"Check write permission too, by writing preset {WRITE_TEST_PRESET}.",
        ),
    ] = False,
    accept_history: Annotated[
        bool,
        typer.Option(
            "--accept-history",
            help=(
                "Accept the store as it is after its history went backwards (wiped "
                "or restored): every instance applies its state again."
            ),
        ),
    ] = False,
    reason: ReasonOption = None,
    output: OutputOption = "table",
) -> None:
    """
    Check the store and the fleet; exit 1 if a check fails.

    Reachability and latency, auth and read permission (write permission with
    [bold]--write-test[/]), cbcontrol versions, live instances, clock skew between
    instances and this host, instances that keep their desired state because the
    store's history went backwards ([bold]--accept-history[/] accepts the store as it
    is), and config errors reported by the store or instances.
    """
    with open_store(ctx) as store:
        url = str(store.url)
        if accept_history:
            epoch = store.accept_history(actor=actor(), reason=reason)
            sys.stderr.write(f"accepted {url} as it is (epoch {epoch})\n")
        checks, view = _reach(store)
        if view is not None:
            checks.append(
                _write_test(store)
                if write_test
                else Check("write", "skip", "not tested (--write-test writes a preset)")
            )
            checks += [
                _versions(view.instances),
                _instances(view.instances),
                _skew(view.instances),
                _history(view),
                _config_errors(view),
            ]
    failed = [c for c in checks if c.status == "fail"]
    data = {
        "store": url,
        "ok": not failed,
        "checks": [dataclasses.asdict(c) for c in checks],
    }
    emit(data, output, lambda: _table(checks))
    if failed:
        raise CliError("; ".join(f"{c.check}: {c.detail}" for c in failed))
