"""docs/store.md states the limits the code enforces."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cbcontrol import _cache, _limits
from cbcontrol._names import MAX_NAME_CHARS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "store.md"


@pytest.mark.parametrize(
    "value",
    [
        _limits.MAX_DOCUMENT_BYTES,
        _limits.MAX_RECORD_BYTES,
        _limits.MAX_FILE_BYTES,
        _cache.MAX_CACHE_BYTES,
        _limits.MAX_DEPTH,
        _limits.MAX_YAML_NODES,
        _limits.MAX_TEXT_CHARS,
        _limits.MAX_ERROR_CHARS,
        _limits.MAX_ERRORS,
    ],
)
def test_each_limit_is_in_the_table(value: int):
    """Every limit appears, with its value, in the page's table of limits."""
    section = DOCS.read_text().split("## Limits and names", 1)[1]
    table = "\n".join(line for line in section.splitlines() if line.startswith("|"))

    assert re.search(rf"\| {value} [a-z(]", table), value


def test_the_name_grammar_is_stated():
    """The page states the grammar the code checks."""
    assert f"1 to {MAX_NAME_CHARS}\ncharacters of ASCII letters" in DOCS.read_text()
