"""docs/runbook.md shows cbctl's real output: the same commands give the same page."""

from __future__ import annotations

import pytest

from tests.cli import runbook

pytestmark = pytest.mark.slow


def test_the_runbook_is_what_cbctl_prints(capsys: pytest.CaptureFixture[str]):
    """Every block of the page, run again against live instances, reads the same."""
    code = runbook.main(["--check"])

    assert 0 == code, capsys.readouterr().err


def test_the_runbook_covers_trip_verify_and_reset():
    """The page runs a targeted trip, reads back, resets, and shows the record."""
    text = runbook.PAGE.read_text()

    for args in (
        "list",
        "trip payment -l zone=eu-1",
        "list -l zone=eu-1",
        "reset payment -l zone=eu-1",
        "history payment",
    ):
        assert f"$ cbctl {args}" in text
    assert "applied on 2/2 matching instances, 3 live, in 43 ms" in text
