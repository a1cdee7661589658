"""
Tables that hold up: each table at 80 and 160 columns on a real terminal, and piped,
with the hostile cases of an incident (a long error, 30 instances, a 60-character
breaker name).
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING

import pytest

from tests.cli import StoreEnv

if TYPE_CHECKING:
    from pathlib import Path

LONG_NAME = "checkout-" + "x" * 42 + "-payments"  # 60 characters
LONG_ERROR = (
    'breaker "payment": field "max_failures" from source '
    '"env:PAYMENT_CB_MAX_FAILURES" must be >= 1, got "0"; '
    + "the deployment sets it wrong; "
    * 18
).strip()
INSTANCES = 30


def _identity(number: int) -> tuple[str, dict[str, object]]:
    instance_id = f"checkout-web-{number:02d}-48{number:02d}-3fa2c1"
    now = time.time()
    at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now))
    return instance_id, {
        "format": 2,
        "instance_id": instance_id,
        "app": "checkout",
        "host": f"web-{number:02d}",
        "pid": 4800 + number,
        "started_at": at,
        "updated_at": at,
        "labels": {"zone": "eu-1" if number % 2 else "us-1"},
        "errors": {"breakers/payment": LONG_ERROR} if number == 7 else {},
    }


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> StoreEnv:
    """A file store in the middle of an incident."""
    path: Path = tmp_path_factory.mktemp("hostile") / "cbcontrol.yaml"
    path.write_text("version: 1\n")
    env = StoreEnv("file", f"file://{path}", path=path)
    for args in (
        ("set", LONG_NAME, "--max-failures", "4", "--reason", "INC-42 " * 20),
        ("set", "payment", "--reset-timeout", "45s"),
        ("trip", "payment", "-l", "zone=eu-1", "--reason", "INC-42 PSP down"),
    ):
        assert 0 == env.run(*args, "--no-wait").returncode
    with env.open() as store:
        specs = {n: (s.generation, s.digest) for n, s in store.breakers().items()}
    status = path.parent / "cbcontrol.status"
    status.mkdir()
    for number in range(INSTANCES):
        instance_id, identity = _identity(number)
        records = {}
        for name, (generation, digest) in specs.items():
            record: dict[str, object] = {
                "state": "closed",
                "gen": generation,
                "digest": digest,
            }
            if name == "payment" and number % 2:
                record["state"], record["reason"] = "forced_open", "INC-42 PSP down"
            if name == "payment" and number == 7:
                record["error"] = LONG_ERROR
            records[name] = record
        body = {"instance": identity, "breakers": records}
        (status / f"{instance_id}.json").write_text(json.dumps(body))
    return env


def _fresh(env: StoreEnv) -> None:
    """Touch the status files: the instances stay live while the tests run."""
    assert env.path is not None
    for path in (env.path.parent / "cbcontrol.status").glob("*.json"):
        path.touch()


TABLES = [
    ("list",),
    ("list", "-o", "wide"),
    ("get", "payment"),
    ("get", LONG_NAME),
    ("history", LONG_NAME),
    ("presets",),
    ("doctor",),
]
IDS = ["list", "list-wide", "get", "get-long-name", "history", "presets", "doctor"]


def _ids_and_names() -> list[str]:
    return [_identity(n)[0] for n in range(INSTANCES)]


@pytest.mark.parametrize("args", TABLES, ids=IDS)
def test_piped_tables_are_one_row_a_line_never_cut(
    hostile: StoreEnv, args: tuple[str, ...]
):
    """Piped: nothing cut (no …), every name and id whole, no wrapped continuation."""
    _fresh(hostile)

    result = hostile.run(*args)

    assert "…" not in result.stdout
    assert result.returncode in (0, 1), result.stderr
    text = result.stdout
    if args[0] in ("list", "get"):
        assert LONG_NAME in text or args == ("get", "payment")
    if args[0] == "get" and args[1] == "payment":
        rows = [line for line in text.splitlines() if line.startswith("checkout-web-")]
        assert sorted(_ids_and_names()) == sorted(row.split()[0] for row in rows)
        assert all(row.split()[1] in ("closed", "forced_open") for row in rows)


@pytest.mark.parametrize("columns", [80, 160])
@pytest.mark.parametrize("args", TABLES, ids=IDS)
def test_terminal_tables_fit_or_keep_what_identifies_a_row(
    hostile: StoreEnv, args: tuple[str, ...], columns: int
):
    """At 80 and 160 columns: lines fit unless a name alone is wider; ids never cut."""
    _fresh(hostile)

    text = hostile.terminal(*args, columns=columns)

    assert "Traceback" not in text
    too_wide = [line for line in text.splitlines() if len(line) > columns]
    if LONG_NAME not in text:  # only a name too wide to fit may widen its table
        assert [] == too_wide
    if args[:2] == ("get", "payment"):
        for instance_id in _ids_and_names():
            assert instance_id in text
        assert "forced_open" in text
    if args[0] == "list":
        assert LONG_NAME in text
        assert "closed:15,forced_open:15" in text


def test_a_long_error_goes_to_a_footnote_once(hostile: StoreEnv):
    """The row refers to [n]; the error is printed once, under the table."""
    _fresh(hostile)

    piped = hostile.run("list").stdout
    narrow = hostile.terminal("list", columns=80)
    doctor = hostile.run("doctor").stdout

    row = next(line for line in piped.splitlines() if line.startswith("payment "))
    assert row.rstrip().endswith("[1]")
    assert 1 == piped.count(LONG_ERROR)
    assert 1 == doctor.count(LONG_ERROR[:60])
    assert all(len(line) <= 80 for line in narrow.splitlines() if "[1]" in line[:4])


def test_instances_are_named_by_state_in_wide_and_watch_views(hostile: StoreEnv):
    """`list -o wide` says which instance is in which state."""
    _fresh(hostile)

    wide = hostile.run("list", "-o", "wide").stdout

    assert "checkout-web-01-4801-3fa2c1=forced_open" in wide
    assert "checkout-web-02-4802-3fa2c1=closed" in wide


def test_no_color_and_pipes_are_plain(hostile: StoreEnv):
    """No escape sequences when piped, nor on a terminal with NO_COLOR."""
    _fresh(hostile)

    piped = hostile.run("get", "payment").stdout
    terminal = hostile.terminal("get", "payment", columns=160)

    assert "\x1b[" not in piped
    assert "\x1b[" not in terminal


@pytest.mark.parametrize("columns", [80, 160])
def test_the_watch_view_names_instances_and_shows_events(
    hostile: StoreEnv, columns: int
):
    """On a terminal: a row per instance, the override's actor, and the event line."""
    import threading

    from tests.cli import CBCTL, run_in_terminal

    _fresh(hostile)
    found: list[str] = []
    argv = [str(CBCTL), "--store", hostile.url, "watch", "--count", "1"]
    watcher = threading.Thread(
        target=lambda: found.append(run_in_terminal(argv, columns)), daemon=True
    )
    watcher.start()
    time.sleep(2.0)  # its first frame is drawn
    jitter = str(columns / 1000)  # a new value each time: a change to see
    assert (
        0 == hostile.run("set", "payment", "--jitter", jitter, "--no-wait").returncode
    )
    watcher.join(timeout=30)

    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", found[0])  # redraws, not text
    assert "checkout-web-01-4801-3fa2c1" in text
    assert "INC-42" in text  # the override's reason, by instance
    assert re.search(r"spec     payment: generation \d+ → \d+ by ", text)
    too_wide = [line for line in text.splitlines() if len(line) > columns]
    table = (LONG_NAME, "BREAKER ", "payment ", " " * 60)  # rows as wide as the name
    assert [] == [line for line in too_wide if not line.startswith(table)]
