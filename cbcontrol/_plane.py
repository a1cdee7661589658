"""
The control plane inside an application: one registry of live-configured breakers.

``connect()`` opens the store named by ``CBCONTROL_STORE`` (or the argument) and
starts **one** background thread that watches its desired state. ``plane.breaker(name)``
returns the single breaker of that name in the process, configured from
``default < preset < env < file < etcd`` and retuned in place whenever the store
changes; state, counters and window survive a retune.

Work is proportional to what changed: a change of one spec re-validates that spec and
retunes that breaker; specs of breakers this process does not have are validated only
when such a breaker is created.

A store document that fails validation is never applied: the last good version of that
document stays in force, and the error is logged once per distinct message and kept in
:meth:`ControlPlane.errors` (and in the instance status). While the store is away the
breakers keep serving on what they last applied; a process that starts while the store
is away comes up from the local cache (:mod:`cbcontrol._cache`), and a store whose
history went backwards (wiped, restored) is reported and not applied until an operator
accepts it (``docs/store.md``).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Self

from cbcontrol._agent import StatusPublisher
from cbcontrol._breaker import CircuitBreaker
from cbcontrol._cache import Cached, DesiredCache, Snapshot, cache_dir, entry
from cbcontrol._clock import monotonic
from cbcontrol._limits import MAX_TEXT_CHARS, bounded_errors, clip
from cbcontrol._names import check_name, sanitize
from cbcontrol.config._builder import (
    generation_of,
    layers_from_spec,
    scopes_of,
    validate_preset,
    validate_spec,
)
from cbcontrol.config._env import EnvSource
from cbcontrol.config._merge import (
    Layer,
    PresetTable,
    builtin_presets,
    merge_presets,
    resolve,
)
from cbcontrol.config._models import (
    BreakerCounters,
    BreakerStats,
    BreakerStatus,
    FieldValue,
    InstanceStatus,
)
from cbcontrol.exceptions import ConfigError
from cbcontrol.store._port import Scope
from cbcontrol.store._status import (
    STATUS_FORMAT,
    canonical,
    config_digest,
    digest_of,
    layer_json,
    utc_text,
)
from cbcontrol.store._url import StoreURL, parse_store_url

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from cbcontrol._clock import Clock
    from cbcontrol._events import StateChanged
    from cbcontrol.config._models import BreakerSpec, Override, PresetSpec
    from cbcontrol.store._port import Document, StoreBackend, Update

__all__ = ["ControlPlane", "PlaneHealth", "connect"]

logger = logging.getLogger("cbcontrol.plane")
logger.addHandler(logging.NullHandler())

_RESTART_DELAY_S = 1.0  # after an unexpected crash of the watch loop
_START_WAIT_S = 0.8  # how long connect() waits for the store before the cache
_EPOCHS_KEPT = 16


@dataclass(frozen=True, slots=True)
class PlaneHealth:
    """
    The control plane's own health, for readiness probes and dashboards.

    Attributes:
        store: The store's name, without credentials (``etcd://10.0.0.1:2379/prod``).
        reachable: The store answers now (always True for ``memory://``).
        loaded_from: Where the desired state in force came from: ``store``,
            ``cache`` (the store was away at start), or ``none`` (nothing yet).
        last_error: The store's latest failure, or None while it answers.
        history_backwards: The store's history went backwards (wiped or restored):
            its state is not applied until an operator accepts it.
        errors: The config errors in force, as :meth:`ControlPlane.errors`.
        status_error: Why this instance's status cannot be published, while it
            cannot (operators do not see it, nor its acknowledgements).

    .. versionadded:: 0.2.0
    """

    store: str
    reachable: bool
    loaded_from: Literal["store", "cache", "none"]
    last_error: str | None
    history_backwards: bool
    errors: Mapping[str, str] = field(default_factory=dict)
    status_error: str | None = None

    @property
    def ok(self) -> bool:
        """Desired state is loaded from a store that answers and went not backwards."""
        return (
            self.reachable and self.loaded_from != "none" and not self.history_backwards
        )


@dataclass
class _Good:
    """A validated document: what stays in force while a newer one is rejected."""

    spec: BreakerSpec | PresetSpec
    digest: str
    origin: str
    encoded: bytes  # its canonical JSON, as the cache saves it


@dataclass
class _Doc:
    """One desired-state document as the plane holds it."""

    data: Mapping[str, Any] | None  # the latest readable version
    origin: str
    version: int
    error: str | None = None  # why the latest version was rejected
    good: _Good | None = None  # the last version that validated
    checked: bool = False  # ``data`` was validated (``good`` or ``error`` tells)
    encoded: bytes | None = None  # ``data`` as canonical JSON, once asked for
    saved: bytes | None = None  # this document as the cache file holds it

    def canonical(self) -> bytes | None:
        """``data`` as canonical JSON (computed once per version)."""
        if self.encoded is None and self.data is not None:
            self.encoded = canonical(dict(self.data))
        return self.encoded


@dataclass
class _Desired:
    """The documents of a store (or the cache), as tracked."""

    docs: dict[tuple[str, str], _Doc] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)
    epoch: Mapping[str, Any] | None = None
    bad: set[tuple[str, str]] = field(default_factory=set)  # docs with an error

    def copy(self) -> _Desired:
        return _Desired(dict(self.docs), dict(self.invalid), self.epoch, set(self.bad))

    def put(self, key: tuple[str, str], doc: _Doc) -> None:
        """Hold ``doc`` under ``key``, keeping the index of errors (O(1))."""
        self.docs[key] = doc
        self.note(key, doc)

    def note(self, key: tuple[str, str], doc: _Doc) -> None:
        """Index ``doc``'s error (after it was set or cleared)."""
        if doc.error is None:
            self.bad.discard(key)
        else:
            self.bad.add(key)

    def drop(self, key: tuple[str, str]) -> _Doc | None:
        """Forget ``key``."""
        self.bad.discard(key)
        return self.docs.pop(key, None)


@dataclass
class _Managed:
    """What the plane knows about one breaker it manages."""

    breaker: CircuitBreaker
    layers: list[Layer]  # its own layers (code, env), under the store's
    options: dict[str, Any]
    override: tuple[object, ...] | None = None  # the override last applied
    resets: dict[str, int] | None = None  # reset markers applied, per scope ("": none)
    generation: int = 0  # of the spec applied (0: none, or written by hand)
    digest: str | None = None  # of the spec applied (None: no spec)
    preset: str | None = None  # the preset its config resolved from
    cfg: str = ""  # digest of the effective config and its sources
    error: str | None = None  # the merged config was rejected
    env_error: str | None = None  # env variables that were skipped
    since: tuple[float, float] = (0.0, 0.0)  # (breaker clock, wall) of last change
    retry: tuple[float, object, float | None] = (0.0, None, None)


@dataclass
class _Baseline:
    """What this process knows of the store's history, to tell when it went back."""

    store_id: str | None = None
    revision: int = 0
    epoch: str | None = None
    epochs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "revision": self.revision,
            "epoch": self.epoch,
            "epochs": self.epochs[-_EPOCHS_KEPT:],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Baseline:
        epochs = data.get("epochs")
        store_id, epoch = data.get("store_id"), data.get("epoch")
        return cls(
            store_id if isinstance(store_id, str) else None,
            data["revision"] if type(data.get("revision")) is int else 0,
            epoch if isinstance(epoch, str) else None,
            [e for e in epochs if isinstance(e, str)]
            if isinstance(epochs, list)
            else [],
        )


def _from_cache(cached: Cached) -> _Desired:
    desired = _Desired()
    for kind, name, data, origin, version in cached.documents:
        if kind == "epoch":
            desired.epoch = data
        else:
            desired.docs[kind, name] = _Doc(data, origin, version)
    return desired


def _epoch_id(epoch: Mapping[str, Any] | None) -> str | None:
    value = None if epoch is None else epoch.get("id")
    return value if isinstance(value, str) else None


class ControlPlane:
    """
    The process's registry of live-configured breakers and its watch on the store.

    Create it with :func:`cbcontrol.connect`; close it with :meth:`close` (or use it
    as a context manager).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        store: StoreURL,
        backend: StoreBackend | None,
        *,
        app: str,
        environ: Mapping[str, str] | None = None,
        clock: Clock = monotonic,
        publish: bool = True,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.app = app
        self._backend = backend
        self._store_name = backend.name if backend is not None else str(store)
        self._layer = backend.layer if backend is not None else (store.layer or "etcd")
        self._env = EnvSource(environ)
        self._clock = clock
        self._lock = threading.RLock()
        self._breakers: dict[str, _Managed] = {}
        self._tracked = _Desired()  # the store, as it is
        self._held: _Desired | None = None  # in force instead, while history is back
        self._hold_reason: str | None = None
        self._baseline = _Baseline()
        self._presets: PresetTable = builtin_presets()
        self._loaded_from: Literal["store", "cache", "none"] = "none"
        self._store_error: str | None = None
        self._errors_logged: dict[str, str] = {}
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[str], object]] = []
        self.instance_id = _instance_id(app)
        self._labels, self._label_error = _labels(
            app, self.instance_id, os.environ if environ is None else environ, labels
        )
        self._started_at = datetime.now(UTC)
        self._publisher: StatusPublisher | None = None
        self._cache: DesiredCache | None = None
        self._cached_state: Cached | None = None
        if backend is None:
            self._loaded_from = "store"
            return
        cached = None
        if backend.shared:  # a store in this process only has nothing to fall back on
            # The process's environment, under what connect() was given: a test's
            # environ={} must not move the cache to the user's home.
            where = cache_dir({**os.environ, **(environ or {})})
            self._cache = DesiredCache(where, self._store_name)
            cached = self._cached_state = self._cache.load()
        if cached is not None:
            self._baseline = _Baseline.from_json(cached.baseline)
        self._thread = threading.Thread(
            target=self._watch, args=(backend,), name="cbcontrol-plane", daemon=True
        )
        self._thread.start()
        # Never fail the application for its store: wait a moment for it, then
        # start from the cache (or defaults, presets and env), and catch up later.
        self._first.wait(_START_WAIT_S)
        with self._lock:
            if self._loaded_from == "none" and cached is not None:
                self._load_cache(cached)
        if publish:
            self._publisher = StatusPublisher(
                backend.open_status(self.instance_id),
                identity=self._identity,
                record=self._record,
                names=self.names,
            )
            self._publisher.start()

    # -- public API ------------------------------------------------------------------

    def breaker(
        self, name: str, *, code: Mapping[str, object] | None = None, **options: Any
    ) -> CircuitBreaker:
        """
        The one breaker called ``name`` in this process, live-configured.

        Args:
            name: The dependency's name (the name grammar of ``docs/store.md``);
                chooses the preset of the same name and the ``<NAME>_CB_*`` env
                variables.
            code: Config values the application's code gives (a drop-in shim's
                ``fail_max``): a layer above the preset, under env, file and etcd;
                used when the breaker is created.
            **options: ``failure_on``, ``ignore``, ``fallback``, ``clock``, ``rand``
                for :class:`~cbcontrol.CircuitBreaker`, used when it is created.

        Raises:
            ConfigError: ``name`` breaks the name grammar.
            ValueError: The breaker exists already with different options.
        """
        with self._lock:
            managed = self._breakers.get(name)
            if managed is not None:
                if options and options != managed.options:
                    msg = (
                        f'breaker "{name}" already exists with other options; pass '
                        "options only where it is first created, or give it another "
                        "name"
                    )
                    raise ValueError(msg)
                return managed.breaker
            check_name("breaker", name, "ControlPlane.breaker()")
            env, env_errors = self._env.layer(name)
            for error in env_errors:
                logger.error("%s; ignoring this variable", clip(str(error)))
            breaker = CircuitBreaker(name, **{"clock": self._clock, **options})
            breaker.on_state_change(self._state_changed, on_time=True)
            managed = _Managed(breaker, [_code_layer(code or {}), env], dict(options))
            managed.env_error = clip("; ".join(map(str, env_errors))) or None
            self._breakers[name] = managed
            self._apply(name, managed, initial=True)
        if self._publisher is not None:
            self._publisher.mark([name])  # report the new breaker without waiting
            if managed.env_error is not None or managed.error is not None:
                self._publisher.mark_identity()  # and its errors
        return breaker

    def set_code(self, name: str, code: Mapping[str, object]) -> None:
        """Replace the code layer of breaker ``name`` (a shim's setter) and apply it."""
        with self._lock:
            managed = self._breakers[name]
            managed.layers[0] = _code_layer(code)
            self._apply(name, managed, initial=False)
        if self._publisher is not None:
            self._publisher.mark([name])

    @property
    def labels(self) -> dict[str, str]:
        """
        This instance's labels: app, host, instance and ``CBCONTROL_LABELS``.

        Selectors of operators' targeted changes match these (``docs/cli.md``).

        .. versionadded:: 0.3.0
        """
        return dict(self._labels)

    def names(self) -> list[str]:
        """The names of the breakers this process has created."""
        with self._lock:
            return sorted(self._breakers)

    def errors(self) -> dict[str, str]:
        """Config errors in force: ``{"breakers/payment": message, "store": ...}``."""
        with self._lock:
            desired = self._in_force()
            errors = {f"store/{key}": error for key, error in desired.invalid.items()}
            for kind, name in desired.bad:  # an index: no walk over every spec
                doc = desired.docs[kind, name]
                if doc.error is not None and (
                    kind == "presets" or name in self._breakers
                ):
                    errors[f"{kind}/{name}"] = doc.error
            if self._store_error is not None:
                errors["store"] = self._store_error
            if self._hold_reason is not None:
                errors["store/history"] = self._hold_reason
            if self._label_error is not None:
                errors["labels"] = self._label_error
            for name, managed in self._breakers.items():
                error = managed.error or managed.env_error
                if error is not None:
                    errors.setdefault(f"breakers/{name}", error)
            return errors

    def health(self) -> PlaneHealth:
        """
        The plane's own health: store reachability, where its config came from.

        .. versionadded:: 0.2.0
        """
        with self._lock:
            return PlaneHealth(
                store=self._store_name,
                reachable=self._store_error is None,
                loaded_from=self._loaded_from,
                last_error=self._store_error,
                history_backwards=self._held is not None,
                errors=self.errors(),
                status_error=None if self._publisher is None else self._publisher.error,
            )

    def observed_generation(self, name: str) -> int:
        """The spec generation this process last applied to breaker ``name``."""
        with self._lock:
            return self._breakers[name].generation

    def on_applied(self, listener: Callable[[str], object]) -> None:
        """Call ``listener(name)`` after a breaker applied a new desired state."""
        with self._lock:
            self._listeners.append(listener)

    def status(self) -> InstanceStatus:
        """This process's reported state: identity, and each breaker's full status."""
        with self._lock:
            managed = list(self._breakers.items())
        errors = self.errors()
        return InstanceStatus(
            format=STATUS_FORMAT,
            instance_id=self.instance_id,
            app=self.app,
            host=_HOST,
            pid=os.getpid(),
            started_at=self._started_at,
            heartbeat_at=datetime.now(UTC),
            version=_version(),
            store=self._store_name,
            labels=dict(self._labels),
            breakers={
                name: _breaker_status(m, errors.get(f"breakers/{name}"))
                for name, m in managed
            },
            errors=errors,
        )

    def close(self) -> None:
        """Withdraw the status, stop watching, release the store; breakers go on."""
        if self._publisher is not None:
            self._publisher.close()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        if self._cache is not None:
            self._cache.close()
        if self._backend is not None:
            self._backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ControlPlane app={self.app!r} store={self._store_name!r}>"

    # -- following the store ---------------------------------------------------------

    def _watch(self, backend: StoreBackend) -> None:
        while not self._stop.is_set():
            try:
                for update in backend.watch(Scope.DESIRED, self._stop):
                    self._on_update(update)
            except Exception:
                logger.exception("watching %s failed; restarting", self._store_name)
                self._stop.wait(_RESTART_DELAY_S)
            else:
                return

    def _in_force(self) -> _Desired:
        return self._tracked if self._held is None else self._held

    def _on_update(self, update: Update) -> None:
        try:
            with self._lock:
                applied = self._take(update)
                listeners = list(self._listeners)
        except Exception:
            # A bug here must not kill the watch: log it, keep the last good state.
            logger.exception("applying a change of %s failed", self._store_name)
            return
        finally:
            self._first.set()
        if applied and self._publisher is not None:
            self._publisher.mark(applied)  # acknowledge at once: cbctl is waiting
        for name in applied:
            for listener in listeners:
                try:
                    listener(name)
                except Exception:  # one listener must not stop the watch or the rest
                    logger.exception("a listener of breaker %s failed", name)

    def _take(self, update: Update) -> list[str]:
        """Fold an update in; return the breakers that applied something new."""
        health = (self._store_error, self._held is None, self._loaded_from)
        try:
            return self._take_update(update)
        finally:
            if self._publisher is not None and health != (
                self._store_error,
                self._held is None,
                self._loaded_from,
            ):
                self._publisher.mark_identity()

    def _take_update(self, update: Update) -> list[str]:
        if update.error is not None:
            error = clip(update.error)  # the store's words: bounded before kept
            if self._store_error != error:
                logger.error("config store %s: %s", self._store_name, error)
            self._store_error = error
            return []
        if self._store_error is not None:
            logger.info("config store %s answers again", self._store_name)
        self._store_error = None
        epoch = _next_epoch(self._tracked.epoch, update)
        reason = None if self._held is not None else self._backwards(update, epoch)
        if reason is not None:
            self._hold(reason)
        changed = self._track(update)
        if self._held is not None and not self._accepted(update):
            return []  # the store is tracked, not applied, until accepted
        if self._held is None:
            self._advance(update)
        self._loaded_from = "store"
        return self._changed(changed)

    def _track(self, update: Update) -> set[tuple[str, str]]:
        """Fold an update into the tracked store state; the keys that changed."""
        previous = self._tracked
        desired = _Desired() if update.complete else previous
        if not update.complete and self._held is previous:
            desired = previous.copy()  # never change what is held in force
        changed: set[tuple[str, str]] = set()
        for document in update.documents:
            self._fold(desired, document, previous, changed)
        desired.epoch = _next_epoch(previous.epoch, update)
        if update.complete:
            changed |= set(previous.docs) - set(desired.docs)  # gone: deleted
        self._tracked = desired
        return changed

    def _fold(
        self,
        desired: _Desired,
        document: Document,
        previous: _Desired,
        changed: set[tuple[str, str]],
    ) -> None:
        if document.kind in ("invalid", "epoch"):
            self._fold_other(desired, document)
            return
        if document.kind not in ("breakers", "presets"):
            return
        key = (document.kind, document.name)
        old = previous.docs.get(key)
        if document.data is None and document.error is None:
            if desired.drop(key) is not None:  # lower layers show through
                changed.add(key)
            return
        if (
            document.error is None
            and old is not None
            and (old.data, old.origin) == (document.data, document.origin)
        ):
            desired.put(key, old)  # the same content (a re-read): nothing to do
            return
        changed.add(key)
        good = None if old is None else old.good
        if document.error is not None:  # unreadable: its last good version stays
            data = None if old is None else old.data
            checked = old is not None and old.checked
            error = clip(document.error)
            desired.put(
                key, _Doc(data, document.origin, document.version, error, good, checked)
            )
            return
        desired.put(
            key, _Doc(document.data, document.origin, document.version, None, good)
        )

    @staticmethod
    def _fold_other(desired: _Desired, document: Document) -> None:
        """An invalid key (reported, never applied) or the epoch."""
        key = document.name if document.kind == "invalid" else "epoch"
        if document.error is None:
            desired.invalid.pop(key, None)
        else:
            desired.invalid[key] = clip(document.error)

    def _backwards(self, update: Update, epoch: Mapping[str, Any] | None) -> str | None:
        """Why the store's history went backwards with this update, or None."""
        baseline = self._baseline
        current = _epoch_id(epoch)
        if self._is_accepted(epoch):
            return None  # an operator accepted the store as it is
        reasons = []
        if (
            update.complete
            and None not in (baseline.store_id, update.store_id)
            and update.store_id != baseline.store_id
        ):
            reasons.append(
                f"its history id changed from {baseline.store_id} to {update.store_id}"
            )
        if update.complete and update.revision < baseline.revision:
            reasons.append(
                f"its revision {update.revision} is lower than {baseline.revision}, "
                "seen before"
            )
        if baseline.epoch is not None and current != baseline.epoch:
            reasons.append(
                f"its epoch changed from {baseline.epoch} to {current or 'none'}"
            )
        if not reasons:
            return None
        return (
            f"the history of {self._store_name} went backwards ({'; '.join(reasons)}): "
            "it was wiped or restored. The desired state in force is kept; restore "
            "the store, or accept it as it is with `cbctl doctor --accept-history`"
        )

    def _is_accepted(self, epoch: Mapping[str, Any] | None) -> bool:
        """An epoch an operator accepted, and this process has not seen before."""
        current = _epoch_id(epoch)
        return (
            epoch is not None
            and epoch.get("accepted") is True
            and current is not None
            and current not in self._baseline.epochs
        )

    def _accepted(self, update: Update) -> bool:
        """Leave a hold when the store now carries an accepted epoch (re-apply all)."""
        if not self._is_accepted(self._tracked.epoch):
            return False
        epoch = self._tracked.epoch or {}
        logger.warning(
            "config store %s was accepted as it is (by %s): applying its state",
            self._store_name,
            clip(str(epoch.get("by")), 200),
        )
        self._held = None
        self._hold_reason = None
        self._baseline = _Baseline(update.store_id, update.revision)
        self._advance(update)
        self._reapply_all()
        return True

    def _advance(self, update: Update) -> None:
        """Move the baseline forward with a store whose history is intact."""
        baseline = self._baseline
        baseline.revision = max(baseline.revision, update.revision)
        if update.store_id is not None:
            baseline.store_id = update.store_id
        current = _epoch_id(self._tracked.epoch)
        if current is not None and current != baseline.epoch:
            baseline.epoch = current
            baseline.epochs.append(current)

    def _hold(self, reason: str) -> None:
        """Keep the desired state in force, and report why, until accepted."""
        logger.error("%s", reason)
        self._hold_reason = reason
        if self._loaded_from == "none" and self._cached_state is not None:
            self._held = _from_cache(self._cached_state)
            self._loaded_from = "cache"
            self._reapply_all()
        else:
            self._held = self._tracked
        if self._cache is not None:
            self._cache.save(self._cached)

    def _reapply_all(self) -> None:
        """Apply the desired state in force to every breaker (it changed whole)."""
        self._rebuild_presets()
        for name, managed in self._breakers.items():
            self._apply(name, managed, initial=False)

    def _changed(self, changed: set[tuple[str, str]]) -> list[str]:
        """Re-apply what ``changed`` touches; the breakers that applied anything new."""
        presets = {name for kind, name in changed if kind == "presets"}
        if presets:
            self._rebuild_presets()
        touched = {name for kind, name in changed if kind == "breakers"}
        applied = []
        for name, managed in self._breakers.items():
            if (
                name in touched
                or name in presets
                or managed.preset in presets
                or (presets and managed.error is not None)
            ) and self._apply(name, managed, initial=False):
                applied.append(name)
        self._log_errors()
        if self._cache is not None:
            self._cache.save(self._cached)
        return applied

    def _log_errors(self) -> None:
        """Log each config error once per distinct message."""
        errors = self.errors()
        for key, message in errors.items():
            if self._errors_logged.get(key) != message:
                logger.error(
                    "rejected %s, keeping its last good version: %s", key, message
                )
        self._errors_logged = errors

    def _load_cache(self, cached: Cached) -> None:
        """Put the cached desired state in force (the store did not answer in time)."""
        self._tracked = _from_cache(cached)
        self._loaded_from = "cache"
        logger.warning(
            "config store %s did not answer within %.1fs: starting from the config "
            "cache saved %s; catching up when it answers",
            self._store_name,
            _START_WAIT_S,
            cached.saved_at or "earlier",
        )
        self._reapply_all()

    def _cached(self) -> Snapshot:
        """The desired state in force, as the cache saves it."""
        with self._lock:
            desired = self._in_force()
            documents: list[bytes] = []
            for (kind, name), doc in desired.docs.items():
                if doc.saved is None:  # once per version: a save is a join
                    # The last good version of a rejected document; else the latest.
                    if doc.good is not None and doc.error is not None:
                        encoded: bytes | None = doc.good.encoded
                        origin = doc.good.origin
                    else:
                        encoded, origin = doc.canonical(), doc.origin
                    if encoded is not None:
                        doc.saved = entry(kind, name, encoded, origin, doc.version)
                if doc.saved is not None:
                    documents.append(doc.saved)
            if desired.epoch is not None:
                epoch = canonical(dict(desired.epoch))
                documents.append(entry("epoch", "", epoch, "", 0))
            return Snapshot(
                documents,
                self._baseline.to_json(),
                datetime.now(UTC).isoformat(timespec="seconds"),
            )

    # -- applying desired state ------------------------------------------------------

    def _validated(self, kind: str, name: str, doc: _Doc) -> _Good | None:
        """The document's last good version, validating its latest data once."""
        if not doc.checked and doc.data is not None:
            doc.checked = True
            try:
                spec = (
                    validate_preset(name, doc.data, doc.origin)
                    if kind == "presets"
                    else validate_spec(name, doc.data, doc.origin)
                )
            except ConfigError as exc:
                doc.error = clip(str(exc))
            else:
                encoded = doc.canonical() or b"{}"
                doc.good = _Good(spec, digest_of(encoded), doc.origin, encoded)
                doc.error = None
            self._in_force().note((kind, name), doc)
        return doc.good

    def _rebuild_presets(self) -> None:
        presets: dict[str, tuple[Mapping[str, object], str]] = {}
        for (kind, name), doc in self._in_force().docs.items():
            if kind == "presets" and (good := self._validated(kind, name, doc)):
                presets[name] = (good.spec.config_values(), good.origin)
        self._presets = merge_presets(builtin_presets(), presets)

    def _state_changed(self, event: StateChanged) -> None:
        if self._publisher is not None:
            self._publisher.mark([event.breaker])

    def _apply(self, name: str, managed: _Managed, *, initial: bool) -> bool:
        """Bring one breaker to the desired state; True if anything was applied."""
        layers = list(managed.layers)
        doc = self._in_force().docs.get(("breakers", name))
        good = None if doc is None else self._validated("breakers", name, doc)
        spec: BreakerSpec | None = None
        if good is not None:
            spec = good.spec  # type: ignore[assignment]
            layers += layers_from_spec(self._layer, spec, good.origin, self._labels)  # type: ignore[arg-type]
        try:
            resolved = resolve(name, layers, self._presets)
        except ConfigError as exc:
            if managed.error != clip(str(exc)):
                logger.error(  # noqa: TRY400 - an expected condition, no traceback
                    "breaker %s keeps its last good config: %s", name, exc
                )
            managed.error = clip(str(exc))
            return False
        breaker = managed.breaker
        changed = False
        if resolved.config != breaker.config or dict(resolved.sources) != {
            f: s for f, (_, s) in breaker.explain().items()
        }:
            breaker.reconfigure(resolved.config, sources=resolved.sources)
            changed = True
        managed.preset = resolved.preset
        managed.cfg = config_digest(
            resolved.config.model_dump(mode="json"), resolved.sources
        )
        # A reset first: it clears the breaker's override, which the spec (read
        # at once with the reset, or after it) may set again.
        changed |= self._apply_reset(managed, spec, initial=initial)
        changed |= self._apply_override(managed, spec)
        generation = 0 if spec is None else generation_of(spec)
        applied_digest = None if good is None else good.digest
        changed |= (generation, applied_digest) != (managed.generation, managed.digest)
        managed.generation, managed.digest = generation, applied_digest
        managed.error = None
        return changed

    def _override(self, spec: BreakerSpec | None) -> Override | None:
        """The override in force here: the last matching scope's, else the spec's."""
        if spec is None:
            return None
        found = spec.override
        for scope, values in zip(spec.scopes or (), scopes_of(spec), strict=True):
            if scope.override is not None and values.selector.matches(self._labels):
                found = scope.override
        return found

    def _apply_override(self, managed: _Managed, spec: BreakerSpec | None) -> bool:
        override = self._override(spec)
        mode = "none" if override is None else override.mode
        key = (
            None
            if override is None or mode == "none"
            else (mode, override.reason, override.until)
        )
        if key == managed.override:
            return False
        breaker = managed.breaker
        if override is None or key is None:
            if managed.override is not None:  # lift only what the plane imposed
                breaker.clear_override()
        else:
            expires_in = None
            if override.until is not None:
                expires_in = override.until.timestamp() - time.time()
            if expires_in is not None and expires_in <= 0:
                breaker.clear_override()
            elif mode == "forced_open":
                breaker.force_open(override.reason, expires_in=expires_in)
            else:
                breaker.force_closed(override.reason, expires_in=expires_in)
        managed.override = key
        return True

    def _resets(self, spec: BreakerSpec | None) -> dict[str, int]:
        """The reset markers that concern this instance: the spec's, its scopes'."""
        if spec is None:
            return {}
        markers = (
            {"": spec.reset_generation} if spec.reset_generation is not None else {}
        )
        for scope, values in zip(spec.scopes or (), scopes_of(spec), strict=True):
            if scope.reset_generation is not None and values.selector.matches(
                self._labels
            ):
                markers[str(values.selector)] = scope.reset_generation
        return markers

    def _apply_reset(
        self, managed: _Managed, spec: BreakerSpec | None, *, initial: bool
    ) -> bool:
        """Reset once per new marker (a scope that reappears counts as new)."""
        markers = self._resets(spec)
        previous = managed.resets or {}
        fresh = any(previous.get(key) != value for key, value in markers.items())
        managed.resets = markers
        if fresh and not initial:  # a breaker created after the request is fresh
            managed.breaker.reset()
            managed.override = None  # reset lifted it: apply the spec's again
        return fresh

    # -- what the status publisher sends ---------------------------------------------

    def _identity(self) -> dict[str, Any]:
        """This instance's identity document (it changes only with health or errors)."""
        with self._lock:
            health = {
                "reachable": self._store_error is None,
                "loaded_from": self._loaded_from,
                "history_backwards": self._held is not None,
            }
            errors = bounded_errors(self.errors())
        return {
            "format": STATUS_FORMAT,
            "instance_id": self.instance_id,
            "app": self.app,
            "host": _HOST,
            "pid": os.getpid(),
            "started_at": utc_text(self._started_at.timestamp()),
            "version": _version(),
            "store": self._store_name,
            "labels": dict(self._labels),
            "health": health,
            "errors": errors,
            "base": _base(),
        }

    def _record_error(
        self, name: str, managed: _Managed
    ) -> tuple[str | None, str | None]:
        """The config error in force, and the digest of the spec rejected, if any."""
        error = managed.error or managed.env_error
        doc = self._in_force().docs.get(("breakers", name))
        if doc is None or doc.error is None:
            return error, None
        # Which document was rejected: operators tell an invalid spec from one this
        # instance has not seen yet.
        encoded = doc.canonical()
        return error or doc.error, None if encoded is None else digest_of(encoded)

    def _record(self, name: str) -> dict[str, Any] | None:
        """One breaker's status record (``docs/store.md``), or None if it is gone."""
        with self._lock:
            managed = self._breakers.get(name)
            if managed is None:
                return None
            error, rejected = self._record_error(name, managed)
        breaker = managed.breaker
        snap = breaker.snapshot()
        # Wall-clock instants are fixed once per change, so an idle breaker's record
        # stays byte for byte the same (converting on every build jitters).
        if managed.since[0] != snap.last_state_change:
            wall = time.time() - (breaker.clock() - snap.last_state_change)
            managed.since = (snap.last_state_change, wall)
        record: dict[str, Any] = {
            "state": snap.state.value,
            "gen": managed.generation,
            "cfg": managed.cfg,
            "calls": [
                snap.calls,
                snap.successes,
                snap.failures,
                snap.ignored,
                snap.rejections,
                snap.fallbacks,
                snap.slow_calls,
            ],
            "window": [
                snap.window_calls,
                _rounded(snap.failure_rate),
                _rounded(snap.slow_call_rate),
                snap.consecutive_failures,
            ],
            "opened": snap.times_opened,
            "since": utc_text(managed.since[1]),
        }
        if managed.digest is not None:
            record["digest"] = managed.digest
        if snap.override_reason is not None:
            record["reason"] = snap.override_reason[:MAX_TEXT_CHARS]
        if snap.retry_after_s is not None:
            key = (snap.last_state_change, snap.state)
            if managed.retry[:2] != key:
                managed.retry = (*key, time.time() + snap.retry_after_s)
            record["retry_at"] = utc_text(managed.retry[2] or time.time())
        if error is not None:
            record["error"] = error
        if rejected is not None:
            record["rejected"] = rejected
        local = [
            layer_json(layer)
            for layer in managed.layers
            if layer.values or layer.preset
        ]
        if local:
            record["local"] = local
        return record


_HOST = socket.gethostname()


def _labels(
    app: str,
    instance_id: str,
    environ: Mapping[str, str],
    given: Mapping[str, str] | None,
) -> tuple[dict[str, str], str | None]:
    """
    This instance's labels: app, host, instance, ``CBCONTROL_LABELS`` and ``given``.

    Returns the labels and why entries were skipped (logged, reported in status).
    """
    from cbcontrol._labels import parse_labels

    text = environ.get("CBCONTROL_LABELS", "")
    found, errors = parse_labels(text)
    if given:
        extra, more = parse_labels(
            ",".join(f"{k}={v}" for k, v in given.items()), source="connect(labels=)"
        )
        found.update(extra)
        errors += more
    for error in errors:
        logger.error("%s; ignoring this label", error)
    automatic = {"app": sanitize(app), "host": sanitize(_HOST), "instance": instance_id}
    message = clip("; ".join(map(str, errors))) if errors else None
    return {**found, **automatic}, message


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _code_layer(values: Mapping[str, object]) -> Layer:
    """The values an application's code gives a breaker, as its lowest own layer."""
    return Layer("code", dict(values), dict.fromkeys(values, "code"))


def _next_epoch(
    previous: Mapping[str, Any] | None, update: Update
) -> Mapping[str, Any] | None:
    """The store's epoch after ``update``: an unreadable one is not a lost one."""
    epoch = None if update.complete else previous
    for document in update.documents:
        if document.kind == "epoch":
            epoch = previous if document.error is not None else document.data
    return epoch


def _instance_id(app: str) -> str:
    return sanitize(f"{app}-{_HOST}"[:100]) + f"-{os.getpid()}-{os.urandom(3).hex()}"


def _version() -> str:
    import cbcontrol

    return cbcontrol.__version__  # looked up once, then a module global


@functools.cache
def _base() -> dict[str, Any]:
    """The defaults and built-in presets this library resolves from, as JSON."""
    from cbcontrol.config._models import BreakerConfig
    from cbcontrol.config._presets import BUILTIN_PRESETS

    return {
        "defaults": BreakerConfig().model_dump(mode="json"),
        "presets": {
            name: spec.model_dump(mode="json", exclude_unset=True)
            for name, spec in BUILTIN_PRESETS.items()
        },
    }


def _breaker_status(managed: _Managed, error: str | None) -> BreakerStatus:
    breaker = managed.breaker
    snap = breaker.snapshot()
    state = snap.state.value
    changed_at = time.time() - (breaker.clock() - snap.last_state_change)
    return BreakerStatus(
        state=state,
        mode=state if state in ("forced_open", "forced_closed") else "none",  # type: ignore[arg-type]
        override_reason=snap.override_reason,
        observed_generation=managed.generation,
        observed_digest=managed.digest,
        effective={
            f: FieldValue(value=v, source=s) for f, (v, s) in breaker.explain().items()
        },
        stats=BreakerStats(
            window_calls=snap.window_calls,
            failure_rate=snap.failure_rate,
            slow_call_rate=snap.slow_call_rate,
            consecutive_failures=snap.consecutive_failures,
        ),
        counters=BreakerCounters(
            calls=snap.calls,
            successes=snap.successes,
            failures=snap.failures,
            ignored=snap.ignored,
            rejections=snap.rejections,
            fallbacks=snap.fallbacks,
            slow_calls=snap.slow_calls,
        ),
        times_opened=snap.times_opened,
        last_state_change=datetime.fromtimestamp(changed_at, UTC),
        retry_after_s=snap.retry_after_s,
        error=error,
    )


def connect(
    store: str | StoreBackend | None = None,
    app: str | None = None,
    *,
    namespace: str | None = None,
    environ: Mapping[str, str] | None = None,
    source: StoreBackend | None = None,
    clock: Clock = monotonic,
    labels: Mapping[str, str] | None = None,
) -> ControlPlane:
    """
    Open the control plane of this process.

    Args:
        store: ``file://PATH``, ``etcd://HOST:PORT[,HOST:PORT]/NAMESPACE``,
            ``etcds://...`` or ``memory://``; default ``CBCONTROL_STORE``, else
            ``./cbcontrol.yaml`` if present, else memory. Or a ready
            :class:`~cbcontrol.store.StoreBackend` (e.g.
            :class:`~cbcontrol.store.MemoryStore` in tests).
        app: The application's name in instance status (default: the script's name).
        namespace: Overrides the store URL's namespace.
        environ: Environment to read instead of :data:`os.environ`.
        source: The same as passing a backend as ``store`` (kept from 0.1).
        clock: The breakers' clock.
        labels: Labels of this instance besides ``app``, ``host``, ``instance`` and
            ``CBCONTROL_LABELS`` (``zone=eu-1,track=canary``), which operators'
            selectors match.

    Raises:
        ConfigError: ``store`` is not a valid store URL.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       ``store`` may be a backend.
    .. versionchanged:: 0.3.0
       ``labels``.
    """
    import sys
    from pathlib import Path

    from cbcontrol.store._open import open_backend

    backend = source
    if store is not None and not isinstance(store, str):
        backend, store = store, None
    url = parse_store_url(store, environ=environ, namespace=namespace)
    if backend is None:
        backend = open_backend(url, environ=environ)
    name = app or Path(sys.argv[0] or "python").stem or "python"
    return ControlPlane(
        url, backend, app=name, environ=environ, clock=clock, labels=labels
    )
