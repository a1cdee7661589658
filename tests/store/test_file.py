"""The YAML file store: parsing, hot reload, the writer and the status directory."""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cbcontrol.exceptions import StoreError
from cbcontrol.store import Scope
from cbcontrol.store._file import FileBackend, status_dir, write_document
from tests.support.stores import Follower

if TYPE_CHECKING:
    from ruamel.yaml.comments import CommentedMap

TEMPLATE = """\
# Live breaker config (hand-edited)
version: 1
presets:
  checkout-critical: {{max_failures: 2, reset_timeout: 2m}}
breakers:
  payment:
    max_failures: {n}  # tuned during INC-41
    reset_timeout: 60s
  analytics:
    preset: analytics
    override: {{mode: forced_open, reason: "INC-42",
               until: "2026-11-27T12:00:00Z"}}
  search:
    override: {{mode: forced_closed, until: 2026-11-28T08:30:00Z}}
"""


def doc(n: int = 3) -> bytes:
    """The §5 document with payment's max_failures set to ``n``."""
    return TEMPLATE.format(n=n).encode()


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def max_failures(follower: Follower) -> object:
    """Payment's max_failures as the watch delivered it, or None."""
    data = follower.data("breakers", "payment")
    return None if data is None else data.get("max_failures")


def payment_is(follower: Follower, n: int) -> bool:
    """Whether the watch has payment's max_failures at ``n``."""
    return max_failures(follower) == n


def read(path: Path) -> dict[tuple[str, str], tuple[object, str, str | None]]:
    """``{(kind, name): (data, origin, error)}`` of one read of the file."""
    return {
        (d.kind, d.name): (d.data, d.origin, d.error)
        for d in FileBackend(path).read(Scope.DESIRED).documents
    }


# Three ways a file changes under a running application.
def write_in_place(path: Path, data: bytes) -> None:
    """Truncate and rewrite the file (``echo > file``, some editors)."""
    with path.open("wb") as file:
        file.write(data)


def write_and_rename(path: Path, data: bytes) -> None:
    """Write a temporary file and rename it over the original (most editors)."""
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_configmap(path: Path, data: bytes) -> None:
    """Update the file as the kubelet updates a ConfigMap volume (``..data`` swap)."""
    mount = path.parent
    stamped = mount / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.time_ns()}"
    stamped.mkdir()
    (stamped / path.name).write_bytes(data)
    data_link = mount / "..data"
    old = data_link.readlink() if data_link.is_symlink() else None
    (mount / "..data_tmp").symlink_to(stamped.name)
    (mount / "..data_tmp").replace(data_link)
    if old is not None:
        shutil.rmtree(mount / old)
    if not path.is_symlink():
        path.symlink_to(Path("..data") / path.name)


WRITERS = {
    "in-place": write_in_place,
    "rename": write_and_rename,
    "configmap": write_configmap,
}


Watch = Callable[[Path], Follower]


@pytest.fixture
def watch() -> Iterator[Watch]:
    """Follow a file's watch on a thread; at teardown, it must stop within 1.5 s."""
    running: list[Follower] = []

    def start(path: Path) -> Follower:
        follower = Follower(FileBackend(path), Scope.DESIRED).__enter__()
        running.append(follower)
        assert wait_until(lambda: follower.started)
        # The notifier starts right after the first read; give it that moment, then
        # prove it is live with a probe edit (a comment: the data do not change).
        time.sleep(0.05)
        path.resolve().write_bytes(path.read_bytes() + b"# probe\n")
        time.sleep(0.1)
        with follower._lock:
            follower.updates.clear()
        return follower

    yield start
    for follower in running:
        follower.__exit__(None, None, None)


