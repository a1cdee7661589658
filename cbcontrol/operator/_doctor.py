"""
``doctor``: is the store reachable and healthy, and is the fleet? As data.

Each check says ``ok``, ``warn``, ``fail`` or ``skip`` with one line of detail, and
the items behind it (each error once, with the instances that report it). The write
test writes a preset and removes it again: the store is left as it was found.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from cbcontrol.exceptions import StoreAuthError, StoreError

if TYPE_CHECKING:
    from cbcontrol.operator._views import FleetView
    from cbcontrol.store._control import ControlStore, StoreView

__all__ = ["WRITE_TEST_PRESET", "Check", "DoctorReport", "run_checks"]

CheckStatus = Literal["ok", "warn", "fail", "skip"]
WRITE_TEST_PRESET = "cbctl-doctor"
"""The preset the write test writes, then removes."""
_SKEW_WARN_S = 1.0
_LISTED = 5


@dataclass(frozen=True, slots=True)
class Check:
    """
    One line of the doctor's report.

    Attributes:
        check: What was checked (``store``, ``instances``, ``config errors``, ...).
        status: ``ok``, ``warn``, ``fail`` or ``skip``.
        detail: The finding, in one line.
        items: The findings behind it, one each (errors, instances).

    .. versionadded:: 0.3.0
    """

    check: str
    status: CheckStatus
    detail: str
    items: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """``{"check", "status", "detail", "items"}``."""
        return {
            "check": self.check,
            "status": self.status,
            "detail": self.detail,
            "items": list(self.items),
        }


@dataclass(frozen=True, slots=True)
class DoctorReport:
    """
    Every check of a store and its fleet.

    .. versionadded:: 0.3.0
    """

    store: str
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """No check failed."""
        return all(c.status != "fail" for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        """``{"store", "ok", "checks": [...]}``."""
        return {
            "store": self.store,
            "ok": self.ok,
            "checks": [c.to_json() for c in self.checks],
        }


def _ms(start: float) -> str:
    return f"{(time.perf_counter() - start) * 1000:.0f} ms"


def _write_test(store: ControlStore) -> Check:
    start = time.perf_counter()
    try:
        store.put_preset(WRITE_TEST_PRESET, {"max_failures": 1})
        store.delete_preset(WRITE_TEST_PRESET)
    except StoreError as exc:
        return Check("write", "fail", str(exc))
    detail = f"wrote and removed preset {WRITE_TEST_PRESET} in {_ms(start)}"
    return Check("write", "ok", detail)


def _versions(fleet: FleetView, mine: str) -> Check:
    seen: dict[str, int] = {}
    for info in fleet.instances:
        seen[info.version] = seen.get(info.version, 0) + 1
    listed = ", ".join(f"{v} ({n})" for v, n in sorted(seen.items())) or "none"
    status: CheckStatus = "warn" if set(seen) - {mine} else "ok"
    return Check(
        "versions", status, f"this tool uses cbcontrol {mine}; instances: {listed}"
    )


def _instances(fleet: FleetView) -> Check:
    live = [i for i in fleet.instances if i.liveness == "live"]
    late = [i for i in fleet.instances if i.liveness == "stale"]
    lost = [i for i in fleet.instances if i.liveness == "lost"]
    if not fleet.instances:
        return Check("instances", "warn", "no instance reports to this store")
    apps: dict[str, int] = {}
    for info in live:
        apps[info.app] = apps.get(info.app, 0) + 1
    detail = (
        f"{len(live)} live ({', '.join(f'{a} {n}' for a, n in sorted(apps.items()))})"
    )
    items = [
        f"{i.instance_id}: heartbeat {i.heartbeat_age_s:.0f}s late" for i in late
    ] + [f"{i.instance_id}: lost {i.heartbeat_age_s:.0f}s ago" for i in lost]
    if late or lost:
        detail += f"; {len(late)} late, {len(lost)} lost"
        return Check("instances", "warn", detail, tuple(items))
    return Check("instances", "ok", detail)


def _skew(fleet: FleetView) -> Check:
    """A status written in the future means that instance's clock is ahead of ours."""
    now = datetime.now(UTC)
    times = []
    for info in fleet.instances:
        try:
            written = datetime.fromisoformat(str(info.heartbeat_at))
        except (TypeError, ValueError):
            continue
        times.append(((written - now).total_seconds(), info.instance_id))
    if not times:
        return Check("clock skew", "skip", "no instance to compare with")
    seconds, ahead = max(times)
    if seconds > _SKEW_WARN_S:
        detail = (
            f"{ahead} is {seconds:.1f}s ahead of this host (override expiry with "
            "--for depends on clocks)"
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
    detail = (
        f"{len(holding)} instance(s) keep their desired state because the store's "
        "history went backwards; restore the store from its latest backup, or "
        "accept it as it is: cbctl doctor --accept-history --reason '...'"
    )
    reasons = {
        s["errors"]["store/history"]
        for s in view.instances
        if "store/history" in (s.get("errors") or {})
    }
    return Check("history", "fail", detail, (*sorted(reasons), *holding[:_LISTED]))


def _config_errors(view: StoreView, fleet: FleetView) -> Check:
    """Each error once, with the instances that report it."""
    found: dict[str, list[str]] = {}
    for name, spec in sorted(view.specs.items()):
        if spec.read_error:
            found.setdefault(f"breakers/{name}: {spec.read_error}", [])
    for key, error in sorted(view.invalid.items()):
        found.setdefault(f"{key}: {error}", [])
    for info in fleet.instances:
        for key, error in sorted(info.errors.items()):
            if key != "store/history":
                found.setdefault(f"{key}: {error}", []).append(info.instance_id)
    if not found:
        return Check("config errors", "ok", "no stored spec or instance reports one")
    items = []
    for message, ids in found.items():
        who = ""
        if ids:
            shown = ", ".join(ids[:_LISTED])
            more = f" and {len(ids) - _LISTED} more" if len(ids) > _LISTED else ""
            who = f" (reported by {shown}{more})"
        items.append(message + who)
    return Check("config errors", "fail", f"{len(found)} error(s)", tuple(items))


def _differences(fleet: FleetView) -> Check:
    items = [
        f"{b.name}.{d.field}: "
        + "; ".join(
            f"{v!r} from {s} on {', '.join(ids[:_LISTED])}" for v, s, ids in d.values
        )
        for b in fleet.breakers
        for d in b.differences
    ]
    if not items:
        return Check("differences", "ok", "every instance runs the same config")
    detail = f"{len(items)} field(s) differ between instances"
    return Check("differences", "warn", detail, tuple(items))


def run_checks(
    store: ControlStore,
    fleet_of: Any,
    version: str,
    *,
    write_test: bool = False,
) -> DoctorReport:
    """
    Check a store and its fleet.

    Args:
        store: The store.
        fleet_of: Builds the fleet view of a store view.
        version: This library's version.
        write_test: Write (and remove) a preset to check write permission.
    """
    url = str(store.url)
    start = time.perf_counter()
    try:
        view = store.view()
    except StoreAuthError as exc:
        return DoctorReport(url, (Check("auth", "fail", str(exc)),))
    except StoreError as exc:
        return DoctorReport(url, (Check("store", "fail", str(exc)),))
    checks = [Check("store", "ok", f"{url} answered in {_ms(start)}")]
    checks.append(
        Check(
            "read",
            "ok",
            f"read {len(view.specs)} breaker specs, {len(view.presets)} presets and "
            f"{len(view.instances)} instances",
        )
    )
    checks.append(
        _write_test(store)
        if write_test
        else Check("write", "skip", "not tested (--write-test writes a preset)")
    )
    fleet: FleetView = fleet_of(view)
    checks += [
        _versions(fleet, version),
        _instances(fleet),
        _skew(fleet),
        _history(view),
        _config_errors(view, fleet),
        _differences(fleet),
    ]
    return DoctorReport(url, tuple(checks))
