"""The CLI, the examples and the benchmarks use only the public API of cbcontrol."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT_DIRS = ("cli", "examples", "bench")


def _is_private(dotted: str) -> bool:
    parts = dotted.split(".")
    return parts[0] == "cbcontrol" and any(part.startswith("_") for part in parts[1:])


def _private_imports(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    where = path.relative_to(root).as_posix()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            dotted = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from cbcontrol import _x` reaches a private module just the same.
            dotted = [node.module]
            if not _is_private(node.module):
                dotted += [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.extend(
            f"{where}:{node.lineno}: {name}" for name in dotted if _is_private(name)
        )
    return found


def _client_files() -> list[Path]:
    return sorted(
        path
        for directory in CLIENT_DIRS
        if (ROOT / directory).is_dir()
        for path in (ROOT / directory).rglob("*.py")
    )


def test_clients_import_no_private_cbcontrol_module():
    """No file under cli/, examples/ or bench/ imports from `cbcontrol._*`."""
    offenders = [line for path in _client_files() for line in _private_imports(path)]

    assert [] == offenders


def test_scan_covers_the_cli():
    """The scan sees the CLI's own modules, so the check above is not vacuous."""
    scanned = {path.relative_to(ROOT).as_posix() for path in _client_files()}

    assert "cli/cbctl/_app.py" in scanned


def test_private_imports_are_reported_with_location(tmp_path: Path):
    """Each private import is reported as `file:line: module`, in every import form."""
    script = tmp_path / "examples" / "leaky.py"
    script.parent.mkdir()
    script.write_text(
        "import cbcontrol\n"
        "import cbcontrol._breaker\n"
        "from cbcontrol._state import State\n"
        "from cbcontrol import _clock, BreakerConfig\n"
        "from cbcontrol.config._models import X\n"
        "from . import _local\n",
        encoding="utf-8",
    )

    assert [
        "examples/leaky.py:2: cbcontrol._breaker",
        "examples/leaky.py:3: cbcontrol._state",
        "examples/leaky.py:4: cbcontrol._clock",
        "examples/leaky.py:5: cbcontrol.config._models",
    ] == _private_imports(script, root=tmp_path)