def test_read_good_document(tmp_path: Path) -> None:
    """A good document gives an entry per breaker and preset, with plain data."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_bytes(doc())

    found = read(path)

    origin = f"file:{path}#"
    assert {
        ("presets", "checkout-critical"): (
            {"max_failures": 2, "reset_timeout": "2m"},
            origin + "presets.checkout-critical",
        ),
        ("breakers", "payment"): (
            {"max_failures": 3, "reset_timeout": "60s"},
            origin + "breakers.payment",
        ),
        ("breakers", "analytics"): (
            {
                "preset": "analytics",
                "override": {
                    "mode": "forced_open",
                    "reason": "INC-42",
                    "until": "2026-11-27T12:00:00Z",
                },
            },
            origin + "breakers.analytics",
        ),
        ("breakers", "search"): (
            # Unquoted, YAML would make a datetime; the source keeps the text.
            {"override": {"mode": "forced_closed", "until": "2026-11-28T08:30:00Z"}},
            origin + "breakers.search",
        ),
    } == {key: (data, origin) for key, (data, origin, _) in found.items()}
    assert {None} == {error for _, _, error in found.values()}


def test_a_missing_file_is_empty_to_read_and_an_error_to_watch(
    tmp_path: Path,
) -> None:
    """A file not created yet holds nothing; a watch reports it and waits for it."""
    path = tmp_path / "cbcontrol.yaml"

    found = read(path)
    with Follower(FileBackend(path), Scope.DESIRED) as follower:
        assert wait_until(lambda: follower.error)

    assert {} == found
    assert (
        f'file "{path}" does not exist (deleted, or not created yet); create it, '
        'e.g. with "version: 1"'
    ) == follower.error


def test_empty_sections_and_entries_and_no_version(tmp_path: Path) -> None:
    """A hand-edited file may omit version and leave a section or an entry empty."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_text("presets:\nbreakers:\n  payment:\n")

    assert {("breakers", "payment"): ({}, f"file:{path}#breakers.payment", None)} == (
        read(path)
    )


@pytest.mark.parametrize("style", WRITERS)
def test_run_delivers_each_write_style(
    tmp_path: Path, watch: Watch, style: str
) -> None:
    """An in-place write, a rename and a ConfigMap swap are each delivered once."""
    path = tmp_path / "cbcontrol.yaml"
    WRITERS[style](path, doc(3))
    follower = watch(path)

    WRITERS[style](path, doc(7))
    delivered = wait_until(lambda: max_failures(follower) == 7)
    time.sleep(0.2)  # let any duplicate delivery arrive before counting

    assert delivered
    assert [[("payment", {"max_failures": 7, "reset_timeout": "60s"})]] == [
        [(d.name, d.data) for d in u.documents] for _, u in follower.updates
    ]


def test_symlink_out_of_the_directory_is_followed(tmp_path: Path, watch: Watch) -> None:
    """Writes to a symlink's target elsewhere, and a re-pointed link, are delivered."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    (tmp_path / "b" / "real.yaml").write_bytes(doc(3))
    (tmp_path / "c" / "real.yaml").write_bytes(doc(5))
    path = tmp_path / "a" / "cbcontrol.yaml"
    path.symlink_to(tmp_path / "b" / "real.yaml")
    recorder = watch(path)

    write_in_place(tmp_path / "b" / "real.yaml", doc(4))
    target_written = wait_until(partial(payment_is, recorder, 4))
    (tmp_path / "a" / "link.tmp").symlink_to(tmp_path / "c" / "real.yaml")
    (tmp_path / "a" / "link.tmp").replace(path)
    repointed = wait_until(partial(payment_is, recorder, 5))
    # The watcher restarts on the new directory; a write inside that restart would
    # wait for the next resync (1 s), which this test must not rely on.
    time.sleep(0.1)
    write_in_place(tmp_path / "c" / "real.yaml", doc(6))
    new_target_written = wait_until(partial(payment_is, recorder, 6), timeout=0.5)

    assert target_written
    assert repointed
    assert new_target_written


def test_deletion_is_an_error_and_recreation_a_fresh_read(
    tmp_path: Path, watch: Watch
) -> None:
    """A deleted file is reported (nothing deleted); re-creating it is read whole."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_bytes(doc(3))
    follower = watch(path)

    path.unlink()
    deleted = wait_until(lambda: follower.error is not None)
    kept = max_failures(follower)
    path.write_bytes(doc(4))
    recreated = wait_until(lambda: max_failures(follower) == 4)

    assert deleted
    assert next(u.error for _, u in follower.updates).startswith(
        f'file "{path}" does not exist'
    )
    assert 3 == kept
    assert recreated
    assert follower.error is None
    assert follower.updates[-1][1].complete


