"""
The YAML file store: desired state in one file, watched for changes (DESIGN.md §5).

Theory of operation. :class:`FileSource` reads one document (``version``, ``presets``,
``breakers``) and delivers one :class:`RawEntry` per preset and per breaker. It watches
the file's *directory*, not the file: editors save by renaming a temporary file over
the original, and Kubernetes updates a ConfigMap volume by swapping the ``..data``
symlink that ``cbcontrol.yaml`` points through; a watch on the file itself loses both.
Any change in the directory (not recursive) triggers a re-read, and nothing is delivered
while the file's bytes are unchanged, so a busy neighbouring file costs reads, never
deliveries. A resync every second catches whatever the notifier may have missed.

A reader can meet a file part-way through an in-place write. A write caught in progress
usually stops mid-line, so content that is empty or lacks its final newline counts only
once the file has been still for 0.2 s; whatever then fails to parse or validate is
rejected with the last good entries kept, and the rest of the write raises a new event.
A cut exactly at a line end that still parses cannot be told apart: atomic writers
(:func:`write_document`, renaming editors, Kubernetes) never expose a partial file.

A hand-edited file may omit ``version`` (it means 1) and may leave a section or an entry
empty (``breakers:`` or ``payment:`` with nothing under it), which counts as ``{}``.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import functools
import hashlib
import io
import json
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cbcontrol.config.sources._base import Kind, RawEntry, SourceSnapshot
from cbcontrol.exceptions import StoreError

if TYPE_CHECKING:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

__all__ = ["FileSource", "status_dir", "write_document"]

_log = logging.getLogger(__name__)

_KINDS: Final[tuple[Kind, ...]] = ("presets", "breakers")
_TOP_KEYS: Final = ("version", "presets", "breakers")
_RESYNC_MS: Final = 1_000
_SETTLE_ROUNDS: Final = 3
_SETTLE_S: Final = 0.2

_Parsed = dict[tuple[Kind, str], tuple[dict[str, object] | None, str | None]]


class _RejectedError(Exception):
    """A whole-document problem; the message becomes the snapshot's error."""


class _EntryError(Exception):
    """A problem confined to one entry (or a value inside it)."""


