"""
The YAML file store: desired state in one file, reported state in a directory.

Theory of operation. The file (``version``, ``presets``, ``breakers``; parsed by the
one bounded parser of :mod:`cbcontrol.config._yamldoc`) is watched through its
*directory*, not the file: editors save by renaming a temporary file over the original,
and Kubernetes updates a ConfigMap volume by swapping the ``..data`` symlink that
``cbcontrol.yaml`` points through; a watch on the file itself loses both. Any change in
the directory (not recursive) triggers a re-read; only entries whose content changed
are delivered, and a resync every second catches whatever the notifier missed.

A reader can meet a file part-way through an in-place write. A write caught in progress
usually stops mid-line, so content that is empty or lacks its final newline counts only
once the file has been still for 0.2 s; whatever then fails to parse is rejected with
the last good entries kept. Atomic writers (this module, renaming editors, Kubernetes)
never expose a partial file.

Writers (``cbctl``) hold an exclusive ``flock`` on ``.<name>.lock`` around a
read-compare-write that renames the new file into place, comments kept; the history
record goes to ``<stem>.history.jsonl`` under the same lock.

Instances report into the status directory (``<stem>.status/`` beside the file, or
``CBCONTROL_STATUS_DIR``: a ConfigMap mount is read-only): one ``<instance>.json`` each,
holding the identity and every breaker record, rewritten atomically when something
changed, and touched (not rewritten) to stay alive. A file untouched for
:data:`STATUS_TTL_S` is a gone instance. Status files are readable by the directory's
group (the directory is created set-group-id), so operators in that group can read
them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import io
import json
import logging
import os
import stat
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from cbcontrol._atomic import write_atomically
from cbcontrol._limits import (
    MAX_DOCUMENT_BYTES,
    MAX_FILE_BYTES,
    DocumentError,
    clip,
    load_object,
)
from cbcontrol._names import is_name
from cbcontrol.config._yamldoc import (
    ParsedDocument,
    describe,
    new_yaml,
    parse_document,
    syntax_message,
)
from cbcontrol.exceptions import StoreError
from cbcontrol.store._keys import decode, encode
from cbcontrol.store._port import (
    LOST_S,
    STATUS_TTL_S,
    Document,
    Scope,
    SpecState,
    Update,
)
from cbcontrol.store._status import digest_of

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Mapping

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

__all__ = ["FileBackend", "status_dir", "write_document"]

_log = logging.getLogger("cbcontrol.file")

_RESYNC_MS: Final = 1_000
_SETTLE_ROUNDS: Final = 3
_SETTLE_S: Final = 0.2
_HISTORY_TAIL: Final = 4 * 1024 * 1024  # the newest records of the history file
_DIR_MODE: Final = 0o2750  # set-group-id: status files take the directory's group
_FILE_MODE: Final = 0o640


def _absolute(path: str | os.PathLike[str]) -> Path:
    # Lexically absolute, symlinks kept: resolve() would pin a ConfigMap's current
    # timestamped directory, which the next update deletes.
    return Path(os.path.abspath(path))  # noqa: PTH100


def status_dir(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> Path:
    """
    Return the directory where instances report their status.

    ``CBCONTROL_STATUS_DIR`` when set (a ConfigMap volume is read-only), else the
    file's sibling ``<stem>.status/`` (``cbcontrol.yaml`` -> ``cbcontrol.status/``).
    Symlinks in the directory part are resolved, so every process agrees on it; a
    symlinked *file* is not followed, since a ConfigMap's target directory is replaced
    on each update. The directory is not created here.
    """
    env = os.environ if environ is None else environ
    given = env.get("CBCONTROL_STATUS_DIR")
    if given:
        return _absolute(given)
    file = _absolute(path)
    return Path(os.path.realpath(file.parent)) / f"{file.stem}.status"


class _Stop:
    """Set by the caller's stop event or by :meth:`FileBackend.close`."""

    def __init__(self, stop: threading.Event, closed: threading.Event) -> None:
        self.stop, self.closed = stop, closed

    def is_set(self) -> bool:  # all that watchfiles needs of a stop_event
        return self.stop.is_set() or self.closed.is_set()