@pytest.mark.parametrize("gap", [0.005, 0.1])
@pytest.mark.parametrize(
    "cut_after",
    [b"max_failures: 1", b'reason: "INC-42",\n'],
    ids=["mid-number", "line-end-in-flow-mapping"],
)
def test_half_written_file_is_never_applied(
    tmp_path: Path, watch: Watch, cut_after: bytes, gap: float
) -> None:
    """A file seen mid-write is not applied; the completed write is delivered."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_bytes(doc(3))
    recorder = watch(path)
    full = doc(10)
    cut = full.index(cut_after) + len(cut_after)

    with path.open("wb") as file:
        file.write(full[:cut])
        file.flush()
        time.sleep(gap)
        file.write(full[cut:])
    done = wait_until(lambda: max_failures(recorder) == 10)
    delivered = [d for _, u in recorder.updates for d in u.documents]

    assert done
    assert recorder.error is None
    # The truncated text "max_failures: 1" parses; it must never have been delivered,
    # nor the entries it lacks deleted.
    assert [] == [d for d in delivered if d.data is None and d.error is None]
    assert 1 not in [(d.data or {}).get("max_failures") for d in delivered]


def test_unparsable_file_keeps_last_good_with_line_info(tmp_path: Path) -> None:
    """Invalid YAML sets an error with its line and column and keeps the last good."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_text("version: 1\nbreakers:\n  payment: {max_failures: 3\n")

    with pytest.raises(StoreError) as bad:
        read(path)

    assert (
        f"file \"{path}\", line 4, column 1: invalid YAML: expected ',' or '}}', "
        "but got '<stream end>' (while parsing a flow mapping); fix the YAML there"
    ) == str(bad.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "- payment\n",
            (
                ': the top level must be a mapping with the keys "version", "presets", '
                '"breakers", got a list; start the file with "version: 1"'
            ),
        ),
        (
            "version: 2\n",
            (
                ': "version" must be 1, got 2 (int); this cbcontrol reads version 1 '
                "documents (or leave the key out)"
            ),
        ),
        (
            "version: 1\nbreaker:\n  payment: {}\n",
            (
                ": unknown top-level key 'breaker' (did you mean \"breakers\"?); use "
                '"version", "presets", "breakers"'
            ),
        ),
        (
            "breakers: [payment]\n",
            (
                ': "breakers" must be a mapping of name to fields, got a list; '
                'write e.g. "breakers: {payment: {max_failures: 3}}"'
            ),
        ),
        ("", ' is empty (or being written); write at least "version: 1"'),
        (
            "# every line commented out\n",
            (
                ': the top level must be a mapping with the keys "version", "presets", '
                '"breakers", got null; start the file with "version: 1"'
            ),
        ),
        ("breakers:\n  1: {}\n", ": breakers name 1 must be a string; quote it"),
        (
            "version: \udcff\n",
            (
                ", byte 9: invalid YAML: unacceptable character #x00ff: invalid start "
                "byte; fix the YAML there"
            ),
        ),
    ],
    ids=[
        "list",
        "version-2",
        "unknown-key",
        "breakers-list",
        "empty",
        "comments-only",
        "number-name",
        "bad-encoding",
    ],
)
def test_invalid_document_is_rejected_whole(
    tmp_path: Path, text: str, problem: str
) -> None:
    """A document with a bad shape is rejected whole, naming the file and the fix."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_bytes(text.encode(errors="surrogateescape"))

    with pytest.raises(StoreError) as bad:
        read(path)

    assert f'file "{path}"{problem}' == str(bad.value)


def test_one_bad_entry_is_reported_alone(tmp_path: Path) -> None:
    """A bad entry gets its own error and no data; the others are read."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_text("breakers:\n  payment: [3]\n  search: {max_failures: 9}\n")

    found = read(path)

    assert (
        None,
        (
            f'file "{path}", key "breakers.payment": must be a mapping of field to '
            'value, got a list; write e.g. "payment: {max_failures: 3}"'
        ),
    ) == (found["breakers", "payment"][0], found["breakers", "payment"][2])
    assert ({"max_failures": 9}, None) == (
        found["breakers", "search"][0],
        found["breakers", "search"][2],
    )


def test_a_bad_name_is_reported_and_never_applied(tmp_path: Path) -> None:
    """An entry whose name breaks the grammar is an ``invalid`` document."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_text('breakers:\n  "x/payment": {max_failures: 1}\n  payment: {}\n')

    found = read(path)

    assert [("breakers", "payment"), ("invalid", "breakers/x/payment")] == sorted(found)
    assert found["invalid", "breakers/x/payment"][2] == (
        f'file "{path}", key "breakers.x/payment": the name must be 1-128 characters '
        "of letters, digits, '.', '_' and '-', starting with a letter or a digit"
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{1: x}", 'key "breakers.payment": field name 1 must be a string; quote it'),
        (
            "{fallback: [cache, !!binary aGk=]}",
            (
                'key "breakers.payment.fallback[1]": unsupported YAML value '
                "b'hi' (bytes); use a string, number, boolean, list or mapping"
            ),
        ),
        (
            "3",
            (
                'key "breakers.payment": must be a mapping of field to value, got 3 '
                '(int); write e.g. "payment: {max_failures: 3}"'
            ),
        ),
    ],
    ids=["number-field", "binary-value", "scalar-entry"],
)
def test_entry_problems_are_reported_per_entry(
    tmp_path: Path, body: str, problem: str
) -> None:
    """A bad value inside an entry, never seen good, gives that entry no data."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_text(f"breakers:\n  payment: {body}\n")

    data, _, error = read(path)["breakers", "payment"]

    assert (None, f'file "{path}", {problem}') == (data, error)


