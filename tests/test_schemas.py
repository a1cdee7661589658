"""JSON Schemas are current, and the example files validate against the models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cbcontrol.config import ConfigDocument

ROOT = Path(__file__).parent.parent
EXAMPLE_FILES = sorted((ROOT / "examples").glob("*.yaml"))


def test_schemas_are_current() -> None:
    """schemas/generate.py --check passes: the committed schemas match the models."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "schemas" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert 0 == result.returncode, result.stderr


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_files_name_their_schema_and_validate(path: Path) -> None:
    """Each example YAML file points editors at its schema and is a valid document."""
    from ruamel.yaml import YAML

    text = path.read_text()
    document = ConfigDocument.model_validate(YAML(typ="safe", pure=True).load(text))

    assert text.startswith(
        "# yaml-language-server: $schema=../schemas/config-file.json"
    )
    assert document.breakers
