"""The YAML file source: parsing, hot reload, last-good handling, and the writer."""

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

from cbcontrol.config.sources._file import (
    FileSource,
    _digest,
    status_dir,
    write_document,
)
from cbcontrol.exceptions import StoreError

if TYPE_CHECKING:
    from ruamel.yaml.comments import CommentedMap

    from cbcontrol.config.sources._base import SourceSnapshot

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


def max_failures(snapshot: SourceSnapshot | None) -> object:
    """Payment's max_failures in a snapshot, or None."""
    if snapshot is None:
        return None
    entry = snapshot.entries.get(("breakers", "payment"))
    return None if entry is None or entry.data is None else entry.data["max_failures"]


def payment_is(recorder: Recorder, n: int) -> bool:
    """Whether the latest delivery has payment's max_failures at ``n``."""
    return max_failures(recorder.last) == n


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


class Recorder:
    """Collects delivered snapshots with their arrival times."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[float, SourceSnapshot]] = []

    def __call__(self, snapshot: SourceSnapshot) -> None:
        """Record one delivery."""
        with self.lock:
            self.calls.append((time.perf_counter(), snapshot))

    @property
    def snapshots(self) -> list[SourceSnapshot]:
        """Every snapshot delivered so far."""
        with self.lock:
            return [snapshot for _, snapshot in self.calls]

    @property
    def last(self) -> SourceSnapshot | None:
        """The latest snapshot delivered, if any."""
        with self.lock:
            return self.calls[-1][1] if self.calls else None


Watch = Callable[[Path], tuple[FileSource, Recorder]]


@pytest.fixture
def watch() -> Iterator[Watch]:
    """Run a FileSource on a thread; at teardown, check that it stops within 0.5 s."""
    running: list[tuple[threading.Event, threading.Thread]] = []

    def start(path: Path) -> tuple[FileSource, Recorder]:
        source, recorder, stop = FileSource(path), Recorder(), threading.Event()
        source.read()
        thread = threading.Thread(target=source.run, args=(recorder, stop))
        thread.start()
        running.append((stop, thread))
        # run() starts the notifier right after its first read; give it that moment,
        # then prove it is live with a probe edit (a comment: the data do not change).
        time.sleep(0.05)
        path.resolve().write_bytes(path.read_bytes() + b"# probe\n")
        assert wait_until(lambda: recorder.last is not None)
        with recorder.lock:
            recorder.calls.clear()
        return source, recorder

    yield start
    for stop, thread in running:
        began = time.monotonic()
        stop.set()
        thread.join(timeout=2)
        assert not thread.is_alive()
        assert time.monotonic() - began < 0.5


def test_read_good_document(tmp_path: Path) -> None:
    """A good document gives an entry per breaker and preset, with plain data."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_bytes(doc())

    snapshot = FileSource(path).read()

    origin = f"file:{path}#"
    assert f"file:{path}" == snapshot.source
    assert _digest(doc()) == snapshot.revision
    assert snapshot.error is None
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
    } == {key: (e.data, e.origin) for key, e in snapshot.entries.items()}
    assert all(e.error is None for e in snapshot.entries.values())


def test_read_missing_file_before_any_good_read(tmp_path: Path) -> None:
    """A file that never existed gives no entries and an error naming it."""
    path = tmp_path / "cbcontrol.yaml"

    snapshot = FileSource(path).read()

    assert {} == snapshot.entries
    assert (
        f'file "{path}" does not exist (deleted, or not created yet); create it, '
        'e.g. with "version: 1"'
    ) == snapshot.error


def test_empty_sections_and_entries_and_no_version(tmp_path: Path) -> None:
    """A hand-edited file may omit version and leave a section or an entry empty."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_text("presets:\nbreakers:\n  payment:\n")

    snapshot = FileSource(path).read()

    assert snapshot.error is None
    assert {("breakers", "payment"): {}} == {
        key: e.data for key, e in snapshot.entries.items()
    }


@pytest.mark.parametrize("style", WRITERS)
def test_run_delivers_each_write_style(
    tmp_path: Path, watch: Watch, style: str
) -> None:
    """An in-place write, a rename and a ConfigMap swap are each delivered once."""
    path = tmp_path / "cbcontrol.yaml"
    WRITERS[style](path, doc(3))
    _, recorder = watch(path)

    WRITERS[style](path, doc(7))
    delivered = wait_until(lambda: max_failures(recorder.last) == 7)
    time.sleep(0.2)  # let any duplicate delivery arrive before counting

    assert delivered
    assert [7] == [max_failures(s) for s in recorder.snapshots]
    assert recorder.last is not None
    assert _digest(doc(7)) == recorder.last.revision


def test_symlink_out_of_the_directory_is_followed(tmp_path: Path, watch: Watch) -> None:
    """Writes to a symlink's target elsewhere, and a re-pointed link, are delivered."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    (tmp_path / "b" / "real.yaml").write_bytes(doc(3))
    (tmp_path / "c" / "real.yaml").write_bytes(doc(5))
    path = tmp_path / "a" / "cbcontrol.yaml"
    path.symlink_to(tmp_path / "b" / "real.yaml")
    _, recorder = watch(path)

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