def test_unreadable_path_is_a_source_error(tmp_path: Path) -> None:
    """A path that cannot be read (here a directory) is reported with the reason."""
    path = tmp_path / "cbcontrol.yaml"
    path.mkdir()

    with pytest.raises(StoreError) as unreadable:
        read(path)

    assert (
        f'file "{path}" cannot be read (Is a directory); check the path and its '
        "permissions"
    ) == str(unreadable.value)


def test_source_name_path_and_bad_debounce(tmp_path: Path) -> None:
    """The store names its absolute path; a negative debounce is refused."""
    relative = os.path.relpath(tmp_path / "x" / ".." / "cbcontrol.yaml")
    source = FileBackend(relative)

    with pytest.raises(
        ValueError, match=r"^FileBackend\(debounce_ms=...\) must be >= 0, got -1$"
    ):
        FileBackend(relative, debounce_ms=-1)
    assert tmp_path / "cbcontrol.yaml" == source.path
    assert f"file:{tmp_path / 'cbcontrol.yaml'}" == source.name


def test_watch_waits_for_a_missing_directory(tmp_path: Path) -> None:
    """The watch polls for a directory that does not exist yet, then reads the file."""
    path = tmp_path / "later" / "cbcontrol.yaml"
    with Follower(FileBackend(path), Scope.DESIRED) as follower:
        time.sleep(0.1)  # let the watch find the directory missing
        path.parent.mkdir()
        path.write_bytes(doc(8))
        found = wait_until(partial(payment_is, follower, 8), timeout=3)

    assert found


def test_unchanged_bytes_are_not_delivered(tmp_path: Path, watch: Watch) -> None:
    """Touching or rewriting the same bytes delivers nothing; a real change does."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_bytes(doc(3))
    follower = watch(path)
    data = path.read_bytes()

    os.utime(path)
    write_and_rename(path, data)
    time.sleep(0.3)
    quiet = list(follower.updates)
    write_in_place(path, doc(5))
    changed = wait_until(lambda: max_failures(follower) == 5)

    assert [] == quiet
    assert changed
    assert 1 == len(follower.updates)


def test_close_stops_a_watch(tmp_path: Path) -> None:
    """close() makes a running watch return promptly."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_bytes(doc())
    store = FileBackend(path)
    thread = threading.Thread(
        target=lambda: list(store.watch(Scope.DESIRED, threading.Event()))
    )
    thread.start()
    time.sleep(0.05)

    store.close()
    thread.join(timeout=1)

    assert not thread.is_alive()


def test_missing_ruamel_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ruamel.yaml, reading raises an ImportError naming the extra."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_bytes(doc())
    monkeypatch.setitem(sys.modules, "ruamel.yaml", None)

    with pytest.raises(
        ImportError,
        match=r"^YAML file support is not installed, run "
        r"`pip install cbcontrol\[yaml\]`$",
    ):
        read(path)


