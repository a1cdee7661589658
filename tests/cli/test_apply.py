"""`cbctl apply`, `export` and `validate`: declarative config documents."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from ruamel.yaml import YAML

import cbcontrol
from cbcontrol.config import ConfigDocument
from tests.cli import lines, parse

if TYPE_CHECKING:
    from pathlib import Path

    from tests.cli import StoreEnv

DOCUMENT = """\
version: 1
presets:
  checkout-critical: {max_failures: 2, reset_timeout: 2m}
breakers:
  payment:
    max_failures: 4
    reset_timeout: 45s
  analytics:
    preset: checkout-critical
"""


def _write(tmp_path: Path, text: str, name: str = "desired.yaml") -> str:
    """Write a document to a file and return its path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def _stored(env: StoreEnv) -> dict[str, dict[str, object]]:
    """Every stored spec document, by breaker."""
    with env.open() as store:
        return {name: dict(s.data) for name, s in store.breakers().items()}


def test_dry_run_shows_the_diff_and_writes_nothing(env: StoreEnv, tmp_path: Path):
    """`apply --dry-run` prints the per-field diff and leaves the store alone."""
    env.cbctl("set", "payment", "--max-failures", "5", "--fallback", "none")

    result = env.cbctl("apply", "-f", _write(tmp_path, DOCUMENT), "--dry-run")

    assert 0 == result.exit_code, result.output
    assert [
        "~ preset checkout-critical",
        "    max_failures: (unset) → 2",
        "    reset_timeout: (unset) → 2m",
        "~ breaker payment",
        "    max_failures: 5 → 4",
        "    reset_timeout: (unset) → 45s",
        "    fallback: none → (unset)",
        "~ breaker analytics",
        "    preset: (unset) → checkout-critical",
        "dry run: nothing written",
    ] == lines(result.stdout)
    assert {"payment": {"max_failures": 5, "fallback": "none"}} == {
        n: {k: v for k, v in d.items() if k in ("max_failures", "fallback")}
        for n, d in _stored(env).items()
    }
    with env.open() as store:
        assert {} == store.store_presets()


def test_apply_writes_presets_then_breakers_and_waits(env: StoreEnv, tmp_path: Path):
    """`apply` makes each listed breaker what the file says and waits for instances."""
    plane = env.instance("payment", "analytics")

    result = env.cbctl("apply", "-f", _write(tmp_path, DOCUMENT), "--reason", "v2")

    output = lines(result.stdout)
    assert 0 == result.exit_code, result.output
    assert (
        "payment: generation 1 (max_failures: (unset) → 4, "
        "reset_timeout: (unset) → 45s)" in output
    )
    assert "analytics: generation 1 (preset: (unset) → checkout-critical)" in output
    assert 2 == len([line for line in output if line.startswith("applied on 1/1")])
    assert (2, 120.0) == (
        plane.breaker("analytics").config.max_failures,
        plane.breaker("analytics").config.reset_timeout,
    )
    assert ("apply", "v2") == tuple(
        parse(env.cbctl("history", "payment", "-o", "json"))[-1][k]
        for k in ("action", "reason")
    )


def test_apply_keeps_an_override_the_file_does_not_name(env: StoreEnv, tmp_path: Path):
    """A breaker tripped during an incident stays tripped through an apply."""
    env.cbctl("set", "payment", "--max-failures", "5")
    env.cbctl("trip", "payment", "--reason", "INC-42")

    result = env.cbctl("apply", "-f", _write(tmp_path, DOCUMENT), "-o", "json")

    data = parse(result)
    assert 0 == result.exit_code, result.output
    assert {"max_failures": [5, 4], "reset_timeout": [None, 45.0]} == data["breakers"][
        "payment"
    ]
    assert ["payment", "analytics"] == [r["name"] for r in data["results"]]
    assert "forced_open" == _stored(env)["payment"]["override"]["mode"]


def test_export_then_apply_changes_nothing(env: StoreEnv, tmp_path: Path):
    """`cbctl export | cbctl apply -f -` finds no difference."""
    env.cbctl("apply", "-f", _write(tmp_path, DOCUMENT))
    env.cbctl("trip", "payment", "--for", "1h")
    env.cbctl(
        "set",
        "analytics",
        "--failure-rate-threshold",
        "50",
        "--slow-call-duration",
        "1.5s",
    )
    before = _stored(env)

    exported = env.cbctl("export")
    result = env.cbctl("apply", "-f", "-", stdin=exported.stdout)

    assert 0 == result.exit_code, result.output
    assert ["no changes"] == lines(result.stdout)
    assert before == _stored(env)


