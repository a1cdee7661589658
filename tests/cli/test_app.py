"""cbctl as a program: the store, global options, exit codes, errors, start-up."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from cbctl._app import COMMANDS, app
from tests.cli import CBCTL, StoreEnv
from tests.support.etcd import free_port

if TYPE_CHECKING:
    from pathlib import Path


def _cbctl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed cbctl with nothing but ``args``."""
    return subprocess.run(
        [str(CBCTL), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )


_LOADED = """
import json, sys
sys.argv = ["cbctl", *json.loads(sys.argv[1])]
from cbctl.__main__ import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\n" + json.dumps(sorted(sys.modules)) + "\\n")
"""


def _loaded(*args: str) -> set[str]:
    """The modules a real cbctl run has loaded when it ends."""
    import json

    result = subprocess.run(
        [sys.executable, "-c", _LOADED, json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return set(json.loads(result.stderr.splitlines()[-1]))


def test_help_loads_neither_the_etcd_client_nor_pydantic():
    """`cbctl --help` and `cbctl set --help` load no grpc, etcd stubs or pydantic."""
    heavy = ("grpc", "pyetcd", "pydantic", "ruamel")
    found = {
        args: sorted(m for m in _loaded(*args) if m.split(".")[0] in heavy)
        for args in (("--help",), ("set", "--help"))
    }

    assert {("--help",): [], ("set", "--help"): []} == found


def test_a_command_loads_its_own_module_only(file_env: StoreEnv):
    """`cbctl get` imports the read commands, not those that write or watch."""
    file_env.instance("payment")

    loaded = _loaded("--store", file_env.url, "get", "payment", "-o", "json")

    assert "cbctl._cmd_read" in loaded
    assert set() == loaded & {
        "cbctl._cmd_write",
        "cbctl._cmd_apply",
        "cbctl._cmd_watch",
    }


def test_get_of_an_applied_spec_loads_no_pydantic(file_env: StoreEnv):
    """Reading a breaker live instances applied needs no model: pydantic stays out."""
    file_env.instance("payment")
    assert 0 == file_env.run("set", "payment", "--max-failures", "4").returncode

    loaded = _loaded("--store", file_env.url, "get", "payment")

    assert [] == sorted(m for m in loaded if m.startswith("pydantic"))


def test_flags_are_shown_without_a_value():
    """Help shows `--debug` and `--help` as flags, not as `<bool>` options."""
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"})
    set_help = CliRunner().invoke(app, ["set", "--help"], env={"COLUMNS": "100"})

    assert 0 == result.exit_code, result.output
    assert "<bool>" not in result.output
    assert "<bool>" not in set_help.output
    assert "--debug" in result.output


def test_every_command_of_the_table_runs_its_help():
    """Each lazily loaded command exists and answers --help."""
    failed = {
        name: result.output
        for name in COMMANDS
        if (result := CliRunner().invoke(app, [name, "--help"])).exit_code != 0
    }

    assert {} == failed


def test_a_misspelt_command_is_a_usage_error_with_a_suggestion():
    """`cbctl lsit` exits 2 and suggests `list`."""
    result = CliRunner().invoke(app, ["lsit"])

    assert 2 == result.exit_code
    assert "Did you mean 'list'?" in result.output


def test_global_options_work_after_the_command(file_env: StoreEnv, tmp_path: Path):
    """`--store` after the command, as kubectl's flags: it wins over the environment."""
    file_env.instance("payment")
    other = tmp_path / "other.yaml"
    other.write_text("version: 1\n")

    result = CliRunner().invoke(
        app,
        ["list", "-o", "name", "--store", file_env.url],
        env={"CBCONTROL_STORE": f"file://{other}"},
    )

    assert 0 == result.exit_code, result.output
    assert "breaker/payment\n" == result.stdout


def test_debug_after_the_command_shows_the_traceback(tmp_path: Path):
    """`--debug` at the end of the line turns on tracebacks too."""
    result = _cbctl("--store", f"file://{tmp_path}/missing.yaml", "list", "--debug")

    assert 1 == result.returncode
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: store file")


def test_no_store_is_a_usage_error(tmp_path: Path):
    """Without --store, CBCONTROL_STORE or ./cbcontrol.yaml, cbctl exits 2."""
    result = _cbctl("list", cwd=tmp_path)

    assert 2 == result.returncode
    assert result.stderr.startswith("error: no store: pass --store or set")


def test_cbcontrol_yaml_in_the_working_directory_is_the_default_store(tmp_path: Path):
    """Run where ./cbcontrol.yaml exists, cbctl uses it."""
    (tmp_path / "cbcontrol.yaml").write_text(
        "version: 1\nbreakers:\n  payment: {max_failures: 3}\n"
    )

    result = _cbctl("list", "-o", "name", cwd=tmp_path)

    assert 0 == result.returncode, result.stderr
    assert "breaker/payment\n" == result.stdout


def test_a_mistyped_file_store_is_an_error(tmp_path: Path):
    """A file store that does not exist (nor has instances) is exit 1, read or write."""
    url = f"file://{tmp_path}/cbcontrl.yaml"

    listed = _cbctl("--store", url, "list")
    written = _cbctl("--store", url, "set", "payment", "--max-failures", "3")

    assert (1, 1) == (listed.returncode, written.returncode)
    assert listed.stderr.startswith(
        f'error: store file "{tmp_path}/cbcontrl.yaml" does not'
    )
    assert "write with --create" in listed.stderr
    assert not (tmp_path / "cbcontrl.yaml").exists()


def test_a_write_with_create_starts_a_new_file_store(tmp_path: Path):
    """`set --create` makes the file store, then writes into it."""
    url = f"file://{tmp_path}/cbcontrol.yaml"

    result = _cbctl("--store", url, "set", "payment", "--max-failures", "3", "--create")

    assert 0 == result.returncode, result.stderr
    assert "max_failures: 3" in (tmp_path / "cbcontrol.yaml").read_text()


def test_a_file_store_in_use_by_instances_needs_no_create(tmp_path: Path):
    """Instances report beside a file not written yet: reads and writes work."""
    env = StoreEnv("file", f"file://{tmp_path}/cbcontrol.yaml", path=tmp_path / "x")
    env.instance("payment")

    listed = env.run("list", "-o", "name")
    written = env.run("set", "payment", "--max-failures", "4")
    env.close()

    assert (0, 0) == (listed.returncode, written.returncode), written.stderr
    assert "breaker/payment\n" == listed.stdout


def test_the_namespace_is_refused_for_a_file_store(file_env: StoreEnv):
    """`--namespace` with a file store is a usage error: a file has none."""
    result = file_env.run("--namespace", "prod", "list")

    assert 2 == result.returncode
    assert result.stderr.startswith(
        "error: invalid --namespace prod: applies to etcd stores only"
    )


def test_a_bad_namespace_is_a_usage_error():
    """--namespace must follow the name grammar (no slash)."""
    url = f"etcd://127.0.0.1:{free_port()}/ns"

    result = _cbctl("--store", url, "--namespace", "a/b", "list")

    assert 2 == result.returncode
    assert result.stderr.startswith("error: invalid --namespace a/b: must be 1-128")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nope://x", "error: invalid store URL 'nope://x' (--store): must be one of"),
        (
            "etcd://:1/x",
            "error: invalid store URL 'etcd://:1/x' (--store): has endpoint",
        ),
    ],
)
def test_a_bad_store_url_is_a_usage_error(url: str, expected: str):
    """A URL of no accepted form exits 2 naming the forms."""
    result = _cbctl("--store", url, "list")

    assert 2 == result.returncode
    assert result.stderr.startswith(expected)


def test_an_unreachable_etcd_fails_fast_with_one_line():
    """Nothing listens: exit 1 within seconds, one error line naming the endpoint."""
    port = free_port()

    result = _cbctl("--store", f"etcd://127.0.0.1:{port}/x", "list")

    assert 1 == result.returncode
    assert [f"127.0.0.1:{port}"] == [
        line[line.index("127.0.0.1") :].split(" ", 1)[0]
        for line in result.stderr.splitlines()
    ]
    assert 1 == len(result.stderr.splitlines())


def test_an_unknown_breaker_exits_3_with_a_suggestion(file_env: StoreEnv):
    """A near miss is suggested; the exit code is 3 (not found)."""
    file_env.instance("payment")

    result = file_env.run("get", "paymnet")

    assert 3 == result.returncode
    assert result.stderr == (
        f'error: no breaker "paymnet" in {file_env.url}; did you mean "payment"?\n'
    )


def test_a_reader_that_goes_away_ends_cbctl_quietly(file_env: StoreEnv):
    """`cbctl list | head -1` over more rows than a pipe holds: no traceback."""
    assert file_env.path is not None
    file_env.path.write_text(
        "version: 1\nbreakers:\n"
        + "".join(f"  b{n:04d}: {{max_failures: 3}}\n" for n in range(1500))
    )

    with subprocess.Popen(
        [str(CBCTL), "--store", file_env.url, "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # the reader goes away, as `head -1` does
        errors = process.stderr.read()
        process.wait(timeout=60)

    assert "" == errors
    assert first.startswith("NAME")


def test_version_prints_the_library_version():
    """`cbctl version` names cbcontrol's installed version."""
    import cbcontrol

    result = _cbctl("version")

    assert 0 == result.returncode
    assert f"cbctl {cbcontrol.__version__}\n" == result.stdout
