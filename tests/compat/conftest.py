"""Each compat test registers its breakers with a fresh default plane."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cbcontrol.compat import _registry

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def fresh_default_plane() -> Iterator[None]:
    """Close the process-default plane around each test, as a new process would."""
    _registry.close_default_plane()
    yield
    _registry.close_default_plane()