def test_export_is_a_valid_file_store(env: StoreEnv, tmp_path: Path):
    """What `export` prints is a ConfigDocument that a plane can read as its store."""
    env.cbctl("apply", "-f", _write(tmp_path, DOCUMENT))
    env.cbctl("trip", "payment")

    exported = env.cbctl("export").stdout
    path = tmp_path / "exported.yaml"
    path.write_text(exported)

    data = YAML(typ="safe").load(exported)
    document = ConfigDocument.model_validate(data)
    override = data["breakers"]["payment"].pop("override")
    assert exported.startswith(f"# cbctl export of {env.url}\nversion: 1\n")
    assert {"max_failures": 4, "reset_timeout": "45s"} == data["breakers"]["payment"]
    assert "forced_open" == override["mode"]
    assert {"checkout-critical": {"max_failures": 2, "reset_timeout": "2m"}} == data[
        "presets"
    ]
    assert {"analytics", "payment"} == set(document.breakers)
    with cbcontrol.connect(f"file://{path}", app="reader") as plane:
        assert (4, 45.0, "forced_open") == (
            plane.breaker("payment").config.max_failures,
            plane.breaker("payment").config.reset_timeout,
            plane.breaker("payment").state.value,
        )
        assert 2 == plane.breaker("analytics").config.max_failures


def test_an_invalid_document_is_rejected_whole(env: StoreEnv, tmp_path: Path):
    """One bad field anywhere: every error listed, exit 1, nothing written."""
    path = _write(
        tmp_path,
        """\
        version: 1
        breakers:
          payment: {max_failures: 0}
          analytics: {preset: nope, jitter: 2}
        """,
    )

    result = env.cbctl("apply", "-f", path)

    assert 1 == result.exit_code
    assert [
        f"error: {path} is invalid, nothing was written:",
        (
            f"error: {path}: breakers.payment.max_failures: Input should be "
            "greater than or equal to 1, got 0"
        ),
        f"error: {path}: breakers.analytics.jitter: Input should be less than 1, got 2",
    ] == lines(result.stderr)
    assert {} == _stored(env)


def test_validate_accepts_a_good_document(tmp_path: Path, file_env: StoreEnv):
    """`validate` says how much a valid document holds, and exits 0."""
    path = _write(tmp_path, DOCUMENT)

    result = file_env.cbctl("validate", path)

    assert 0 == result.exit_code
    assert f"{path}: valid (1 presets, 2 breakers)\n" == result.stdout
    assert "" == result.stderr


def test_validate_reports_every_error_with_its_path(tmp_path: Path, file_env: StoreEnv):
    """Schema errors, unknown presets and cross-field rules: all of them, exit 1."""
    path = _write(
        tmp_path,
        """\
        version: 1
        presets:
          tight: {max_failures: 1}
        breakers:
          payment: {max_failures: -1, reset_timeout: soon, max_failure: 3}
          analytics: {preset: nope}
          search: {failure_rate_threshold: 50, minimum_calls: 20, window_size: 10}
          ok: {preset: tight}
        """,
    )

    result = file_env.cbctl("validate", path)

    assert 1 == result.exit_code
    assert [
        (
            f"error: {path}: breakers.payment.max_failures: Input should be "
            "greater than or equal to 1, got -1"
        ),
        (
            f"error: {path}: breakers.payment.reset_timeout: must be a duration "
            "such as '30s', '1m30s', '250ms' or a number of seconds, got 'soon'"
        ),
        (
            f"error: {path}: breakers.payment.max_failure: Extra inputs are not "
            "permitted, got 3"
        ),
        (
            f"error: {path}: breakers.analytics: preset 'nope' is not defined; defined "
            "presets: analytics, default, payment, tight, user-profile"
        ),
        (
            f"error: {path}: breakers.search: minimum_calls (20) must be <= "
            "window_size (10) for a count window, or no rate can ever trip the "
            "breaker; lower minimum_calls or raise window_size"
        ),
    ] == lines(result.stderr)