def _digest(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def _absolute(path: str | os.PathLike[str]) -> Path:
    # Lexically absolute, symlinks kept: resolve() would pin a ConfigMap's current
    # timestamped directory, which the next update deletes.
    return Path(os.path.abspath(path))  # noqa: PTH100


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{value!r} ({type(value).__name__})"


def _new_yaml(typ: str) -> YAML:
    try:
        from ruamel.yaml import YAML
    except ImportError as exc:
        msg = "YAML file support is not installed, run `pip install cbcontrol[yaml]`"
        raise ImportError(msg) from exc
    # Documents are small: the pure parser costs nothing and marks errors the same way
    # whether or not the C extension is installed.
    return YAML(typ=typ, pure=True)


@functools.cache
def _text_timestamps() -> type[Any]:
    from ruamel.yaml.constructor import SafeConstructor

    class _Constructor(SafeConstructor):
        def construct_text(self, node: Any) -> Any:
            return self.construct_scalar(node)

    # An unquoted ``until: 2026-11-27T12:00:00Z`` would become a datetime; keep the
    # text as written, so quoted and unquoted timestamps reach pydantic alike.
    _Constructor.add_constructor(
        "tag:yaml.org,2002:timestamp", _Constructor.construct_text
    )
    return _Constructor


def _syntax_message(where: str, exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        at = f", line {mark.line + 1}, column {mark.column + 1}"
    else:  # a ReaderError (bad encoding) has a byte offset instead
        at = f", byte {exc.position}" if hasattr(exc, "position") else ""
    problem = getattr(exc, "problem", None) or str(exc).split("\n", 1)[0]
    context = getattr(exc, "context", None)
    why = f"{problem} ({context})" if context else problem
    return f'file "{where}"{at}: invalid YAML: {why}; fix the YAML there'


def _plain(value: object, key: str) -> object:
    """Copy a parsed value into plain dicts, lists and scalars, or raise _EntryError."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_plain(item, f"{key}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        return _plain_map(value, key)
    msg = (
        f'key "{key}": unsupported YAML value {_describe(value)}; '
        "use a string, number, boolean, list or mapping"
    )
    raise _EntryError(msg)


def _plain_map(value: Mapping[object, object], key: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, item in value.items():
        if not isinstance(name, str):
            msg = f'key "{key}": field name {name!r} must be a string; quote it'
            raise _EntryError(msg)
        out[name] = _plain(item, f"{key}.{name}")
    return out


def _parse(raw: bytes, where: str) -> _Parsed:
    """Parse and check a whole document (syntax only), or raise _RejectedError."""
    if not raw.strip():
        msg = f'file "{where}" is empty (or being written); write at least "version: 1"'
        raise _RejectedError(msg)
    yaml = _new_yaml("safe")
    yaml.Constructor = _text_timestamps()
    from ruamel.yaml.error import YAMLError

    try:
        doc = yaml.load(raw)
    except YAMLError as exc:
        raise _RejectedError(_syntax_message(where, exc)) from exc
    _check_top_level(doc, where)
    parsed: _Parsed = {}
    for kind in _KINDS:
        section = doc.get(kind)
        if section is None:  # "breakers:" with every entry commented out
            continue
        if not isinstance(section, dict):
            msg = (
                f'file "{where}": "{kind}" must be a mapping of name to fields, got '
                f'{_describe(section)}; write e.g. "{kind}: {{payment: {{max_failures: '
                '3}}"'
            )
            raise _RejectedError(msg)
        for name, body in section.items():
            if not isinstance(name, str):
                msg = f'file "{where}": {kind} name {name!r} must be a string; quote it'
                raise _RejectedError(msg)
            try:
                parsed[kind, name] = (_entry(body, kind, name), None)
            except _EntryError as exc:
                parsed[kind, name] = (None, f'file "{where}", {exc}')
    return parsed


def _check_top_level(doc: object, where: str) -> None:
    allowed = ", ".join(f'"{k}"' for k in _TOP_KEYS)
    if not isinstance(doc, dict):
        msg = (
            f'file "{where}": the top level must be a mapping with the keys {allowed}, '
            f'got {_describe(doc)}; start the file with "version: 1"'
        )
        raise _RejectedError(msg)
    for key in doc:
        if key not in _TOP_KEYS:
            near = difflib.get_close_matches(str(key), _TOP_KEYS, n=1)
            hint = f' (did you mean "{near[0]}"?)' if near else ""
            msg = f'file "{where}": unknown top-level key {key!r}{hint}; use {allowed}'
            raise _RejectedError(msg)
    version = doc.get("version", 1)
    # type() rather than isinstance(): ``version: true`` is not 1.
    if type(version) is not int or version != 1:
        msg = (
            f'file "{where}": "version" must be 1, got {_describe(version)}; this '
            "cbcontrol reads version 1 documents (or leave the key out)"
        )
        raise _RejectedError(msg)


def _entry(body: object, kind: Kind, name: str) -> dict[str, object]:
    if body is None:  # "payment:" with nothing under it
        return {}
    if not isinstance(body, dict):
        msg = (
            f'key "{kind}.{name}": must be a mapping of field to value, got '
            f'{_describe(body)}; write e.g. "{name}: {{max_failures: 3}}"'
        )
        raise _EntryError(msg)
    return _plain_map(body, f"{kind}.{name}")


class _Stop:
    """Set by the caller's stop event or by :meth:`FileSource.close`."""

    def __init__(self, stop: threading.Event, closed: threading.Event) -> None:
        self.stop, self.closed = stop, closed

    def is_set(self) -> bool:  # all that watchfiles needs of a stop_event
        return self.stop.is_set() or self.closed.is_set()


class FileSource:
    """
    A live source backed by one YAML file (DESIGN.md §5), hot-reloaded on change.

    Each ``breakers.<name>`` and ``presets.<name>`` becomes a :class:`RawEntry` with the
    origin ``file:<abs path>#breakers.<name>``; the snapshot's revision is a hash of the
    file's bytes. A missing, unparsable or invalid document keeps the last good
    entries and sets :attr:`SourceSnapshot.error`; a bad entry keeps its own last good
    data and sets :attr:`RawEntry.error`.

    Args:
        path: The file. It may be missing at first, and may be a symlink (ConfigMap).
        debounce_ms: The longest time changes are grouped before a re-read; a quiet
            spell of half as long (10-50 ms) ends a group sooner.

    .. versionadded:: 0.1.0
    """

    def __init__(self, path: str | os.PathLike[str], *, debounce_ms: int = 50) -> None:
        if debounce_ms < 0:
            msg = f"FileSource(debounce_ms=...) must be >= 0, got {debounce_ms!r}"
            raise ValueError(msg)
        # Absolute but unresolved: a ConfigMap's target moves on every update.
        self._path = _absolute(path)
        self._name = f"file:{self._path}"
        self._debounce_ms = debounce_ms
        # watchfiles ends a batch after one step without new events (or at debounce):
        # 25 ms by default puts write-to-delivery near 50 ms, and the stop event is
        # polled as often. Its own default debounce (1.6 s) is far too slow here.
        self._step_ms = max(10, min(50, debounce_ms // 2))
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._seen: str | None = None
        self._snapshot = SourceSnapshot(source=self._name, revision="")

    @property
    def name(self) -> str:
        """The display name used in provenance and status: ``file:<abs path>``."""
        return self._name

    @property
    def path(self) -> Path:
        """The file's absolute path, symlinks not resolved."""
        return self._path

    def read(self) -> SourceSnapshot:
        """Read the file now and return the current snapshot."""
        return self._refresh() or self._snapshot

    def run(
        self,
        on_change: Callable[[SourceSnapshot], None],
        stop: threading.Event,
    ) -> None:
        """
        Watch the file's directory, calling ``on_change`` on every content change.

        Returns within one watcher step (<= 50 ms) of ``stop`` being set, or of
        :meth:`close` (within a second while the directory is missing). Exceptions
        from ``on_change`` propagate.

        Raises:
            ImportError: watchfiles is not installed (``cbcontrol[watch]``).
        """
        try:
            from watchfiles import watch
        except ImportError as exc:
            msg = "file watching is not installed, run `pip install cbcontrol[watch]`"
            raise ImportError(msg) from exc
        stopping = _Stop(stop, self._closed)
        self._deliver(on_change)  # a change between read() and now
        while not stopping.is_set():
            roots = self._roots()
            if not roots:  # the directory itself is missing: poll until it is back
                stop.wait(_RESYNC_MS / 1000)
                self._deliver(on_change)
                continue
            try:
                # A second without events yields an empty batch anyway: the resync
                # also covers the event watchfiles drops when it clears its buffer
                # on that timeout. Not recursive: a status directory or a deep tree
                # beside the file must not cost a watch per subdirectory.
                for _changes in watch(
                    *(root[0] for root in roots),
                    watch_filter=None,  # any change may matter; content decides
                    debounce=self._debounce_ms,
                    step=self._step_ms,
                    stop_event=stopping,
                    rust_timeout=_RESYNC_MS,
                    yield_on_timeout=True,
                    recursive=False,
                ):
                    self._deliver(on_change)
                    if self._roots() != roots:  # a watched directory was replaced
                        break
            except (OSError, RuntimeError) as exc:
                # RuntimeError: watchfiles' internal notifier error.
                _log.warning("watching %s failed (%s); retrying", self._path, exc)
                stop.wait(_RESYNC_MS / 1000)
            # A change made while the watcher restarts shows at the next resync.
            self._deliver(on_change)

    def close(self) -> None:
        """Stop a running :meth:`run`; the source holds no other resources."""
        self._closed.set()

    def _deliver(self, on_change: Callable[[SourceSnapshot], None]) -> None:
        snapshot = self._refresh()
        if snapshot is not None:
            on_change(snapshot)

    def _roots(self) -> tuple[tuple[str, int, int], ...]:
        """Directories to watch, with identities that tell when one is replaced."""
        dirs = [str(self._path.parent)]
        target = Path(os.path.realpath(self._path)).parent
        # A ConfigMap's target sits in a timestamped subdirectory whose swap is seen in
        # the parent; only a link that leaves the directory needs its target's watched.
        if not target.is_relative_to(os.path.realpath(self._path.parent)):
            dirs.append(str(target))
        roots = []
        for path in dirs:
            with contextlib.suppress(OSError):
                st = Path(path).stat()
                roots.append((path, st.st_dev, st.st_ino))
        return tuple(roots)

    def _read_raw(self) -> bytes | str:
        """Return the file's bytes, or a message saying why there are none."""
        try:
            return self._path.read_bytes()
        except FileNotFoundError:
            return (
                f'file "{self._path}" does not exist (deleted, or not created yet); '
                'create it, e.g. with "version: 1"'
            )
        except OSError as exc:
            return (
                f'file "{self._path}" cannot be read ({exc.strerror or exc}); check '
                "the path and its permissions"
            )

    def _refresh(self) -> SourceSnapshot | None:
        """Re-read the file: a new snapshot, or None when the bytes are the same."""
        with self._lock:
            raw = self._read_settled()
            key = (
                _digest(raw) if isinstance(raw, bytes) else f"!{_digest(raw.encode())}"
            )
            if key == self._seen:
                return None
            self._seen = key
            self._snapshot = self._build(raw, key)
            return self._snapshot

    def _read_settled(self) -> bytes | str:
        """Read the file, waiting out a write that looks under way."""
        for _ in range(_SETTLE_ROUNDS):
            raw = self._read_raw()
            # Writers end a file with a newline, and a write caught in progress
            # usually stops mid-line: such bytes count once the file has been still
            # for _SETTLE_S (and cost nothing when they were seen before).
            if not isinstance(raw, bytes) or raw.endswith(b"\n"):
                return raw
            if _digest(raw) == self._seen:
                return raw
            try:
                age = time.time() - self._path.stat().st_mtime
            except OSError:
                return raw
            if age >= _SETTLE_S:
                return raw
            time.sleep(min(_SETTLE_S - age, _SETTLE_S))  # an mtime in the future too
        return self._read_raw()

    def _build(self, raw: bytes | str, key: str) -> SourceSnapshot:
        previous = self._snapshot.entries
        error: str | None = raw if isinstance(raw, str) else None
        entries = dict(previous)
        if isinstance(raw, bytes):
            try:
                parsed = _parse(raw, str(self._path))
            except _RejectedError as exc:
                error = str(exc)
            else:
                entries = {}
                for (kind, name), (fresh, problem) in parsed.items():
                    old = previous.get((kind, name))
                    # A bad entry keeps its last good data, if it ever had any.
                    data = fresh if problem is None or old is None else old.data
                    origin = f"{self._name}#{kind}.{name}"
                    entries[kind, name] = RawEntry(kind, name, data, origin, problem)
        revision = key
        if error is not None or any(e.error for e in entries.values()):
            # Kept data is history, not these bytes: mix it in, so that equal
            # revisions still mean equal snapshots.
            kept = [[*k, e.data] for k, e in sorted(entries.items())]
            revision = f"{key}+{_digest(json.dumps(kept, sort_keys=True).encode())}"
        return SourceSnapshot(self._name, revision, entries, error)


def _write_error(where: str, exc: OSError) -> StoreError:
    msg = (
        f'file "{where}" cannot be written ({exc.strerror or exc}); check that its '
        "directory is writable (a ConfigMap volume is read-only: edit the ConfigMap)"
    )
    return StoreError(msg, store=f"file:{where}")


def _load_for_update(yaml: YAML, target: Path, where: str) -> CommentedMap:
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError

    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        raw = b""
    except OSError as exc:
        raise _write_error(where, exc) from exc
    try:
        doc = yaml.load(raw) if raw.strip() else None
    except YAMLError as exc:
        msg = f"{_syntax_message(where, exc)} before changing it"
        raise StoreError(msg, store=f"file:{where}") from exc
    if doc is None:
        doc = CommentedMap()
        doc["version"] = 1
    if not isinstance(doc, CommentedMap):
        msg = (
            f'file "{where}": the top level must be a mapping, got {_describe(doc)}; '
            "fix the file before changing it"
        )
        raise StoreError(msg, store=f"file:{where}")
    return doc


def _replace_atomically(target: Path, data: bytes) -> None:
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            # mkstemp creates 0600: keep the old mode so other users can still read it.
            os.fchmod(file.fileno(), mode)
            os.fsync(file.fileno())
        Path(tmp).replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise
    # The rename survives a crash only once the directory entry is on disk too.
    dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_document(
    path: str | os.PathLike[str],
    mutate: Callable[[CommentedMap], None],
) -> str:
    """
    Change the YAML file atomically, keeping its comments, one writer at a time.

    The file is loaded in ruamel's round-trip mode, ``mutate`` edits the document in
    place, and the result goes to a temporary file in the same directory that is
    fsynced and renamed over the original, so readers see the old bytes or the new
    ones, never a mix. Writers in any thread or process are serialized by an exclusive
    ``flock`` on the sibling ``.<name>.lock``. A symlink is written *through*: it stays,
    and its final target is replaced within the target's directory. A missing or empty
    file starts as ``version: 1``; a file that does not parse is left untouched. The
    result is not validated here: that is the caller's job.

    Args:
        path: The YAML file.
        mutate: Edits the loaded :class:`~ruamel.yaml.comments.CommentedMap` in place.

    Returns:
        The hash of the bytes written: the revision a :class:`FileSource` reports once
        it has read them (unless some entry in them is in error).

    Raises:
        StoreError: The file does not parse, or cannot be read or written.
        ImportError: ruamel.yaml is not installed (``cbcontrol[yaml]``).

    .. versionadded:: 0.1.0
    """
    where = str(_absolute(path))
    target = Path(os.path.realpath(path))
    yaml = _new_yaml("rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long reason onto two lines
    yaml.indent(mapping=2, sequence=4, offset=2)
    try:
        lock_fd = os.open(
            target.with_name(f".{target.name}.lock"),
            os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC,  # flock needs no write access
            0o644,
        )
    except OSError as exc:
        raise _write_error(where, exc) from exc
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        doc = _load_for_update(yaml, target, where)
        mutate(doc)
        buffer = io.BytesIO()
        yaml.dump(doc, buffer)
        data = buffer.getvalue()
        try:
            _replace_atomically(target, data)
        except OSError as exc:
            raise _write_error(where, exc) from exc
    finally:
        os.close(lock_fd)  # closing the descriptor releases the lock
    return _digest(data)


def status_dir(path: str | os.PathLike[str]) -> Path:
    """
    Return the directory where instances report their status, beside the config file.

    It is the sibling ``<stem>.status/`` (``cbcontrol.yaml`` -> ``cbcontrol.status/``).
    Symlinks in the directory part are resolved, so every process agrees on it; a
    symlinked *file* is not followed, since a ConfigMap's target directory is replaced
    on each update. The directory is not created here.

    .. versionadded:: 0.1.0
    """
    given = _absolute(path)
    return Path(os.path.realpath(given.parent)) / f"{given.stem}.status"
