"""The one message for an optional dependency that is not installed."""

from __future__ import annotations

__all__ = ["missing_extra"]


def missing_extra(*, feature: str, package: str, extra: str) -> ImportError:
    """
    The error to raise (``from`` the original) when ``package`` cannot be imported.

    Args:
        feature: What needs it, as a user calls it (``"the httpx integration"``).
        package: The import that failed (``"httpx"``).
        extra: The cbcontrol extra that installs it (``"http"``).
    """
    msg = (
        f"{feature} needs {package}, which is not installed; "
        f"run `pip install 'cbcontrol[{extra}]'`"
    )
    return ImportError(msg, name=package)