def test_deletion_keeps_last_good_and_recreation_clears_error(
    tmp_path: Path, watch: Watch
) -> None:
    """A deleted file sets the error and keeps the entries; re-creating it clears it."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_bytes(doc(3))
    _, recorder = watch(path)

    path.unlink()
    deleted = wait_until(lambda: recorder.last is not None)
    gone = recorder.last
    path.write_bytes(doc(4))
    recreated = wait_until(lambda: max_failures(recorder.last) == 4)

    assert deleted
    assert gone is not None
    assert gone.error is not None
    assert gone.error.startswith(f'file "{path}" does not exist')
    assert 3 == max_failures(gone)
    assert recreated
    assert recorder.last is not None
    assert recorder.last.error is None


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
    _, recorder = watch(path)
    full = doc(10)
    cut = full.index(cut_after) + len(cut_after)

    with path.open("wb") as file:
        file.write(full[:cut])
        file.flush()
        time.sleep(gap)
        file.write(full[cut:])
    done = wait_until(lambda: max_failures(recorder.last) == 10)

    assert done
    assert recorder.last is not None
    assert recorder.last.error is None
    # The truncated text "max_failures: 1" parses; it must never have been applied.
    assert [] == [
        s for s in recorder.snapshots if s.error is None and len(s.entries) < 4
    ]
    assert 1 not in [max_failures(s) for s in recorder.snapshots]


def test_unparsable_file_keeps_last_good_with_line_info(tmp_path: Path) -> None:
    """Invalid YAML sets an error with its line and column and keeps the last good."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_bytes(doc(3))
    source = FileSource(path)
    good = source.read()

    path.write_text("version: 1\nbreakers:\n  payment: {max_failures: 3\n")
    bad = source.read()

    assert (
        f"file \"{path}\", line 4, column 1: invalid YAML: expected ',' or '}}', "
        "but got '<stream end>' (while parsing a flow mapping); fix the YAML there"
    ) == bad.error
    assert good.entries == bad.entries
    assert good.revision != bad.revision


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
    path.write_bytes(doc(3))
    source = FileSource(path)
    good = source.read()

    path.write_bytes(text.encode(errors="surrogateescape"))
    bad = source.read()

    assert f'file "{path}"{problem}' == bad.error
    assert good.entries == bad.entries