def test_missing_watchfiles_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without watchfiles, run() raises an ImportError naming the extra."""
    monkeypatch.setitem(sys.modules, "watchfiles", None)

    with pytest.raises(
        ImportError,
        match=r"^file watching is not installed, run "
        r"`pip install cbcontrol\[watch\]`$",
    ):
        next(
            FileBackend(tmp_path / "cbcontrol.yaml").watch(
                Scope.DESIRED, threading.Event()
            )
        )


def test_write_document_keeps_comments_and_mode(tmp_path: Path) -> None:
    """write_document edits in place and keeps comments and the file's mode."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_bytes(doc(3))
    path.chmod(0o640)

    def retune(document: CommentedMap) -> None:
        document["breakers"]["payment"]["max_failures"] = 4

    write_document(path, retune)

    # ruamel keeps comments and key order, but joins a multi-line flow mapping.
    joined = doc(4).replace(b'"INC-42",\n               until', b'"INC-42", until')
    assert joined == path.read_bytes()
    assert 0o640 == path.stat().st_mode & 0o777
    assert [] == [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_write_document_through_symlink_creates_and_refuses(tmp_path: Path) -> None:
    """Writes go through a symlink, start a missing file, and leave bad YAML alone."""
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "cbcontrol.yaml"
    link.symlink_to(real / "cbcontrol.yaml")

    write_document(link, lambda d: d.update({"breakers": {"payment": {"x": 1}}}))
    created = link.read_text()
    link.write_text("breakers: [\n")
    with pytest.raises(StoreError, match=r"invalid YAML: .*before changing it$"):
        write_document(link, lambda d: None)

    assert link.is_symlink()
    assert "version: 1\nbreakers:\n  payment:\n    x: 1\n" == created
    assert "breakers: [\n" == (real / "cbcontrol.yaml").read_text()


def test_write_document_errors_name_the_file(tmp_path: Path) -> None:
    """An unwritable location or a non-mapping document raises a StoreError."""
    nowhere = tmp_path / "missing" / "cbcontrol.yaml"
    listed = tmp_path / "cbcontrol.yaml"
    listed.write_text("- payment\n")

    with pytest.raises(StoreError) as unwritable:
        write_document(nowhere, lambda d: None)
    with pytest.raises(StoreError) as not_a_mapping:
        write_document(listed, lambda d: None)

    assert (
        f'file "{nowhere}" cannot be written (No such file or directory); check that '
        "its directory is writable (a ConfigMap volume is read-only: edit the "
        "ConfigMap)"
    ) == str(unwritable.value)
    assert (
        f'file "{listed}": the top level must be a mapping with the keys "version", '
        '"presets", "breakers", got a list; start the file with "version: 1"; fix it '
        "before changing it"
    ) == str(not_a_mapping.value)


def test_write_document_serializes_concurrent_writers(tmp_path: Path) -> None:
    """Eight threads incrementing a field ten times each never lose an update."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_text("# counter\nbreakers:\n  payment:\n    max_failures: 0\n")

    def bump(document: CommentedMap) -> None:
        document["breakers"]["payment"]["max_failures"] += 1

    def worker() -> None:
        for _ in range(10):
            write_document(path, bump)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    expected = "# counter\nbreakers:\n  payment:\n    max_failures: 80\n"
    assert expected == path.read_text()


def test_status_dir_is_a_sibling_or_where_the_environment_says(tmp_path: Path) -> None:
    """Status goes to <stem>.status beside the file, or to CBCONTROL_STATUS_DIR."""
    file = tmp_path / "cbcontrol.yaml"
    elsewhere = {"CBCONTROL_STATUS_DIR": str(tmp_path / "run")}

    assert tmp_path / "cbcontrol.status" == status_dir(file, {})
    assert tmp_path / "run" == status_dir(file, elsewhere)


def test_status_files_are_readable_by_the_directory_s_group(tmp_path: Path) -> None:
    """A status is written atomically, group-readable, in a set-group-id directory."""
    store = FileBackend(tmp_path / "cbcontrol.yaml", status=tmp_path / "status")
    writer = store.open_status("i-1")

    writer.publish({"app": "x"}, {"payment": {"state": "closed"}})
    path = tmp_path / "status" / "i-1.json"
    mode = path.stat().st_mode & 0o777
    dir_mode = (tmp_path / "status").stat().st_mode & 0o7777
    found = store.read(Scope.STATUS).documents
    writer.close()

    assert (0o640, 0o2750) == (mode, dir_mode)
    assert {("instances", "i-1", ""), ("status", "payment", "i-1")} == {
        d.key for d in found
    }
    assert not path.exists()


@pytest.mark.parametrize("style", WRITERS)
def test_write_to_delivery_latency(
    tmp_path: Path, watch: Watch, style: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Writes reach the watch quickly (p50/p99 printed; bounded only loosely)."""
    path = tmp_path / "cbcontrol.yaml"
    WRITERS[style](path, doc(0))
    recorder = watch(path)
    latencies = []

    for n in range(1, 31):
        began = time.perf_counter()
        WRITERS[style](path, doc(n))
        assert wait_until(partial(payment_is, recorder, n), timeout=3)
        latencies.append(recorder.updates[-1][0] - began)
        time.sleep(0.01)
    latencies.sort()
    p50, p99 = statistics.median(latencies), latencies[int(0.99 * len(latencies))]
    with capsys.disabled():  # the measurement is this test's output
        print(  # noqa: T201
            f"\n{style}: write->update p50={p50 * 1000:.0f} ms p99={p99 * 1000:.0f} ms"
        )

    assert p99 < 2.0
