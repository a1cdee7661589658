"""GitOps with cbctl: export, apply, diff (drift in CI), validate; and their hazards."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.cli import lines, parse

if TYPE_CHECKING:
    from pathlib import Path

    from tests.cli import StoreEnv

DOCUMENT = """\
version: 1
presets:
  critical: {max_failures: 2, reset_timeout: 2m}
breakers:
  payment:
    preset: critical
    reset_timeout: 90s
    scopes:
      - selector: track=canary
        max_failures: 1
"""


def test_apply_shows_the_diff_writes_presets_then_breakers_and_waits(
    env: StoreEnv, tmp_path: Path
):
    """The diff per breaker and field, then the writes, acknowledged."""
    plane = env.instance("payment", labels={"track": "canary"})
    document = tmp_path / "desired.yaml"
    document.write_text(DOCUMENT)

    result = env.cbctl("apply", "-f", str(document))

    assert 0 == result.exit_code, result.output
    assert [
        "+ preset critical",
        "    max_failures: - → 2",
        "    reset_timeout: - → 2m",
        "+ breaker payment",
        "    reset_timeout: - → 1m30s",
        "    preset: - → critical",
        "    max_failures[track=canary]: - → 1",
    ] == lines(result.stdout)[:7]
    assert "applied on 1/1 instance in" in result.stdout
    assert (1, 90.0) == (
        plane.breaker("payment").config.max_failures,
        plane.breaker("payment").config.reset_timeout,
    )


def test_export_then_apply_changes_nothing(env: StoreEnv, tmp_path: Path):
    """The round trip: an export applied to its own store is no change (diff 0)."""
    env.instance("payment")
    env.cbctl("set", "payment", "--max-failures", "4", "--reset-timeout", "45s")
    exported = tmp_path / "export.yaml"
    exported.write_text(env.cbctl("export").stdout)

    diff = env.cbctl("diff", "-f", str(exported))
    applied = env.cbctl("apply", "-f", str(exported))

    assert (0, "no changes\n") == (diff.exit_code, diff.stdout)
    assert 0 == applied.exit_code, applied.output
    assert "no changes" == lines(applied.stdout)[0]


def test_export_leaves_out_run_time_state(env: StoreEnv):
    """No override, reset marker or metadata in an export: it is configuration."""
    env.instance("payment", labels={"zone": "eu-1"})
    env.cbctl("set", "payment", "--max-failures", "4", "--reason", "tune")
    env.cbctl("trip", "payment", "--reason", "INC-1")
    env.cbctl("reset", "payment")
    env.cbctl("trip", "payment", "-l", "zone=eu-1")

    exported = env.cbctl("export").stdout

    assert "max_failures: 4" in exported
    for word in ("override", "reset_generation", "generation", "updated_by", "scopes"):
        assert word not in exported


def test_an_old_export_neither_resets_nor_lifts_anything(env: StoreEnv, tmp_path: Path):
    """Apply a document with an old reset_generation: kept, no reset; a trip stays."""
    plane = env.instance("payment")
    breaker = plane.breaker("payment")
    env.cbctl("reset", "payment")
    env.cbctl("reset", "payment")
    env.cbctl("trip", "payment", "--reason", "INC-3")
    old = tmp_path / "old.yaml"
    old.write_text("version: 1\nbreakers:\n  payment:\n    reset_generation: 1\n")

    result = env.cbctl("apply", "-f", str(old))
    view = parse(env.cbctl("get", "payment", "-o", "json"))

    assert 0 == result.exit_code, result.output
    assert "reset_generation 1 is below the store's 2: kept" in result.stdout
    assert 2 == view["spec"]["reset_generation"]
    assert "forced_open" == breaker.state.value


def test_diff_exits_1_on_drift_for_ci(env: StoreEnv, tmp_path: Path):
    """A store that says otherwise than the file: exit 1 and the diff (kubectl diff)."""
    env.cbctl("set", "payment", "--max-failures", "4")
    desired = tmp_path / "desired.yaml"
    desired.write_text("version: 1\nbreakers:\n  payment: {max_failures: 5}\n")

    result = env.cbctl("diff", "-f", str(desired))
    data = parse(env.cbctl("diff", "-f", str(desired), "-o", "json"))

    assert 1 == result.exit_code
    assert ["~ breaker payment", "    max_failures: 4 → 5"] == lines(result.stdout)
    assert {"payment": {"max_failures": [4, 5]}} == data["breakers"]


def test_diff_errors_exit_2_or_more(env: StoreEnv, tmp_path: Path):
    """An invalid document or a missing file is not drift: exit 2, not 1."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nbreakers:\n  payment: {max_failures: 0}\n")

    invalid = env.cbctl("diff", "-f", str(bad))
    missing = env.cbctl("diff", "-f", str(tmp_path / "nope.yaml"))

    assert (2, 2) == (invalid.exit_code, missing.exit_code)
    assert "breakers.payment.max_failures: must be >= 1, got 0" in invalid.stderr


