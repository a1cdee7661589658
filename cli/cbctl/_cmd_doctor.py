"""``cbctl doctor``: is the store reachable and healthy, and is the fleet?"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from cbctl._errors import CliError, boundary
from cbctl._options import OutputOption
from cbctl._render import emit
from cbctl._session import open_store

if TYPE_CHECKING:
    from rich.table import Table

    from cbcontrol import ControlStore
    from cbcontrol.config import InstanceStatus

__all__ = ["doctor"]

Status = Literal["ok", "warn", "fail", "skip"]
WRITE_TEST_PRESET = "cbctl-doctor"
"""The preset ``--write-test`` writes (a harmless preset no breaker uses)."""
_SKEW_WARN_S = 1.0
_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the doctor's report."""

    check: str
    status: Status
    detail: str


def _ms(start: float) -> str:
    return f"{(time.perf_counter() - start) * 1000:.0f} ms"


def _reach(store: ControlStore) -> tuple[list[Check], Any]:
    """Read specs, presets and instances; stop at the first failure."""
    from cbcontrol.exceptions import StoreAuthError, StoreError

    url = str(store.url)
    checks = []
    start = time.perf_counter()
    try:
        specs = store.breakers()
        checks.append(Check("store", "ok", f"{url} answered in {_ms(start)}"))
        start = time.perf_counter()
        store.store_presets()
        instances = store.instances()
    except StoreAuthError as exc:
        checks.append(Check("auth", "fail", str(exc)))
        return checks, None
    except StoreError as exc:
        checks.append(Check("store", "fail", str(exc)))
        return checks, None
    detail = (
        f"read {len(specs)} breaker specs, presets and {len(instances)} instance "
        f"statuses in {_ms(start)}"
    )
    checks.append(Check("read", "ok", detail))
    return checks, (specs, instances)


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


def _versions(instances: list[InstanceStatus]) -> Check:
    import cbcontrol

    mine = cbcontrol.__version__
    seen = Counter(s.version for s in instances)
    listed = ", ".join(f"{v} ({n})" for v, n in sorted(seen.items())) or "none"
    others = set(seen) - {mine}
    status: Status = "warn" if others else "ok"
    return Check(
        "versions", status, f"cbctl uses cbcontrol {mine}; instances: {listed}"
    )


def _instances(instances: list[InstanceStatus]) -> Check:
    if not instances:
        return Check("instances", "warn", "no live instance reports to this store")
    apps = Counter(s.app for s in instances)
    listed = ", ".join(f"{a} ({n})" for a, n in sorted(apps.items()))
    return Check("instances", "ok", f"{len(instances)} live ({listed})")


def _skew(instances: list[InstanceStatus]) -> Check:
    """A heartbeat from the future means that instance's clock is ahead of ours."""
    if not instances:
        return Check("clock skew", "skip", "no instance to compare with")
    now = datetime.now(UTC)
    ahead = max(instances, key=lambda s: s.heartbeat_at)
    seconds = (ahead.heartbeat_at - now).total_seconds()
    if seconds > _SKEW_WARN_S:
        detail = (
            f"{ahead.instance_id} is {seconds:.1f} s ahead of this host "
            "(override expiry with --for depends on clocks)"
        )
        return Check("clock skew", "warn", detail)
    return Check("clock skew", "ok", "no instance clock is ahead of this host")


def _config_errors(specs: dict[str, Any], instances: list[InstanceStatus]) -> Check:
    problems = [f"breakers/{n}: {s.error}" for n, s in sorted(specs.items()) if s.error]
    for status in instances:
        problems += [f"{status.instance_id} {k}: {v}" for k, v in status.errors.items()]
    if problems:
        return Check("config errors", "fail", "; ".join(problems))
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
    output: OutputOption = "table",
) -> None:
    """
    Check the store and the fleet; exit 1 if a check fails.

    Reachability and latency, auth and read permission (write permission with
    [bold]--write-test[/]), cbcontrol versions, live instances, clock skew between
    instances and this host, and config errors reported by the store or instances.
    """
    with open_store(ctx) as store:
        url = str(store.url)
        checks, read = _reach(store)
        if read is not None:
            specs, instances = read
            checks.append(
                _write_test(store)
                if write_test
                else Check("write", "skip", "not tested (--write-test writes a preset)")
            )
            checks += [
                _versions(instances),
                _instances(instances),
                _skew(instances),
                _config_errors(specs, instances),
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
