"""
The control plane inside an application: one registry of live-configured breakers.

``connect()`` opens the store named by ``CBCONTROL_STORE`` (or the argument), reads it
once, and starts **one** background thread that watches it. ``plane.breaker(name)``
returns the single breaker of that name in the process, configured from
``default < preset < env < file < etcd`` and retuned in place whenever the store
changes; state, counters and window survive a retune.

A store document that fails validation is never applied: the last good version of that
document stays in force, and the error is logged once per distinct message and kept in
:meth:`ControlPlane.errors` (and in the instance status). While the store is away, the
breakers keep serving on what they last applied.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from cbcontrol._agent import (
    EtcdStatusSink,
    FileStatusSink,
    StatusPublisher,
    StatusSink,
)
from cbcontrol._breaker import CircuitBreaker
from cbcontrol._clock import monotonic
from cbcontrol._store import StoreURL, open_source, parse_store_url
from cbcontrol.config._builder import (
    generation_of,
    layer_from_spec,
    validate_preset,
    validate_spec,
)
from cbcontrol.config._layout import STATUS_FORMAT
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
from cbcontrol.config.sources._env import EnvSource
from cbcontrol.exceptions import CBControlError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from cbcontrol._clock import Clock
    from cbcontrol._events import StateChanged
    from cbcontrol.config._models import BreakerSpec, PresetSpec
    from cbcontrol.config.sources._base import LiveSource, RawEntry, SourceSnapshot

__all__ = ["ControlPlane", "connect"]

logger = logging.getLogger("cbcontrol.plane")
logger.addHandler(logging.NullHandler())

_RESTART_DELAY_S = 1.0  # after an unexpected crash of a source's watch loop


@dataclass
class _Managed:
    """What the plane knows about one breaker it manages."""

    breaker: CircuitBreaker
    env: Layer
    options: dict[str, Any]
    code: Layer = field(default_factory=lambda: Layer("code"))
    override: tuple[object, ...] | None = None  # the override last applied
    reset_generation: int | None = None
    observed_generation: int = 0
    error: str | None = None  # the merged config was rejected
    env_error: str | None = None  # env variables that were skipped


@dataclass
class _Desired:
    """The last good documents from the live store, and the errors of rejected ones."""

    specs: dict[str, tuple[BreakerSpec, str]] = field(default_factory=dict)
    presets: dict[str, tuple[PresetSpec, str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    store_error: str | None = None
    revision: str = ""


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
        source: LiveSource | None,
        *,
        app: str,
        environ: Mapping[str, str] | None = None,
        clock: Clock = monotonic,
        publish: bool = True,
    ) -> None:
        self.store = store
        self.app = app
        self._source = source
        self._env = EnvSource(environ)
        self._clock = clock
        self._lock = threading.RLock()
        self._breakers: dict[str, _Managed] = {}
        self._desired = _Desired()
        self._presets: PresetTable = builtin_presets()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[str], object]] = []
        self.instance_id = _instance_id(app)
        self._started_at = datetime.now(UTC)
        self._publisher: StatusPublisher | None = None
        if source is not None:
            self._initial_read(source)
            self._thread = threading.Thread(
                target=self._watch, args=(source,), name="cbcontrol-plane", daemon=True
            )
            self._thread.start()
            sink = _status_sink(store, source, self.instance_id)
            if sink is not None and publish:
                self._publisher = StatusPublisher(self.status, sink)
                self._publisher.start()

    # -- public API ------------------------------------------------------------------

    def breaker(
        self, name: str, *, code: Mapping[str, object] | None = None, **options: Any
    ) -> CircuitBreaker:
        """
        The one breaker called ``name`` in this process, live-configured.

        Args:
            name: The dependency's name; chooses the preset of the same name and the
                ``<NAME>_CB_*`` env variables.
            code: Config values the application's code gives (a drop-in shim's
                ``fail_max``): a layer above the preset, under env, file and etcd;
                used when the breaker is created.
            **options: ``failure_on``, ``ignore``, ``fallback``, ``clock``, ``rand``
                for :class:`~cbcontrol.CircuitBreaker`, used when it is created.

        Raises:
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
            env, env_errors = self._env.layer(name)
            for error in env_errors:
                logger.error("%s; ignoring this variable", error)
            given = dict(options)
            breaker = CircuitBreaker(name, **{"clock": self._clock, **options})
            breaker.on_state_change(self._state_changed, on_time=True)
            values = dict(code or {})
            code_layer = Layer("code", values, dict.fromkeys(values, "code"))
            managed = _Managed(breaker, env, given, code_layer)
            managed.env_error = "; ".join(map(str, env_errors)) or None
            self._breakers[name] = managed
            self._apply(name, managed, initial=True)
        if self._publisher is not None:
            self._publisher.poke()  # report the new breaker without waiting
        return breaker

    def set_code(self, name: str, code: Mapping[str, object]) -> None:
        """Replace the code layer of breaker ``name`` (a shim's setter) and apply it."""
        with self._lock:
            managed = self._breakers[name]
            managed.code = Layer("code", dict(code), dict.fromkeys(code, "code"))
            self._apply(name, managed, initial=False)

    def names(self) -> list[str]:
        """The names of the breakers this process has created."""
        with self._lock:
            return sorted(self._breakers)

    def errors(self) -> dict[str, str]:
        """Config errors in force: ``{"breakers/payment": message, "store": ...}``."""
        with self._lock:
            errors = dict(self._desired.errors)
            if self._desired.store_error is not None:
                errors["store"] = self._desired.store_error
            for name, managed in self._breakers.items():
                error = managed.error or managed.env_error
                if error is not None:
                    errors.setdefault(f"breakers/{name}", error)
            return errors

    def observed_generation(self, name: str) -> int:
        """The spec generation this process last applied to breaker ``name``."""
        with self._lock:
            return self._breakers[name].observed_generation

    def on_applied(self, listener: Callable[[str], object]) -> None:
        """Call ``listener(name)`` after a breaker applied a new desired state."""
        with self._lock:
            self._listeners.append(listener)

    def status(self) -> InstanceStatus:
        """This process's reported state: identity, and each breaker's status."""
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
            store=str(self.store),
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
        if self._source is not None:
            self._source.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ControlPlane app={self.app!r} store={str(self.store)!r}>"

    # -- applying desired state ------------------------------------------------------

    def _initial_read(self, source: LiveSource) -> None:
        try:
            snapshot = source.read()
        except CBControlError as exc:
            # Never fail the application for its store: start from defaults, presets
            # and env, and let the watch catch up when the store answers.
            logger.warning("config store %s is not readable yet: %s", source.name, exc)
            self._desired.store_error = str(exc)
            return
        self._on_snapshot(snapshot)

    def _watch(self, source: LiveSource) -> None:
        while not self._stop.is_set():
            try:
                source.run(self._on_snapshot, self._stop)
            except Exception:
                logger.exception("watching %s failed; restarting", source.name)
                self._stop.wait(_RESTART_DELAY_S)
            else:
                return

    def _on_snapshot(self, snapshot: SourceSnapshot) -> None:
        try:
            with self._lock:
                self._ingest(snapshot)
                applied = [
                    name
                    for name, managed in self._breakers.items()
                    if self._apply(name, managed, initial=False)
                ]
                listeners = list(self._listeners)
        except Exception:
            # A bug here must not kill the watch: log it, keep the last good state.
            logger.exception("applying a snapshot of %s failed", snapshot.source)
            return
        if applied and self._publisher is not None:
            self._publisher.poke()  # acknowledge at once: cbctl --wait is watching
        for name in applied:
            for listener in listeners:
                listener(name)

    def _ingest(self, snapshot: SourceSnapshot) -> None:
        """Validate documents; a rejected one keeps its last good version."""
        desired = self._desired
        self._log_store_health(snapshot)
        desired.store_error = snapshot.error
        desired.revision = snapshot.revision
        errors: dict[str, str] = {}
        specs: dict[str, tuple[BreakerSpec, str]] = {}
        presets: dict[str, tuple[PresetSpec, str]] = {}
        for (kind, name), entry in snapshot.entries.items():
            key = f"{kind}/{name}"
            try:
                if kind == "presets":
                    presets[name] = (
                        validate_preset(name, _data(entry), entry.origin),
                        entry.origin,
                    )
                else:
                    specs[name] = (
                        validate_spec(name, _data(entry), entry.origin),
                        entry.origin,
                    )
            except ConfigError as exc:
                errors[key] = str(exc)
                if kind == "presets" and name in desired.presets:
                    presets[name] = desired.presets[name]
                elif kind == "breakers" and name in desired.specs:
                    specs[name] = desired.specs[name]
            if entry.error is not None:
                errors.setdefault(key, entry.error)
        for key, message in errors.items():
            if desired.errors.get(key) != message:
                logger.error(
                    "rejected %s, keeping its last good version: %s", key, message
                )
        desired.errors = errors
        desired.specs = specs
        desired.presets = presets
        self._presets = merge_presets(builtin_presets(), presets)

    def _state_changed(self, event: StateChanged) -> None:
        del event
        if self._publisher is not None:
            self._publisher.poke()

    def _log_store_health(self, snapshot: SourceSnapshot) -> None:
        """Log a change of the store's health once, not on every snapshot."""
        if snapshot.error == self._desired.store_error:
            return
        if snapshot.error is not None:
            logger.error("config store %s: %s", snapshot.source, snapshot.error)
        else:
            logger.info("config store %s is healthy again", snapshot.source)

    def _apply(self, name: str, managed: _Managed, *, initial: bool) -> bool:
        """Bring one breaker to the desired state; True if anything was applied."""
        layers = [managed.code, managed.env]
        spec_origin = self._desired.specs.get(name)
        spec = None
        if spec_origin is not None:
            spec, origin = spec_origin
            # A memory store with an injected source stands in for the live store.
            layers.append(layer_from_spec(self.store.layer or "etcd", spec, origin))
        try:
            resolved = resolve(name, layers, self._presets)
        except ConfigError as exc:
            if managed.error != str(exc):
                logger.error(  # noqa: TRY400 - an expected condition, no traceback
                    "breaker %s keeps its last good config: %s", name, exc
                )
            managed.error = str(exc)
            return False
        breaker = managed.breaker
        changed = False
        if resolved.config != breaker.config or dict(resolved.sources) != {
            f: s for f, (_, s) in breaker.explain().items()
        }:
            breaker.reconfigure(resolved.config, sources=resolved.sources)
            changed = True
        changed |= self._apply_override(managed, spec)
        changed |= self._apply_reset(managed, spec, initial=initial)
        generation = 0 if spec is None else generation_of(spec)
        changed |= generation != managed.observed_generation
        managed.observed_generation = generation
        managed.error = None
        return changed

    def _apply_override(self, managed: _Managed, spec: BreakerSpec | None) -> bool:
        override = None if spec is None else spec.override
        mode = "none" if override is None else override.mode
        key = (
            None
            if override is None or mode == "none"
            else (
                mode,
                override.reason,
                override.until,
            )
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

    @staticmethod
    def _apply_reset(
        managed: _Managed, spec: BreakerSpec | None, *, initial: bool
    ) -> bool:
        generation = None if spec is None else spec.reset_generation
        if generation is None or generation == managed.reset_generation:
            return False
        if not initial:  # a breaker created after the reset request is fresh already
            managed.breaker.reset()
        managed.reset_generation = generation
        return True


_HOST = socket.gethostname()


def _instance_id(app: str) -> str:
    return f"{app}-{_HOST}-{os.getpid()}-{secrets.token_hex(3)}"


@functools.cache
def _version() -> str:
    from importlib import metadata  # ~15 ms of imports: not at `import cbcontrol`

    try:
        return metadata.version("cbcontrol")
    except metadata.PackageNotFoundError:  # pragma: no cover - source tree
        return "unknown"


def _status_sink(
    store: StoreURL, source: LiveSource, instance_id: str
) -> StatusSink | None:
    """Where this process reports: beside the file, or on a lease in etcd."""
    if store.scheme == "file" and store.path is not None:
        from cbcontrol.config.sources._file import status_dir

        return FileStatusSink(status_dir(store.path), instance_id)
    client = getattr(source, "client", None)
    if store.layer == "etcd" and client is not None:
        key = f"/cbcontrol/{store.namespace}/instances/{instance_id}"
        return EtcdStatusSink(client, key)
    make = getattr(source, "status_sink", None)  # e.g. InMemoryConfigSource
    return None if make is None else make(instance_id)


def _breaker_status(managed: _Managed, error: str | None) -> BreakerStatus:
    breaker = managed.breaker
    snap = breaker.snapshot()
    state = snap.state.value
    changed_at = time.time() - (breaker.clock() - snap.last_state_change)
    return BreakerStatus(
        state=state,
        mode=state if state in ("forced_open", "forced_closed") else "none",  # type: ignore[arg-type]
        override_reason=snap.override_reason,
        observed_generation=managed.observed_generation,
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


def _data(entry: RawEntry) -> Mapping[str, object]:
    if entry.data is None:
        raise ConfigError(entry.error or "never held a valid document")
    return entry.data


def connect(
    store: str | None = None,
    app: str | None = None,
    *,
    namespace: str | None = None,
    environ: Mapping[str, str] | None = None,
    source: LiveSource | None = None,
    clock: Clock = monotonic,
) -> ControlPlane:
    """
    Open the control plane of this process.

    Args:
        store: ``file://PATH``, ``etcd://HOST:PORT[,HOST:PORT]/NAMESPACE``,
            ``etcds://...`` or ``memory://``; default ``CBCONTROL_STORE``, else
            ``./cbcontrol.yaml`` if present, else memory.
        app: The application's name in instance status (default: the script's name).
        namespace: Overrides the store URL's namespace.
        environ: Environment to read instead of :data:`os.environ`.
        source: A ready :class:`~cbcontrol.config.sources._base.LiveSource` to use
            instead of opening ``store``
            (e.g. ``cbcontrol.testing.InMemoryConfigSource``).
        clock: The breakers' clock.

    Raises:
        ConfigError: ``store`` is not a valid store URL.

    .. versionadded:: 0.1.0
    """
    import sys
    from pathlib import Path

    url = parse_store_url(store, environ=environ, namespace=namespace)
    live = source if source is not None else open_source(url, environ=environ)
    name = app or Path(sys.argv[0] or "python").stem or "python"
    return ControlPlane(url, live, app=name, environ=environ, clock=clock)