def test_apply_dry_run_writes_nothing(env: StoreEnv, tmp_path: Path):
    """`apply --dry-run` prints the diff, exit 0, no write."""
    document = tmp_path / "desired.yaml"
    document.write_text(DOCUMENT)

    result = env.cbctl("apply", "-f", str(document), "--dry-run")

    assert 0 == result.exit_code, result.output
    assert "dry run: nothing written" == lines(result.stdout)[-1]
    assert [] == parse(env.cbctl("list", "-o", "json"))


def test_an_invalid_document_is_rejected_whole(env: StoreEnv, tmp_path: Path):
    """Every error at once, nothing written, exit 1, in cbctl's words."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nbreakers:\n"
        "  payment: {max_failures: 0, reset_timeout: soon, maxfailures: 3}\n"
        "  search: {scopes: [{selector: 'zone in ()', max_failures: 2}]}\n"
    )

    result = env.cbctl("apply", "-f", str(bad))

    assert 1 == result.exit_code
    assert [
        f"error: {bad} is invalid, nothing was written:",
        f"error: {bad}: breakers.payment.max_failures: must be >= 1, got 0",
        (
            f"error: {bad}: breakers.payment.reset_timeout: must be a duration such as "
            "'30s', '1m30s', '250ms' or a number of seconds, got 'soon'"
        ),
        f"error: {bad}: breakers.payment.maxfailures: is not a known field",
        (
            f"error: {bad}: breakers.search.scopes.0.selector: has an empty value in "
            "'in (...)'; write requirements as key=value, key!=value, 'key in (a,b)', "
            "'key notin (a,b)', key or !key, joined by commas, got 'zone in ()'"
        ),
    ] == lines(result.stderr)
    assert "Input should" not in result.stderr
    assert [] == parse(env.cbctl("list", "-o", "json"))


def test_validate_checks_offline_and_with_a_store(file_env: StoreEnv, tmp_path: Path):
    """A good document: valid with counts; resolution against presets is checked."""
    good = tmp_path / "good.yaml"
    good.write_text(DOCUMENT)
    unresolved = tmp_path / "unresolved.yaml"
    unresolved.write_text("version: 1\nbreakers:\n  payment: {preset: nope}\n")

    ok = file_env.cbctl("validate", str(good))
    bad = file_env.cbctl("validate", str(unresolved), "-o", "json")

    assert 0 == ok.exit_code, ok.output
    assert f"{good}: valid (1 preset, 1 breaker)\n" == ok.stdout
    assert 1 == bad.exit_code
    assert [
        (
            "breakers.payment.preset: names a preset that is not defined; defined "
            "presets: analytics, default, payment, user-profile"
        )
    ] == parse(bad)["errors"]


def test_the_export_is_a_valid_file_store(env: StoreEnv, tmp_path: Path):
    """`cbctl export > cbcontrol.yaml` makes a store cbctl reads back the same."""
    env.cbctl("set", "payment", "--max-failures", "4", "-l", "zone=eu-1")
    env.cbctl("set", "payment", "--reset-timeout", "45s")
    copy = tmp_path / "copy" / "cbcontrol.yaml"
    copy.parent.mkdir()
    copy.write_text(env.cbctl("export").stdout)

    from tests.cli import StoreEnv as Env

    other = Env("file", f"file://{copy}", path=copy)
    original = parse(env.cbctl("get", "payment", "-o", "json"))["spec"]
    again = parse(other.cbctl("get", "payment", "-o", "json"))["spec"]

    assert (original["reset_timeout"], original["scopes"][0]["max_failures"]) == (
        again["reset_timeout"],
        again["scopes"][0]["max_failures"],
    )