class _Changes:
    """Successive reads turned into updates: complete first, then what changed."""

    def __init__(self, read: Callable[[], Update]) -> None:
        self._read = read
        self._known: dict[tuple[str, str, str], Document] | None = None
        self._error: str | None = None

    def next(self) -> list[Update]:
        """Read again: the update (none when nothing changed)."""
        try:
            documents = self._read().documents
        except StoreError as exc:
            if str(exc) == self._error:
                return []
            self._error = str(exc)
            _log.warning("%s: keeping the last good state", exc)
            return [Update(error=self._error)]
        fresh = {d.key: d for d in documents}
        known = self._known
        if known is None or self._error is not None:
            self._known, self._error = fresh, None
            return [Update(tuple(documents), complete=True)]
        # A heartbeat's age changes on every read: it is no change of the document.
        changed = [d for k, d in fresh.items() if not _same(known.get(k), d)]
        gone = [
            Document(d.kind, d.name, None, d.origin, d.instance)
            for k, d in known.items()
            if k not in fresh
        ]
        self._known = fresh
        return [Update(tuple(changed + gone))] if changed or gone else []


def _same(old: Document | None, new: Document) -> bool:
    return old is not None and dataclasses.replace(
        old, age=None
    ) == dataclasses.replace(new, age=None)


class _StatusWriter:
    """``<status dir>/<instance>.json``: identity and records, rewritten atomically."""

    def __init__(self, directory: Path, instance_id: str) -> None:
        self._dir = directory
        self._path = directory / f"{instance_id}.json"
        self._identity: Mapping[str, Any] = {}
        self._records: dict[str, Mapping[str, Any]] = {}
        self._lock = threading.Lock()

    def publish(
        self,
        identity: Mapping[str, Any] | None,
        records: Mapping[str, Mapping[str, Any] | None],
    ) -> None:
        """Rewrite the file with the identity and every record."""
        with self._lock:
            if identity is not None:
                self._identity = identity
            for name, record in records.items():
                if record is None:
                    self._records.pop(name, None)
                else:
                    self._records[name] = record
            body = {"instance": self._identity, "breakers": self._records}
            data = json.dumps(body, separators=(",", ":")).encode()
            try:
                if not self._dir.is_dir():
                    self._dir.mkdir(parents=True, exist_ok=True)
                    self._dir.chmod(_DIR_MODE)
                write_atomically(self._path, data, _FILE_MODE, sync=False)
            except OSError as exc:
                msg = (
                    f"cannot write instance status {self._path}: "
                    f"{exc.strerror or exc}; set CBCONTROL_STATUS_DIR to a writable "
                    "directory (a ConfigMap volume is read-only)"
                )
                raise StoreError(msg, store=f"file:{self._dir}") from exc

    def keepalive(self) -> None:
        """Touch the file: its modification time is the instance's heartbeat."""
        with contextlib.suppress(OSError):
            os.utime(self._path)

    def close(self) -> None:
        """Delete the status file."""
        with contextlib.suppress(OSError):
            self._path.unlink(missing_ok=True)


