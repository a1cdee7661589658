"""
`cbctl get` and `cbctl list` without Typer (cbctl._quick).

The quick path must be invisible: it takes only the plain forms, and for those it
prints exactly what the Typer commands print, with the same exit code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from cbctl._quick import Invocation, parse, run
from cbctl._session import GlobalOptions
from tests.cli import CBCTL

if TYPE_CHECKING:
    from tests.cli import StoreEnv

_URL = "etcd://127.0.0.1:2379/prod"
# Values as operators write them: a duration as text, a float as an integer.
SET_PAYMENT = ("set", "payment", "--max-failures", "3", "--reset-timeout", "45s")
SET_PAYMENT += ("--failure-rate-threshold", "50")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["get", "payment"], ("get", None, None, "payment", "table")),
        (["list"], ("list", None, None, None, "table")),
        (["--store", _URL, "get", "payment"], ("get", _URL, None, "payment", "table")),
        (["--store=" + _URL, "list", "-o", "json"], ("list", _URL, None, None, "json")),
        (
            ["--namespace", "dev", "--store", _URL, "get", "-o", "yaml", "payment"],
            ("get", _URL, "dev", "payment", "yaml"),
        ),
        (["get", "payment", "--output=json"], ("get", None, None, "payment", "json")),
        (["get", "payment", "-ojson"], ("get", None, None, "payment", "json")),
        (
            ["get", "payment", "-o", "yaml", "-o", "json"],
            ("get", None, None, "payment", "json"),
        ),
    ],
)
def test_plain_get_and_list_are_taken(argv: list[str], expected: tuple[object, ...]):
    """The plain forms of `get` and `list` parse to what Typer would pass."""
    command, store, namespace, name, output = expected

    assert Invocation(
        command, GlobalOptions(store=store, namespace=namespace), name, output
    ) == parse(argv)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["get", "--help"],
        ["get", "-h"],
        ["--debug", "get", "payment"],
        ["get"],
        ["get", "payment", "analytics"],
        ["get", "payment", "-o", "xml"],
        ["get", "payment", "-o"],
        ["get", "--", "payment"],
        ["get", "payment", "--limit", "3"],
        ["list", "payment"],
        ["lst"],
        ["set", "payment", "--max-failures", "3"],
        ["--store"],
        ["--store=", "get", "payment"],
        ["--store", _URL, "--store", _URL, "get", "payment"],
        ["--verbose", "get", "payment"],
    ],
)
def test_everything_else_is_left_to_typer(argv: list[str]):
    """Help, --debug, unknown options and usage errors go to Typer, unparsed."""
    assert parse(argv) is None


def test_the_store_comes_from_the_environment_as_with_typer(
    monkeypatch: pytest.MonkeyPatch,
):
    """Without --store, a non-empty CBCONTROL_STORE is the store, as Typer reads it."""
    monkeypatch.setenv("CBCONTROL_STORE", _URL)
    from_env = parse(["get", "payment"])
    monkeypatch.setenv("CBCONTROL_STORE", "")
    empty = parse(["get", "payment"])

    assert (_URL, None) == (
        from_env.options.store if from_env else "?",
        empty.options.store if empty else "?",
    )


def _volatile(text: str) -> str:
    """The output with heartbeat times masked (statuses are rewritten between reads)."""
    return re.sub(r'("?heartbeat_at"?: *)"?[-0-9T:.+Z]+"?', r"\1<t>", text)


@pytest.mark.parametrize(
    "args",
    [
        ["get", "payment"],
        ["get", "payment", "-o", "json"],
        ["get", "analytics", "-o", "yaml"],
        ["get", "stale"],
        ["get", "paymnt"],
        ["list"],
        ["list", "-o", "json"],
    ],
    ids=" ".join,
)
def test_the_quick_path_prints_what_typer_prints(
    env: StoreEnv, args: list[str], capsys: pytest.CaptureFixture[str]
):
    """Same stdout, stderr and exit code as the Typer command, on both stores."""
    env.cbctl(*SET_PAYMENT, "--no-wait")
    env.cbctl("set", "stale", "--max-failures", "4", "--no-wait")
    env.instance("payment", "analytics")
    env.fake_instance("stale")  # never applies the spec: cbctl must validate it
    invocation = parse(["--store", env.url, *args])
    assert invocation is not None

    code = run(invocation)
    quick = capsys.readouterr()
    typer = env.cbctl(*args)

    assert (typer.exit_code, _volatile(typer.stdout), typer.stderr) == (
        code,
        _volatile(quick.out),
        quick.err,
    )


@pytest.mark.etcd
def test_get_and_list_load_neither_typer_nor_pydantic(etcd_env: StoreEnv):
    """
    `cbctl get` and `list` on etcd import neither Typer nor pydantic.

    The spec was applied by the live instance, so cbctl need not validate it. Typer and
    pydantic cost ~30 ms and ~40 ms of a ~100 ms run (bench/ack.py measures the whole).
    The spec is written as operators write it (a duration as text, a float as an
    integer), so cbctl cannot simply take the stored values as the library's.
    """
    etcd_env.cbctl(*SET_PAYMENT)
    etcd_env.instance("payment")
    loaded = {}
    for args in (["get", "payment"], ["list", "-o", "json"]):
        result = subprocess.run(
            [
                sys.executable,
                "-X",
                "importtime",
                str(CBCTL),
                "--store",
                etcd_env.url,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        modules = {
            line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
        }
        loaded[args[0]] = sorted(
            modules & {"typer", "click", "pydantic", "pydantic_core"}
        )
        assert "payment" in result.stdout

    assert {"get": [], "list": []} == loaded


@pytest.mark.parametrize("output", ["table", "json"])
def test_a_reader_that_goes_away_ends_cbctl_quietly(env: StoreEnv, output: str):
    """`cbctl list | head -0`: exit 1 as Typer does, with no message."""
    env.cbctl("set", "payment", "--max-failures", "3", "--no-wait")
    process = subprocess.Popen(
        [str(CBCTL), "--store", env.url, "list", "-o", output],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.close()  # long before cbctl writes its table
    _, stderr = process.communicate(timeout=60)

    assert (1, b"") == (process.returncode, stderr)
