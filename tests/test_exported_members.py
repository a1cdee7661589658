"""Every public module's `__all__` is sorted and names exactly its public members."""

from __future__ import annotations

import importlib
import types
from pathlib import Path

import pytest

import cbcontrol

# Public modules that must always exist; any other module or package of cbcontrol whose
# dotted path has no component starting with "_" is public too and is found below.
REQUIRED_PUBLIC_MODULES = ("cbcontrol", "cbcontrol.exceptions")

# Names that tooling puts into a module's namespace without making them API.
NOT_API = frozenset({"annotations", "TYPE_CHECKING"})


def _discover_public_modules() -> list[str]:
    found = set(REQUIRED_PUBLIC_MODULES)
    for root in map(Path, cbcontrol.__path__):
        for path in root.rglob("*.py"):
            relative = path.relative_to(root)
            parts = relative.with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            dirs = relative.parent.parts
            # Skip modules in directories that are not (yet) regular packages.
            in_package = all(
                (root.joinpath(*dirs[:depth]) / "__init__.py").is_file()
                for depth in range(1, len(dirs) + 1)
            )
            if in_package and not any(part.startswith("_") for part in parts):
                found.add(".".join(("cbcontrol", *parts)))
    return sorted(found)


def _public_members(module: types.ModuleType) -> list[str]:
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and name not in NOT_API
        and not isinstance(value, types.ModuleType)
    )


def _isort_style(name: str) -> tuple[int, str]:
    # ruff RUF022: SCREAMING_CASE constants, then CamelCase classes, then the rest.
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


PUBLIC_MODULES = _discover_public_modules()


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_all_is_sorted(module_name: str):
    """A public module's `__all__` lists unique names in ruff's isort-style order."""
    exported = list(getattr(importlib.import_module(module_name), "__all__", []))

    assert sorted(set(exported), key=_isort_style) == exported


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_all_matches_public_members(module_name: str):
    """A public module exports exactly its public names, and each one resolves."""
    module = importlib.import_module(module_name)
    # A module without `__all__` passes only if it has no public names at all.
    exported = sorted(getattr(module, "__all__", []))
    # Packages import their members on first use (PEP 562): resolve each one first.
    missing = [name for name in exported if not hasattr(module, name)]

    assert [] == missing
    assert _public_members(module) == exported
