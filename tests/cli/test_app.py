"""cbctl as a program: store selection, exit codes, errors, imports, options."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from cbcontrol.config import BreakerConfig
from cbctl._app import app
from tests.cli import CBCTL, StoreEnv, lines
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


def test_help_does_not_import_the_etcd_client():
    """`cbctl --help` and `cbctl set --help` leave grpc and the etcd stubs unloaded."""
    loaded = {}
    for args in (["--help"], ["set", "--help"]):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", str(CBCTL), *args],
            capture_output=True,
            text=True,
            check=True,
        )
        modules = {
            line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
        }
        loaded[args[0]] = sorted(
            m for m in modules if m.split(".")[0] in ("grpc", "pyetcd", "etcd3")
        )
        assert "Usage: cbctl " in result.stdout

    assert {"--help": [], "set": []} == loaded


def test_the_real_program_flushes_its_output_before_leaving():
    """cbctl leaves with os._exit, after writing all it printed."""
    import cbcontrol

    result = _cbctl("version")

    assert (0, f"cbctl {cbcontrol.__version__}\n") == (result.returncode, result.stdout)


def test_every_config_field_has_a_set_option_and_an_unset_flag():
    """`set` and `unset` follow BreakerConfig: one option per field, named like it."""
    set_help = CliRunner().invoke(app, ["set", "--help"], env={"COLUMNS": "200"})
    unset_help = CliRunner().invoke(app, ["unset", "--help"], env={"COLUMNS": "200"})

    for field in BreakerConfig.model_fields:
        flag = "--" + field.replace("_", "-")
        assert re.search(rf"│ {flag} ", set_help.stdout), flag
        assert re.search(rf"│ {flag} ", unset_help.stdout), flag


def test_no_store_is_a_usage_error(tmp_path: Path):
    """Without --store, CBCONTROL_STORE or ./cbcontrol.yaml, cbctl says what to do."""
    result = _cbctl("list", cwd=tmp_path)

    assert 2 == result.returncode
    assert (
        "error: no store: pass --store or set CBCONTROL_STORE (file://PATH or "
        "etcd://HOST:PORT/NAMESPACE), or run where ./cbcontrol.yaml exists\n"
        == result.stderr
    )


def test_cbcontrol_yaml_in_the_working_directory_is_the_default_store(tmp_path: Path):
    """A ./cbcontrol.yaml is used when no store is named."""
    (tmp_path / "cbcontrol.yaml").write_text(
        "breakers:\n  payment: {max_failures: 2}\n"
    )

    result = _cbctl("get", "payment", "-o", "json", cwd=tmp_path)

    assert 0 == result.returncode, result.stderr
    assert '"max_failures": 2' in result.stdout


def test_the_environment_names_the_store(
    file_env: StoreEnv, monkeypatch: pytest.MonkeyPatch
):
    """CBCONTROL_STORE is --store's default."""
    file_env.cbctl("set", "payment", "--max-failures", "2")
    monkeypatch.setenv("CBCONTROL_STORE", file_env.url)

    result = CliRunner().invoke(app, ["list", "-o", "json"])

    assert 0 == result.exit_code, result.output
    assert '"name": "payment"' in result.stdout


def test_a_bad_store_url_is_a_usage_error():
    """An unknown scheme exits 2 and lists the accepted forms."""
    result = CliRunner().invoke(app, ["--store", "redis://x", "list"])

    assert 2 == result.exit_code
    assert (
        "error: invalid store URL 'redis://x' (--store): must be one of file://PATH, "
        "etcd://HOST:PORT[,HOST:PORT]/NAMESPACE, etcds://... (TLS) or memory://\n"
        == result.stderr
    )


def test_a_bad_namespace_is_a_usage_error(file_env: StoreEnv):
    """--namespace must follow the name grammar (no slash)."""
    result = file_env.cbctl("--namespace", "a/b", "list")

    assert 2 == result.exit_code
    assert (
        "error: invalid --namespace 'a/b': must be 1-128 characters of letters, "
        "digits, '.', '_' and '-', starting with a letter or a digit\n" == result.stderr
    )


def test_the_namespace_option_overrides_the_url(etcd_env: StoreEnv):
    """--namespace reads another namespace of the same etcd."""
    etcd_env.cbctl("set", "payment", "--max-failures", "2")
    other = etcd_env.url.rsplit("/", 1)[0] + "/elsewhere"

    here = CliRunner().invoke(
        app, ["--store", other, "--namespace", etcd_env.namespace, "list", "-o", "json"]
    )
    there = CliRunner().invoke(app, ["--store", other, "list", "-o", "json"])

    assert '"name": "payment"' in here.stdout
    assert "[]\n" == there.stdout


@pytest.mark.slow
def test_an_unreachable_etcd_fails_fast_with_one_line():
    """`list` against a port nobody listens on exits 1 in seconds, naming it."""
    port = free_port()
    start = time.monotonic()

    result = _cbctl("--store", f"etcd://127.0.0.1:{port}/x", "list")

    assert time.monotonic() - start < 5
    assert 1 == result.returncode
    assert re.match(
        rf"^error: etcd at 127\.0\.0\.1:{port} is unavailable \(read "
        r"'/cbcontrol/x/'\): .+\n$",
        result.stderr,
    ), result.stderr
    assert "" == result.stdout


def test_debug_shows_the_traceback(file_env: StoreEnv):
    """With --debug an error comes with its traceback; without, it is one line."""
    assert file_env.path is not None
    file_env.path.write_text("version: [\n")

    plain = file_env.cbctl("list")
    debug = file_env.cbctl("--debug", "list")

    assert 1 == plain.exit_code
    assert 1 == len(lines(plain.stderr))
    assert plain.stderr.startswith(f'error: file "{file_env.path}"')
    assert "Traceback (most recent call last):" in debug.stderr
    assert lines(debug.stderr)[-1] == lines(plain.stderr)[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["get", "payment", "-o", "json"], 0),
        (["set", "payment", "--max-failures", "0"], 2),
        (["get", "nothing"], 3),
        (["set", "payment", "--max-failures", "4", "--timeout", "0.2s"], 4),
    ],
)
def test_exit_codes_of_the_real_program(file_env: StoreEnv, args: list[str], code: int):
    """The installed entry point exits with the documented codes."""
    file_env.cbctl("set", "payment", "--max-failures", "3")
    file_env.fake_instance("payment")

    result = file_env.run(*args)

    assert code == result.returncode, result.stderr
    assert (0 == code) == ("" == result.stderr)


@pytest.mark.slow
def test_exit_code_1_of_the_real_program(file_env: StoreEnv):
    """A store file that does not parse is an operational error, in one line."""
    assert file_env.path is not None
    file_env.path.write_text("version: [\n")

    result = file_env.run("list")

    assert 1 == result.returncode
    assert 1 == len(lines(result.stderr))
    assert result.stderr.startswith("error: ")


def test_version_prints_the_library_version():
    """`cbctl version` names cbcontrol's version."""
    import cbcontrol

    result = CliRunner().invoke(app, ["version"])

    assert f"cbctl {cbcontrol.__version__}\n" == result.stdout