class FileBackend:
    """
    A :class:`~cbcontrol.store.StoreBackend` on one YAML file and its status directory.

    Args:
        path: The file. It may be missing at first, and may be a symlink (ConfigMap).
        status: The status directory (default: :func:`status_dir`).
        debounce_ms: The longest time changes are grouped before a re-read; a quiet
            spell of half as long (10-50 ms) ends a group sooner.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        status: Path | None = None,
        debounce_ms: int = 50,
    ) -> None:
        if debounce_ms < 0:
            msg = f"FileBackend(debounce_ms=...) must be >= 0, got {debounce_ms!r}"
            raise ValueError(msg)
        self.path = _absolute(path)
        self.status_dir = status_dir(self.path) if status is None else status
        self.history_path = self.path.with_name(f"{self.path.stem}.history.jsonl")
        self._name = f"file:{self.path}"
        self._debounce_ms = debounce_ms
        # watchfiles ends a batch after one step without new events (or at debounce):
        # 25 ms by default puts write-to-delivery near 50 ms, and the stop event is
        # polled as often. Its own default debounce (1.6 s) is far too slow here.
        self._step_ms = max(10, min(50, debounce_ms // 2))
        self._closed = threading.Event()
        self._parsed: tuple[bytes, ParsedDocument] | None = None

    @property
    def name(self) -> str:
        """``file:<absolute path>``."""
        return self._name

    @property
    def layer(self) -> Literal["file"]:
        """Specs in the file are the file layer."""
        return "file"

    # -- reading the file --------------------------------------------------------

    def _read_raw(self) -> bytes | str:
        """The file's bytes (at most the limit and one more), or why there are none."""
        try:
            with self.path.open("rb") as file:
                return file.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return (
                f'file "{self.path}" does not exist (deleted, or not created yet); '
                'create it, e.g. with "version: 1"'
            )
        except OSError as exc:
            return (
                f'file "{self.path}" cannot be read ({exc.strerror or exc}); check '
                "the path and its permissions"
            )

    def _read_settled(self) -> bytes | str:
        """Read the file, waiting out a write that looks under way."""
        for _ in range(_SETTLE_ROUNDS):
            raw = self._read_raw()
            # Writers end a file with a newline, and a write caught in progress
            # usually stops mid-line: such bytes count once the file has been still
            # for _SETTLE_S.
            if not isinstance(raw, bytes) or raw.endswith(b"\n"):
                return raw
            try:
                age = time.time() - self.path.stat().st_mtime
            except OSError:
                return raw
            if age >= _SETTLE_S:
                return raw
            time.sleep(min(_SETTLE_S - age, _SETTLE_S))  # an mtime in the future too
        return self._read_raw()

    def _desired(
        self, breaker: str | None, *, missing_ok: bool = True, specs: bool = True
    ) -> list[Document]:
        """
        The file's documents; raise StoreError when the whole file is unusable.

        A missing file holds nothing for a reader (no store yet), and is an error
        for a watch: a file that goes away keeps its last good state in force.
        """
        if missing_ok and not self.path.exists():
            return []
        raw = self._read_settled()
        if isinstance(raw, str):
            raise StoreError(raw, store=self._name)
        # Parsing YAML costs milliseconds; a watch of statuses reads the file on
        # every status write: parse only bytes not parsed last time.
        last = self._parsed
        if last is not None and last[0] == raw:
            parsed = last[1]
        else:
            try:
                parsed = parse_document(raw, str(self.path))
            except DocumentError as exc:
                raise StoreError(str(exc), store=self._name) from None
            self._parsed = (raw, parsed)
        documents = []
        for entry in parsed.entries:
            if entry.kind == "breakers" and (
                not specs or breaker not in (None, entry.name)
            ):
                continue
            origin = f"{self._name}#{entry.kind}.{entry.name}"
            if not is_name(entry.name):  # reported, never applied, never shadowing
                key = clip(f"{entry.kind}/{entry.name}", 200)
                documents.append(
                    Document("invalid", key, None, origin, error=entry.error)
                )
                continue
            kind: Literal["breakers", "presets"] = (
                "breakers" if entry.kind == "breakers" else "presets"
            )
            documents.append(
                Document(kind, entry.name, entry.data, origin, error=entry.error)
            )
        return documents

    def _statuses(self, breaker: str | None, *, records: bool = True) -> list[Document]:
        """
        Instances' identities and records, by the age of their status files.

        A file touched within the TTL is a live instance; one untouched for longer is
        a lost instance (its identity only) for :data:`LOST_S` more.
        """
        try:
            paths = list(self.status_dir.glob("*.json"))
        except OSError:
            return []
        now = time.time()
        documents = []
        for path in paths:
            instance = path.stem
            try:
                age = max(0.0, now - path.stat().st_mtime)
                if age >= STATUS_TTL_S + LOST_S:
                    continue  # lost long ago: no longer reported
                with path.open("rb") as file:
                    raw = file.read(MAX_FILE_BYTES + 1)
            except OSError:
                continue
            live = age < STATUS_TTL_S
            documents += self._status_documents(
                path, instance, raw, breaker if live and records else "", age
            )
        return documents

    @staticmethod
    def _status_documents(
        path: Path, instance: str, raw: bytes, breaker: str | None, age: float
    ) -> list[Document]:
        """An instance's identity and records (none for ``breaker=""``)."""
        origin = f"file:{path}"
        identity = decode(f"instances/{instance}", None, 0, origin)
        if identity.kind == "invalid":
            return [identity]
        try:
            body = load_object(raw, f'status file "{path}"', max_bytes=MAX_FILE_BYTES)
        except DocumentError as exc:
            return [Document("instances", instance, None, origin, error=str(exc))]
        documents = []
        info = body.get("instance")
        records = body.get("breakers")
        if not isinstance(info, dict) or not isinstance(records, dict):
            error = f'status file "{path}" must hold "instance" and "breakers" objects'
            return [Document("instances", instance, None, origin, error=error)]
        documents.append(Document("instances", instance, info, origin, age=age))
        for name, record in records.items():
            if breaker is not None and name != breaker:
                continue
            relative = f"status/{name}/{instance}"
            encoded = encode(record) if isinstance(record, dict) else b"null"
            documents.append(decode(relative, encoded, 0, f"file:{path}#{name}"))
        return documents

    @property
    def shared(self) -> bool:
        """Other processes see it, and it outlives this one."""
        return True

    def read(self, scope: Scope, *, missing_ok: bool = True) -> Update:
        """The file's documents (none while it does not exist), and live statuses."""
        documents: list[Document] = []
        if scope.desired:
            documents += self._desired(
                scope.breaker, missing_ok=missing_ok, specs=scope.specs
            )
        if scope.status:
            documents += self._statuses(scope.breaker, records=scope.records)
        return Update(tuple(documents), complete=True)

    # -- watching ----------------------------------------------------------------

    def _roots(self, scope: Scope) -> tuple[tuple[str, int, int], ...]:
        """Directories to watch, with identities that tell when one is replaced."""
        dirs = []
        if scope.desired:
            dirs.append(str(self.path.parent))
            target = Path(os.path.realpath(self.path)).parent
            # A ConfigMap's target sits in a timestamped subdirectory whose swap is
            # seen in the parent; only a link that leaves the directory needs its
            # target watched.
            if not target.is_relative_to(os.path.realpath(self.path.parent)):
                dirs.append(str(target))
        if scope.status:
            dirs.append(str(self.status_dir))
        roots = []
        for path in dirs:
            with contextlib.suppress(OSError):
                st = Path(path).stat()
                roots.append((path, st.st_dev, st.st_ino))
        return tuple(roots)

    def watch(
        self, scope: Scope, stop: threading.Event
    ) -> Generator[Update, None, None]:
        """
        Follow the file and the status directory: complete first, then changes.

        Returns within one watcher step (<= 50 ms) of ``stop`` being set, or of
        :meth:`close` (within a second while a directory is missing).

        Raises:
            ImportError: watchfiles is not installed (``cbcontrol[watch]``).
        """
        try:
            from watchfiles import watch
        except ImportError as exc:
            msg = "file watching is not installed, run `pip install cbcontrol[watch]`"
            raise ImportError(msg) from exc
        stopping = _Stop(stop, self._closed)
        refresh = _Changes(lambda: self.read(scope, missing_ok=False)).next
        yield from refresh()
        while not stopping.is_set():
            roots = self._roots(scope)
            if not roots:  # the directories are missing: poll until one is back
                stop.wait(_RESYNC_MS / 1000)
                yield from refresh()
                continue
            try:
                # A second without events yields an empty batch anyway: the resync
                # also covers the event watchfiles drops when it clears its buffer
                # on that timeout, and status files that went stale.
                for _changes in watch(
                    *(root[0] for root in roots),
                    watch_filter=None,  # any change may matter; content decides
                    # Status files are written whole by rename: no settling to wait
                    # for, so an acknowledgement is seen within ~20 ms.
                    debounce=20 if scope.status else self._debounce_ms,
                    step=10 if scope.status else self._step_ms,
                    stop_event=stopping,
                    rust_timeout=_RESYNC_MS,
                    yield_on_timeout=True,
                    recursive=False,
                ):
                    yield from refresh()
                    if self._roots(scope) != roots:  # a directory was replaced
                        break
            except (OSError, RuntimeError) as exc:
                # RuntimeError: watchfiles' internal notifier error.
                _log.warning("watching %s failed (%s); retrying", self.path, exc)
                stop.wait(_RESYNC_MS / 1000)
            yield from refresh()

    # -- writing -----------------------------------------------------------------

    def _entry(
        self, kind: str, name: str
    ) -> tuple[Mapping[str, Any] | None, str | None]:
        for document in self._desired(None):
            if (document.kind, document.name) == (kind, name):
                return document.data, document.error
        return None, None

    def load_spec(self, name: str) -> SpecState:
        """The entry, its content digest (the CAS token), and the history floor."""
        data, error = self._entry("breakers", name)
        version = None if data is None else digest_of(encode(data))
        floor = self._history_floor(name)
        for record in self._statuses(name):  # what live instances applied
            reported = (record.data or {}).get("gen") if record.kind == "status" else 0
            floor = max(floor, reported if type(reported) is int else 0)
        return SpecState(data, error, version, floor)

    def commit_spec(
        self,
        name: str,
        document: Mapping[str, Any],
        expected: SpecState,
        record: Mapping[str, Any],
    ) -> bool:
        """Under the file lock: compare the entry, write the file, append history."""
        committed = False

        def mutate(doc: CommentedMap) -> None:
            nonlocal committed
            data, _ = self._entry("breakers", name)
            version = None if data is None else digest_of(encode(data))
            if version != expected.version:
                return
            if self._history_floor(name) >= int(record["generation"]):
                return
            _replace_entry(doc, name, document)
            committed = True

        def record_it() -> None:
            if committed:
                self._append_history(record)

        write_document(self.path, mutate, after=record_it)
        return committed

    def put_preset(self, name: str, document: Mapping[str, Any]) -> bool:
        """Define or replace a preset in the file."""
        changed = False

        def mutate(doc: CommentedMap) -> None:
            nonlocal changed
            presets = doc.get("presets")
            if presets is None:
                doc["presets"] = presets = {}
            current = presets.get(name)
            if current is not None and _plain(current) == _plain(dict(document)):
                return
            presets[name] = dict(document)
            changed = True

        write_document(self.path, mutate)
        return changed

    def delete_preset(self, name: str) -> bool:
        """Remove a preset from the file."""
        removed = False

        def mutate(doc: CommentedMap) -> None:
            nonlocal removed
            presets = doc.get("presets")
            if isinstance(presets, dict) and name in presets:
                del presets[name]
                removed = True

        write_document(self.path, mutate)
        return removed

    def put_epoch(self, document: Mapping[str, Any], *, create: bool) -> bool:
        """A file has no history to lose: no epoch."""
        del document, create
        return False

    def _append_history(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        # One write() of one line with O_APPEND: concurrent writers never interleave.
        try:
            fd = os.open(
                self.history_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
            )
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            msg = f'cannot append to "{self.history_path}": {exc.strerror or exc}'
            raise StoreError(msg, store=self._name) from exc

    def _history_lines(self) -> list[bytes]:
        """The newest lines of the history file (a bounded tail of it)."""
        try:
            with self.history_path.open("rb") as file:
                size = file.seek(0, os.SEEK_END)
                file.seek(max(0, size - _HISTORY_TAIL))
                data = file.read(_HISTORY_TAIL)
        except FileNotFoundError:
            return []
        except OSError as exc:
            msg = f'cannot read "{self.history_path}": {exc.strerror or exc}'
            raise StoreError(msg, store=self._name) from exc
        lines = data.split(b"\n")
        if size > _HISTORY_TAIL:
            lines = lines[1:]  # the first line is cut
        return [line for line in lines if line.strip()]

    def history(self, name: str | None, limit: int) -> list[dict[str, Any]]:
        """History records, newest last; unreadable lines are skipped."""
        records = []
        for line in self._history_lines():
            try:
                record = load_object(
                    line, "history record", max_bytes=MAX_DOCUMENT_BYTES
                )
            except DocumentError:
                continue
            if name is None or record.get("name") == name:
                records.append(record)
        return records[-limit:] if name else records

    def _history_floor(self, name: str) -> int:
        generations = [r.get("generation") for r in self.history(name, 1 << 30)]
        return max((g for g in generations if type(g) is int), default=0)

    def open_status(self, instance_id: str) -> _StatusWriter:
        """``<status dir>/<instance_id>.json``."""
        return _StatusWriter(self.status_dir, instance_id)

    def close(self) -> None:
        """Stop running watches; the backend holds no other resources."""
        self._closed.set()


# -- writing the YAML file, comments kept ------------------------------------------


def _plain(value: object) -> object:
    """ruamel's round-trip types as plain JSON types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def _replace_entry(doc: CommentedMap, name: str, document: Mapping[str, Any]) -> None:
    """Make ``breakers.<name>`` hold ``document``, editing it in place (comments)."""
    breakers = doc.get("breakers")
    if breakers is None:
        doc["breakers"] = breakers = {}
    current = breakers.get(name)
    if not isinstance(current, dict):
        breakers[name] = dict(document)
        return
    for key in [k for k in current if k not in document]:
        del current[key]
    for key, value in document.items():
        if key not in current or current[key] != value:
            current[key] = value


def _write_error(where: str, exc: OSError) -> StoreError:
    msg = (
        f'file "{where}" cannot be written ({exc.strerror or exc}); check that its '
        "directory is writable (a ConfigMap volume is read-only: edit the ConfigMap)"
    )
    return StoreError(msg, store=f"file:{where}")


def _load_for_update(yaml: YAML, target: Path, where: str) -> CommentedMap:
    from ruamel.yaml.comments import CommentedMap

    try:
        with target.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raw = b""
    except OSError as exc:
        raise _write_error(where, exc) from exc
    if raw.strip():
        # The bounded parser first: the round-trip loader must never meet a bomb.
        try:
            parse_document(raw, where)
        except DocumentError as exc:
            msg = f"{exc}; fix it before changing it"
            raise StoreError(msg, store=f"file:{where}") from None
    from ruamel.yaml.error import YAMLError

    try:
        doc = yaml.load(raw) if raw.strip() else None
    except YAMLError as exc:
        msg = f"{syntax_message(where, exc)} before changing it"
        raise StoreError(msg, store=f"file:{where}") from exc
    if doc is None:
        doc = CommentedMap()
        doc["version"] = 1
    if not isinstance(doc, CommentedMap):
        msg = (
            f'file "{where}": the top level must be a mapping, got {describe(doc)}; '
            "fix the file before changing it"
        )
        raise StoreError(msg, store=f"file:{where}")
    return doc


def write_document(
    path: str | os.PathLike[str],
    mutate: Callable[[CommentedMap], None],
    *,
    after: Callable[[], object] | None = None,
) -> str:
    """
    Change the YAML file atomically, keeping its comments, one writer at a time.

    The file is checked by the bounded parser, loaded in ruamel's round-trip mode,
    ``mutate`` edits the document in place, and the result goes to a temporary file in
    the same directory that is fsynced and renamed over the original, so readers see
    the old bytes or the new ones, never a mix. Writers in any thread or process are
    serialized by an exclusive ``flock`` on the sibling ``.<name>.lock``; ``after`` runs
    under it once the file is in place. A symlink is written *through*: it stays, and
    its final target is replaced within the target's directory. A missing or empty file
    starts as ``version: 1``; a file that does not parse is left untouched. The result
    is not validated here: that is the caller's job.

    Returns:
        The hash of the bytes written.

    Raises:
        StoreError: The file does not parse, or cannot be read or written.
        ImportError: ruamel.yaml is not installed (``cbcontrol[yaml]``).
    """
    where = str(_absolute(path))
    target = Path(os.path.realpath(path))
    yaml = new_yaml("rt")
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
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            mode = 0o644
        doc = _load_for_update(yaml, target, where)
        before = encode(_plain(doc))  # type: ignore[arg-type]
        mutate(doc)
        if encode(_plain(doc)) == before and target.exists():  # type: ignore[arg-type]
            return ""
        buffer = io.BytesIO()
        yaml.dump(doc, buffer)
        data = buffer.getvalue()
        try:
            write_atomically(target, data, mode, sync=True)
        except OSError as exc:
            raise _write_error(where, exc) from exc
        if after is not None:
            after()
    finally:
        os.close(lock_fd)  # closing the descriptor releases the lock
    return digest_of(data)
