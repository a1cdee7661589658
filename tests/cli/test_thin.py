"""cbctl is a thin client: nothing under cli/ merges, resolves or validates config."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "cli" / "cbctl"

ALLOWED = {
    "cbcontrol": {"Ack", "ConfigError", "HistoryRecord"},
    "cbcontrol.config": {
        "FIELDS",
        "MAX_FILE_BYTES",
        "format_duration",
        "format_value",
        "json_schema",
        "parse_duration",
        "parse_text",
    },
    "cbcontrol.exceptions": {"BreakerNotFoundError", "CBControlError"},
    "cbcontrol.store": {"NAME_RULE", "is_name"},
}
"""What cbctl may take from the library besides the operator API: errors, types,
the field catalog and the formats of values; nothing that merges or validates."""

FORBIDDEN_NAMES = {
    "BUILTIN_PRESETS",
    "BreakerConfig",
    "BreakerSpec",
    "ConfigBuilder",
    "ConfigDocument",
    "ControlStore",
    "PRECEDENCE",
    "PresetSpec",
    "commit_spec",
    "load_spec",
    "model_dump",
    "model_validate",
    "open_store",
    "wait_applied",
}
"""Names whose use would mean cbctl resolves, validates or writes on its own."""


def _imports(tree: ast.AST) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def _offences() -> list[str]:
    offences = []
    for path in sorted(CLI.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for module, name in _imports(tree):
            root = module.split(".")[0]
            if root == "pydantic":
                offences.append(f"{path.name}: imports pydantic")
            if root != "cbcontrol" or module == "cbcontrol.operator":
                continue
            if name and name not in ALLOWED.get(module, set()):
                offences.append(f"{path.name}: from {module} import {name}")
        for node in ast.walk(tree):
            used = (
                node.attr
                if isinstance(node, ast.Attribute)
                else node.id
                if isinstance(node, ast.Name)
                else None
            )
            if used in FORBIDDEN_NAMES:
                offences.append(f"{path.name}:{node.lineno}: uses {used}")
    return offences


def test_nothing_under_cli_merges_resolves_or_validates_config():
    """cbctl imports the operator API, errors and formats; no model, no resolver."""
    assert [] == _offences()


def test_the_check_sees_an_offence(tmp_path: Path, monkeypatch):
    """A module of cli/ that resolved a config itself would be reported."""
    (tmp_path / "_bad.py").write_text(
        "from cbcontrol.config import BreakerConfig\n"
        "from cbcontrol.operator import open_operator\n"
        "def f(x):\n    return x.model_validate({})\n"
    )
    monkeypatch.setattr(f"{__name__}.CLI", tmp_path)

    assert [
        "_bad.py: from cbcontrol.config import BreakerConfig",
        "_bad.py:4: uses model_validate",
    ] == sorted(_offences())
