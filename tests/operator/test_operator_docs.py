"""
docs/operator.md: its Python examples run, in page order, against live instances.

The page's blocks are one script: they open the operator API on a file store with
three instances of ``checkout`` running in this process (so writes are acknowledged),
and their ``assert`` lines check what the prose claims. The page names its store
``file:///srv/cbcontrol/cbcontrol.yaml``; the test puts a temporary one in its place.
A failing example is reported at its line of the page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import cbcontrol.operator
from cbcontrol.operator import Operator, open_operator
from tests.operator.conftest import Fleet

if TYPE_CHECKING:
    from collections.abc import Iterator

PAGE = Path(__file__).resolve().parents[2] / "docs" / "operator.md"
PAGE_STORE = "file:///srv/cbcontrol/cbcontrol.yaml"
_PYTHON = re.compile(r"^```python\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """Each ```python block of a page: the line its code starts on, and the code."""
    return [
        (text.count("\n", 0, match.start("code")) + 1, match["code"])
        for match in _PYTHON.finditer(text)
    ]


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Fleet]:
    """The page's fleet: checkout in eu-1 (a canary among them) and us-1."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_text("version: 1\n")
    url = f"file://{path}"
    fleet = Fleet(url, open_operator(url, actor="tester"))
    try:
        fleet.instance("payment", zone="eu-1", track="canary")
        fleet.instance("payment", zone="eu-1")
        fleet.instance("payment", zone="us-1")
        yield fleet
    finally:
        fleet.close()


def test_the_examples_run_in_order(checkout: Fleet) -> None:
    """Every block runs, sharing one namespace, and its assertions hold."""
    text = PAGE.read_text(encoding="utf-8")
    blocks = python_blocks(text)
    assert isinstance(checkout.store, str)
    assert PAGE_STORE in blocks[0][1]
    namespace: dict[str, object] = {"__name__": "operator_docs"}
    try:
        for line, code in blocks:
            # Padded so that a traceback names the line of the page.
            source = "\n" * (line - 1) + code.replace(PAGE_STORE, checkout.store)
            exec(compile(source, str(PAGE), "exec"), namespace)  # noqa: S102
    finally:
        op = namespace.get("op")
        if isinstance(op, Operator):
            op.close()  # the page closes it too: closing twice is harmless


def test_the_page_names_every_public_name() -> None:
    """Each name of ``cbcontrol.operator.__all__`` is on the page, as code."""
    text = PAGE.read_text(encoding="utf-8")

    missing = [
        name
        for name in cbcontrol.operator.__all__
        if not re.search(rf"`{name}[`(]", text)
    ]

    assert [] == missing


def test_blocks_are_found_with_their_lines() -> None:
    """The extraction sees each block once, at the line its code starts."""
    text = (
        "intro\n```python\na = 1\n```\n\n```console\n$ x\n```\n```python\nb = 2\n```\n"
    )

    assert [(3, "a = 1\n"), (10, "b = 2\n")] == python_blocks(text)