def test_validate_checks_resolution_once_the_schema_holds(
    tmp_path: Path, file_env: StoreEnv
):
    """Unknown presets and cross-field rules are errors too, as instances see them."""
    path = _write(
        tmp_path,
        """\
        breakers:
          analytics: {preset: nope}
          search: {failure_rate_threshold: 50, minimum_calls: 20, window_size: 10}
        """,
    )

    result = file_env.cbctl("validate", path, "-o", "json")

    assert 1 == result.exit_code
    assert {
        "file": path,
        "valid": False,
        "errors": [
            (
                "breakers.analytics: preset 'nope' is not defined; defined presets: "
                "analytics, default, payment, user-profile"
            ),
            (
                "breakers.search: minimum_calls (20) must be <= window_size (10) for a "
                "count window, or no rate can ever trip the breaker; lower "
                "minimum_calls or raise window_size"
            ),
        ],
    } == parse(result)


def test_validate_of_a_file_that_is_not_yaml(tmp_path: Path, file_env: StoreEnv):
    """A syntax error is one error line naming the file."""
    path = _write(tmp_path, "breakers: [unclosed\n")

    result = file_env.cbctl("validate", path)

    assert 1 == result.exit_code
    assert result.stderr.startswith(
        f'error: {path}: (document): file "{path}", line 2, column 1: invalid YAML: '
    )
    assert 1 == len(lines(result.stderr))


def test_validate_of_a_missing_file(tmp_path: Path, file_env: StoreEnv):
    """A file that cannot be read is an operational error."""
    path = str(tmp_path / "missing.yaml")

    result = file_env.cbctl("validate", path)

    assert 1 == result.exit_code
    assert f"error: cannot read {path}: No such file or directory\n" == result.stderr


def test_dry_run_json_is_the_diff(env: StoreEnv, tmp_path: Path):
    """`apply --dry-run -o json` prints the diff per preset and breaker, no results."""
    result = env.cbctl(
        "apply", "-f", _write(tmp_path, DOCUMENT), "--dry-run", "-o", "json"
    )

    assert {
        "dry_run": True,
        "presets": {
            "checkout-critical": {
                "max_failures": [None, 2],
                "reset_timeout": [None, 120.0],
            }
        },
        "breakers": {
            "payment": {"max_failures": [None, 4], "reset_timeout": [None, 45.0]},
            "analytics": {"preset": [None, "checkout-critical"]},
        },
        "results": [],
    } == parse(result)
    assert {} == _stored(env)


def test_export_json_is_the_same_document(env: StoreEnv, tmp_path: Path):
    """`export -o json` is the exported YAML document, as JSON."""
    env.cbctl("apply", "-f", _write(tmp_path, DOCUMENT))

    as_json = parse(env.cbctl("export", "-o", "json"))
    as_yaml = YAML(typ="safe").load(env.cbctl("export").stdout)

    assert as_yaml == as_json


def test_validate_of_a_document_that_is_not_a_mapping(
    tmp_path: Path, file_env: StoreEnv
):
    """A YAML list or an empty file is not a config document."""
    listed = file_env.cbctl("validate", _write(tmp_path, "- payment\n", "list.yaml"))
    empty = file_env.cbctl("validate", _write(tmp_path, "", "empty.yaml"))

    assert (1, 1) == (listed.exit_code, empty.exit_code)
    assert (
        f"error: {tmp_path / 'list.yaml'}: (document): must be a mapping with version, "
        "presets, breakers; got a list\n" == listed.stderr
    )
    assert empty.stderr.endswith(
        "(document): must be a mapping with version, presets, breakers; got empty\n"
    )


def test_names_outside_the_grammar_are_document_errors(
    tmp_path: Path, file_env: StoreEnv
):
    """A breaker or preset named outside the grammar: invalid, nothing written."""
    path = _write(
        tmp_path, 'breakers:\n  "x/payment": {}\npresets:\n  "bad name": {}\n'
    )

    result = file_env.cbctl("apply", "-f", path)

    assert 1 == result.exit_code
    rule = (
        "must be 1-128 characters of letters, digits, '.', '_' and '-', starting "
        "with a letter or a digit"
    )
    assert [
        f"error: {path} is invalid, nothing was written:",
        f"error: {path}: presets.bad name: the name {rule}",
        f"error: {path}: breakers.x/payment: the name {rule}",
    ] == lines(result.stderr)
    assert file_env.path is not None
    assert "version: 1\n" == file_env.path.read_text()