def test_one_bad_entry_keeps_its_last_good_data(tmp_path: Path) -> None:
    """A bad entry gets its own error and keeps its data; the others are updated."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_text("breakers:\n  payment: {max_failures: 3}\n  search: {}\n")
    source = FileSource(path)
    source.read()

    path.write_text("breakers:\n  payment: [3]\n  search: {max_failures: 9}\n")
    snapshot = source.read()
    payment = snapshot.entries["breakers", "payment"]

    assert snapshot.error is None
    assert {"max_failures": 3} == payment.data
    assert (
        f'file "{path}", key "breakers.payment": must be a mapping of field to value, '
        'got a list; write e.g. "payment: {max_failures: 3}"'
    ) == payment.error
    assert {"max_failures": 9} == snapshot.entries["breakers", "search"].data
    assert snapshot.entries["breakers", "search"].error is None


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

    snapshot = FileSource(path).read()
    payment = snapshot.entries["breakers", "payment"]

    assert snapshot.error is None
    assert payment.data is None
    assert f'file "{path}", {problem}' == payment.error


def test_unreadable_path_is_a_source_error(tmp_path: Path) -> None:
    """A path that cannot be read (here a directory) is reported with the reason."""
    path = tmp_path / "cbcontrol.yaml"
    path.mkdir()

    snapshot = FileSource(path).read()

    assert (
        f'file "{path}" cannot be read (Is a directory); check the path and its '
        "permissions"
    ) == snapshot.error


def test_source_name_path_and_bad_debounce(tmp_path: Path) -> None:
    """The source names its absolute path; a negative debounce is refused."""
    relative = os.path.relpath(tmp_path / "x" / ".." / "cbcontrol.yaml")
    source = FileSource(relative)

    with pytest.raises(
        ValueError, match=r"^FileSource\(debounce_ms=...\) must be >= 0, got -1$"
    ):
        FileSource(relative, debounce_ms=-1)
    assert tmp_path / "cbcontrol.yaml" == source.path
    assert f"file:{tmp_path / 'cbcontrol.yaml'}" == source.name


def test_run_waits_for_a_missing_directory(tmp_path: Path) -> None:
    """run() polls for a directory that does not exist yet and reads the file in it."""
    path = tmp_path / "later" / "cbcontrol.yaml"
    source, recorder, stop = FileSource(path), Recorder(), threading.Event()
    thread = threading.Thread(target=source.run, args=(recorder, stop))
    thread.start()
    time.sleep(0.1)  # let run() find the directory missing

    path.parent.mkdir()
    path.write_bytes(doc(8))
    found = wait_until(partial(payment_is, recorder, 8), timeout=3)
    stop.set()
    thread.join(timeout=2)

    assert found
    assert not thread.is_alive()


def test_unchanged_bytes_are_not_delivered(tmp_path: Path, watch: Watch) -> None:
    """Touching or rewriting the same bytes delivers nothing; a real change does."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_bytes(doc(3))
    _, recorder = watch(path)
    data = path.read_bytes()

    os.utime(path)
    write_and_rename(path, data)
    time.sleep(0.3)
    quiet = recorder.snapshots
    write_in_place(path, doc(5))
    changed = wait_until(lambda: max_failures(recorder.last) == 5)

    assert [] == quiet
    assert changed
    assert 1 == len(recorder.snapshots)


def test_close_stops_run(tmp_path: Path) -> None:
    """close() makes a running run() return promptly."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_bytes(doc())
    source = FileSource(path)
    thread = threading.Thread(target=source.run, args=(Recorder(), threading.Event()))
    thread.start()
    time.sleep(0.05)

    source.close()
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
        FileSource(path).read()


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
        FileSource(tmp_path / "cbcontrol.yaml").run(Recorder(), threading.Event())


def test_write_document_keeps_comments_and_mode(tmp_path: Path) -> None:
    """write_document edits in place, keeps comments and mode, returns the revision."""
    path = tmp_path / "cbcontrol.yaml"
    path.write_bytes(doc(3))
    path.chmod(0o640)

    def retune(document: CommentedMap) -> None:
        document["breakers"]["payment"]["max_failures"] = 4

    revision = write_document(path, retune)

    # ruamel keeps comments and key order, but joins a multi-line flow mapping.
    joined = doc(4).replace(b'"INC-42",\n               until', b'"INC-42", until')
    assert joined == path.read_bytes()
    assert 0o640 == path.stat().st_mode & 0o777
    assert FileSource(path).read().revision == revision
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
        f'file "{listed}": the top level must be a mapping, got a list; fix the file '
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


def test_status_dir_is_a_sibling(tmp_path: Path) -> None:
    """The status directory is <stem>.status beside the file."""
    assert tmp_path / "cbcontrol.status" == status_dir(tmp_path / "cbcontrol.yaml")


@pytest.mark.parametrize("style", WRITERS)
def test_write_to_delivery_latency(
    tmp_path: Path, watch: Watch, style: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Writes reach on_change quickly (p50/p99 printed; bounded only loosely)."""
    path = tmp_path / "cbcontrol.yaml"
    WRITERS[style](path, doc(0))
    _, recorder = watch(path)
    latencies = []

    for n in range(1, 31):
        began = time.perf_counter()
        WRITERS[style](path, doc(n))
        assert wait_until(partial(payment_is, recorder, n), timeout=3)
        with recorder.lock:
            latencies.append(recorder.calls[-1][0] - began)
        time.sleep(0.01)
    latencies.sort()
    p50, p99 = statistics.median(latencies), latencies[int(0.99 * len(latencies))]
    with capsys.disabled():  # the measurement is this test's output
        print(  # noqa: T201
            f"\n{style}: write->on_change p50={p50 * 1000:.0f} ms "
            f"p99={p99 * 1000:.0f} ms"
        )

    assert p99 < 2.0
