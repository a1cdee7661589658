"""The process's default control plane, and the cbcontrol breakers behind the shims."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cbcontrol._breaker import CircuitBreaker
    from cbcontrol._plane import ControlPlane

__all__ = ["backing_breaker", "close_default_plane", "default_plane", "retune"]

logger = logging.getLogger("cbcontrol.compat")

_lock = threading.Lock()
_plane: ControlPlane | None = None


def default_plane() -> ControlPlane:
    """The plane the shims register with: ``cbcontrol.connect()``, made once."""
    global _plane  # noqa: PLW0603 - one plane per process, made on first use
    with _lock:
        if _plane is None:
            from cbcontrol._plane import connect

            _plane = connect()
        return _plane


def close_default_plane() -> None:
    """Close the default plane; the next shim breaker connects a new one (tests)."""
    global _plane
    with _lock:
        plane, _plane = _plane, None
    if plane is not None:
        plane.close()


def backing_breaker(
    name: str | None, code: Mapping[str, object], **options: Any
) -> tuple[CircuitBreaker, ControlPlane | None]:
    """
    The cbcontrol breaker behind a shim.

    A named breaker is the plane's, live-configured with ``code`` as its code layer.
    An unnamed one, or one whose name another breaker of the process holds already
    (two objects of the old library may share a name; they never shared state), is
    private to the shim: it keeps the old library's behaviour but cbctl cannot see it.
    Returns the breaker and the plane it belongs to, if any.
    """
    if name is not None:
        plane = default_plane()
        try:
            return plane.breaker(name, code=code, **options), plane
        except ValueError:
            logger.warning(
                "a breaker named %r exists already in this process; this one is not "
                "registered with the control plane (give it its own name)",
                name,
            )
    from cbcontrol._breaker import CircuitBreaker
    from cbcontrol.config import BreakerConfig

    config = BreakerConfig.model_validate(dict(code))
    return CircuitBreaker(name or "unnamed", config, **options), None


def retune(
    breaker: CircuitBreaker, plane: ControlPlane | None, code: Mapping[str, object]
) -> None:
    """Apply a shim's new code values: through its plane, else to the breaker."""
    if plane is not None:
        plane.set_code(breaker.name, code)
    else:
        breaker.reconfigure(breaker.config.with_changes(**code))
