"""
The operator API: read the fleet, change breakers (all instances or a selection),
apply documents, watch, diagnose. What ``cbctl`` is built on, and any other tool.

Every write goes through :meth:`cbcontrol.ControlStore.update` (compare-and-swap,
history, validation before anything is written, retries while the store is briefly
unavailable) and returns a :class:`ChangeResult`; :meth:`Operator.wait` then waits
until the instances concerned applied it (those the selector matches, for a
targeted change).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Self

from cbcontrol._names import check_name
from cbcontrol.config._fields import CONFIG_FIELDS, FIELDS
from cbcontrol.exceptions import BreakerNotFoundError, ConfigError
from cbcontrol.operator._views import (
    BreakerView,
    FieldValue,
    FleetView,
    build_breaker,
    build_fleet,
)
from cbcontrol.store._status import utc_text

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
    from types import ModuleType

    from cbcontrol._labels import Selector
    from cbcontrol.operator._doctor import DoctorReport
    from cbcontrol.operator._plan import CheckedDocument, Plan
    from cbcontrol.operator._results import (
        ChangeResult,
        FieldExplanation,
        Frame,
        PresetView,
    )
    from cbcontrol.operator._views import Resolver
    from cbcontrol.store._control import ControlStore, StoredSpec
    from cbcontrol.store._control import StoreView as _StoreView
    from cbcontrol.store._port import StoreBackend
    from cbcontrol.store._records import Ack, HistoryRecord

__all__ = ["Operator", "open_operator"]


def default_actor() -> str:
    """Who makes a change: ``CBCTL_ACTOR``, else ``user@host``."""
    import getpass

    given = os.environ.get("CBCTL_ACTOR", "").strip()
    if given:
        return given
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _verbs() -> ModuleType:
    """What verbs do to documents: loaded by the first write, not by a read."""
    from cbcontrol.operator import _verbs as module

    return module


def _selector(given: str | Selector | None) -> Selector | None:
    if given is None:
        return None
    from cbcontrol._labels import Selector

    if isinstance(given, Selector):
        return given or None
    parsed = Selector.parse(given)
    if not parsed:
        rule = "is empty; leave it out to mean every instance"
        raise ConfigError(rule, field="selector", value=given, source="selector")
    return parsed


class Operator:
    """
    Operate the breakers of a store: read, change (all instances or a selection),
    apply documents, watch, diagnose.

    Open one with :func:`open_operator` (or around a
    :class:`~cbcontrol.ControlStore`); close it when done (or use ``with``)::

        with cbcontrol.operator.open_operator("etcd://10.0.0.1:2379/prod") as op:
            result = op.trip("payment", reason="INC-42", duration=1800,
                             selector="zone=eu-1")
            result = op.wait([result], timeout=10)[0]
            print(result.ack.applied, "of", result.ack.instances, "matching")

    Args:
        store: The store (the operator owns it and closes it).
        actor: Who makes the changes (default ``CBCTL_ACTOR``, else user@host).

    .. versionadded:: 0.3.0
    """

    def __init__(self, store: ControlStore, *, actor: str | None = None) -> None:
        self.store = store
        self.actor = actor or default_actor()

    @property
    def url(self) -> str:
        """The store, without credentials."""
        return str(self.store.url)

    def close(self) -> None:
        """Release the store."""
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------

    def _resolver(self, view: _StoreView) -> Resolver:
        """What the store alone gives a breaker: default < preset < spec (validated)."""
        cache: dict[str, Any] = {}
        dumps: dict[int, tuple[object, dict[str, Any]]] = {}
        shared: dict[tuple[str, object, str], FieldValue] = {}

        def resolve_store(
            name: str, stored: StoredSpec | None
        ) -> tuple[dict[str, FieldValue], str | None]:
            from cbcontrol.config._builder import layers_from_spec, validate_preset
            from cbcontrol.config._merge import builtin_presets, merge_presets, resolve

            if stored is not None and stored.error is not None:
                return {}, stored.error
            if "presets" not in cache:
                good = {}
                for preset, (doc, origin) in view.presets.items():
                    try:
                        spec = validate_preset(preset, doc, origin)
                    except ConfigError:
                        continue
                    good[preset] = (spec.config_values(), origin)
                cache["presets"] = merge_presets(builtin_presets(), good)
            layers = (
                []
                if stored is None
                else layers_from_spec(
                    self.store.backend.layer, stored.spec, stored.origin, {}
                )
            )
            try:
                resolved = resolve(name, layers, cache["presets"])
            except ConfigError as exc:
                return {}, str(exc)
            # equal configs are one object (the resolver shares them): dump each once
            dumped = dumps.get(id(resolved.config))
            if dumped is None or dumped[0] is not resolved.config:
                dumped = (resolved.config, resolved.config.model_dump(mode="json"))
                dumps[id(resolved.config)] = dumped
            values, sources = dumped[1], resolved.sources
            # most fields of most breakers are the same default or preset value
            fields = {}
            for f in CONFIG_FIELDS:
                key = (f, values[f], sources[f])
                found = shared.get(key)
                if found is None:
                    found = shared[key] = FieldValue(values[f], sources[f])
                fields[f] = found
            return fields, None

        return resolve_store

    def fleet(self, *, selector: str | Selector | None = None) -> FleetView:
        """
        Every breaker with a spec or on a live instance (on a matching one, with a
        selector), and every instance.

        Raises:
            ConfigError: The selector is malformed.
            StoreError: The store failed.
        """
        chosen = _selector(selector)
        view = self.store.view()
        return build_fleet(view, self._resolver(view), chosen)

    def breaker(
        self, name: str, *, selector: str | Selector | None = None
    ) -> BreakerView:
        """
        One breaker: its spec, effective config, each instance (matching ones only,
        with a selector).

        Raises:
            BreakerNotFoundError: No spec and no live instance has it.
            ConfigError: The name or the selector is malformed.
            StoreError: The store failed.
        """
        check_name("breaker", name, "Operator.breaker()")
        chosen = _selector(selector)
        view = self.store.view(name)
        if name not in view.names():
            self._not_found(name)
        return build_breaker(name, view, self._resolver(view), chosen)

    def _not_found(self, name: str) -> None:
        """Raise BreakerNotFoundError, naming the breakers there are."""
        # A second read: an instance may have published ``name`` since the read
        # that missed it, and the error must not suggest the very name.
        known = tuple(n for n in self.names() if n != name)
        raise BreakerNotFoundError(name, self.url, known)

    def names(self) -> list[str]:
        """Every breaker with a spec or on a live instance (for completion, too)."""
        return self.store.view().names()

    def preset_names(self) -> list[str]:
        """Every preset in force: built-in ones and the store's."""
        from cbcontrol.config._presets import BUILTIN_PRESETS
        from cbcontrol.store._port import Scope

        update = self.store.backend.read(Scope.PRESETS)
        own = {d.name for d in update.documents if d.kind == "presets"}
        return sorted({*BUILTIN_PRESETS, *own})

    def presets(self) -> list[PresetView]:
        """The presets in force and their values: built-in, extended by the store's."""
        from cbcontrol.config import BUILTIN_PRESETS
        from cbcontrol.operator._results import PresetView

        own = self.store.store_presets()
        return [
            PresetView(
                name,
                "+".join(
                    w
                    for w, yes in (
                        ("built-in", name in BUILTIN_PRESETS),
                        ("store", name in own),
                    )
                    if yes
                ),
                spec.model_dump(mode="json", exclude_unset=True),
            )
            for name, spec in sorted(self.store.presets().items())
        ]

    def history(
        self, name: str | None = None, *, limit: int = 50
    ) -> list[HistoryRecord]:
        """
        Who changed what, when, why: the latest changes, oldest first.

        Raises:
            BreakerNotFoundError: ``name`` has no history, no spec, no instance.
        """
        if name is not None:
            check_name("breaker", name, "Operator.history()")
        records = self.store.history(name, limit=limit)
        if name is not None and not records and name not in self.names():
            self._not_found(name)
        return records

    def explain(self, name: str) -> FieldExplanation:
        """
        A config field: kind, default, unit, rule, help, and which presets set it.

        Raises:
            ConfigError: There is no such field (the closest are suggested).
        """
        from cbcontrol.config._fields import parse_text
        from cbcontrol.operator._results import FieldExplanation

        key = name.replace("-", "_")
        if key not in FIELDS:
            parse_text(key, "", source="explain")  # raises, suggesting a field
        presets = {
            view.name: view.values[key] for view in self.presets() if key in view.values
        }
        return FieldExplanation(FIELDS[key], presets)

    def export(self) -> tuple[dict[str, Any], list[str]]:
        """
        The store's configuration as a document (for ``apply`` and the file store),
        without run-time state (overrides, reset markers, metadata), and what was
        left out because it is invalid.
        """
        from cbcontrol.operator._plan import export_document

        view = self.store.view()
        return export_document(view.specs, view.presets)

    def check_document(self, raw: bytes, where: str) -> CheckedDocument:
        """Read and check a config document against this store's presets."""
        from cbcontrol.operator._plan import check_document

        return check_document(raw, where, self.store.store_presets())

    def plan(self, checked: CheckedDocument) -> Plan:
        """
        What applying a (valid) document would change, per preset, breaker, field.

        Raises:
            ValueError: The document has errors.
        """
        from cbcontrol.operator._plan import plan_document

        view = self.store.view()
        return plan_document(checked, view.specs, view.presets)

    # -- writing ---------------------------------------------------------------------

    def _write(
        self,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        action: str,
        selector: Selector | None,
        reason: str | None,
        dry_run: bool,
        timeout: float,
        keys: Iterable[str] = (),
        must_exist: bool = True,
    ) -> ChangeResult:
        check_name("breaker", name, f"Operator.{action}()")
        started = time.monotonic()
        if must_exist and self.store.get(name) is None:
            view = self.store.view(name)
            if name not in view.names():
                self._not_found(name)
        seen: dict[str, Any] = {}

        def noting(doc: dict[str, Any]) -> dict[str, Any]:
            new = change(doc)
            seen["doc"] = new
            return new

        result = self.store.update(
            name,
            noting,
            actor=self.actor,
            reason=reason,
            action=action,
            timeout=timeout,
            selector=None if selector is None else str(selector),
            dry_run=dry_run,
        )
        from cbcontrol.operator._results import ChangeResult

        notes = _verbs().shadowing(seen.get("doc", {}), keys, selector) if keys else []
        return ChangeResult(
            name=name,
            action=action,
            generation=result.generation,
            changed=result.changed,
            changes=dict(result.changes),
            selector=None if selector is None else str(selector),
            dry_run=dry_run,
            notes=tuple(notes),
            digest=result.digest,
            started=started if result.sent_at is None else result.sent_at,
        )

    def set(
        self,
        name: str,
        values: Mapping[str, object] | None = None,
        *,
        preset: str | None = None,
        selector: str | Selector | None = None,
        reason: str | None = None,
        dry_run: bool = False,
        timeout: float = 10.0,
    ) -> ChangeResult:
        """
        Set config fields of a breaker (creating it), on every instance or on the
        instances a selector matches (a scope of the spec).

        ``values`` are as the models take them (``3``, ``"30s"``, ``None`` clears
        a nullable field); :func:`cbcontrol.config.parse_text` turns an operator's
        text into one. They are validated, with every rule and the presets, before
        anything is written.

        Raises:
            ConfigError: A value, the preset, the selector or the name is invalid.
            StoreError: The store failed.
        """
        given = dict(values or {})
        unknown = [k for k in given if k not in FIELDS]
        if unknown:
            from cbcontrol.config._fields import parse_text

            parse_text(unknown[0], "", source="Operator.set()")  # raises, suggesting
        if not given and preset is None:
            rule = "nothing to set: give at least one field, or a preset"
            raise ConfigError(rule, breaker=name)
        chosen = _selector(selector)
        keys = [*given, *(["preset"] if preset is not None else [])]
        return self._write(
            name,
            _verbs().set_fields(given, preset, chosen),
            action="set",
            selector=chosen,
            reason=reason,
            dry_run=dry_run,
            timeout=timeout,
            keys=keys,
            must_exist=False,
        )

    def unset(
        self,
        name: str,
        fields: Iterable[str] = (),
        *,
        preset: bool = False,
        all_fields: bool = False,
        selector: str | Selector | None = None,
        reason: str | None = None,
        dry_run: bool = False,
        timeout: float = 10.0,
    ) -> ChangeResult:
        """
        Remove config fields of a breaker (or of a scope), so the layer below shows
        through: the preset, the environment, the default, or the unscoped fields.
        A scope left empty is dropped (how a canary is rolled back).

        Raises:
            BreakerNotFoundError: No spec and no live instance has it.
            ConfigError: A field or the selector is invalid.
        """
        keys = (
            list(CONFIG_FIELDS) if all_fields else [k.replace("-", "_") for k in fields]
        )
        for key in keys:
            if key not in FIELDS:
                from cbcontrol.config._fields import parse_text

                parse_text(key, "", source="Operator.unset()")
        if preset:
            keys.append("preset")
        if not keys:
            rule = "nothing to unset: give fields, the preset, or all fields"
            raise ConfigError(rule, breaker=name)
        chosen = _selector(selector)
        return self._write(
            name,
            _verbs().unset_fields(keys, chosen),
            action="unset",
            selector=chosen,
            reason=reason,
            dry_run=dry_run,
            timeout=timeout,
        )

    def _force(
        self,
        name: str,
        mode: str,
        *,
        reason: str | None,
        duration: float | timedelta | None,
        selector: str | Selector | None,
        dry_run: bool,
        timeout: float,
    ) -> ChangeResult:
        override: dict[str, Any] = {"mode": mode, "actor": self.actor}
        if reason is not None:
            override["reason"] = reason
        if duration is not None:
            seconds = (
                duration.total_seconds()
                if isinstance(duration, timedelta)
                else float(duration)
            )
            if seconds <= 0:
                rule = "must be > 0"
                raise ConfigError(rule, field="duration", value=duration)
            override["until"] = utc_text(time.time() + seconds)
        chosen = _selector(selector)
        action = "trip" if mode == "forced_open" else "bypass"
        return self._write(
            name,
            _verbs().force(override, chosen),
            action=action,
            selector=chosen,
            reason=reason,
            dry_run=dry_run,
            timeout=timeout,
            keys=["override"],
        )

    def trip(
        self,
        name: str,
        *,
        reason: str | None = None,
        duration: float | timedelta | None = None,
        selector: str | Selector | None = None,
        dry_run: bool = False,
        timeout: float = 10.0,
    ) -> ChangeResult:
        """
        Force a breaker open (every call rejected) until reset, or for ``duration``
        seconds; on every instance, or on those a selector matches.

        Raises:
            BreakerNotFoundError: No spec and no live instance has it.
        """
        return self._force(
            name,
            "forced_open",
            reason=reason,
            duration=duration,
            selector=selector,
            dry_run=dry_run,
            timeout=timeout,
        )

    def bypass(
        self,
        name: str,
        *,
        reason: str | None = None,
        duration: float | timedelta | None = None,
        selector: str | Selector | None = None,
        dry_run: bool = False,
        timeout: float = 10.0,
    ) -> ChangeResult:
        """
        Force a breaker closed (every call admitted) until reset, or for
        ``duration`` seconds; on every instance, or on those a selector matches.

        Raises:
            BreakerNotFoundError: No spec and no live instance has it.
        """
        return self._force(
            name,
            "forced_closed",
            reason=reason,
            duration=duration,
            selector=selector,
            dry_run=dry_run,
            timeout=timeout,
        )

    def reset(
        self,
        name: str,
        *,
        selector: str | Selector | None = None,
        reason: str | None = None,
        dry_run: bool = False,
        timeout: float = 10.0,
    ) -> ChangeResult:
        """
        Lift the override and reset state and counters, once: on every instance
        (every override, scoped ones too), or with a selector, that scope's override
        and its instances.

        Raises:
            BreakerNotFoundError: No spec and no live instance has it.
        """
        chosen = _selector(selector)
        result = self._write(
            name,
            _verbs().reset(chosen),
            action="reset",
            selector=chosen,
            reason=reason,
            dry_run=dry_run,
            timeout=timeout,
        )
        if chosen is None:
            return result
        stored = self.store.get(name)
        mode = ((stored.data if stored else {}).get("override") or {}).get("mode")
        if mode in ("forced_open", "forced_closed"):
            note = (
                f"the breaker's own override ({mode}) still applies to the instances "
                f"{chosen} selects; reset without --selector lifts it"
            )
            return dataclasses.replace(result, notes=(*result.notes, note))
        return result

    def promote(
        self,
        name: str,
        selector: str | Selector,
        *,
        reason: str | None = None,
        dry_run: bool = False,
        timeout: float = 10.0,
    ) -> ChangeResult:
        """
        Make a scope's config fields the breaker's own, on every instance, and drop
        the scope: the last step of a canary.

        Raises:
            ConfigError: There is no such scope, or it holds an override.
        """
        chosen = _selector(selector)
        if chosen is None:
            rule = "is needed: promote names the scope to make every instance's"
            raise ConfigError(rule, field="selector", value=None)
        return self._write(
            name,
            _verbs().promote(chosen),
            action="promote",
            selector=None,
            reason=reason,
            dry_run=dry_run,
            timeout=timeout,
        )

    def apply(
        self,
        plan: Plan,
        *,
        reason: str | None = None,
        timeout: float = 10.0,
    ) -> list[ChangeResult]:
        """
        Write what a plan says: its presets first, then its breakers.

        Each breaker is brought to the document's entry as :meth:`plan` computed,
        re-read under compare-and-swap (a change made since is kept where the
        document does not speak).
        """
        raw_presets = plan.raw.get("presets") or {}
        for item in plan.presets:
            self.store.put_preset(item.name, raw_presets.get(item.name) or {})
        raw_breakers = plan.raw.get("breakers") or {}
        results = []
        for item in plan.breakers:
            desired = raw_breakers.get(item.name) or {}
            results.append(
                self._write(
                    item.name,
                    functools.partial(_towards, desired),
                    action="apply",
                    selector=None,
                    reason=reason,
                    dry_run=False,
                    timeout=timeout,
                    must_exist=False,
                )
            )
        return results

    # -- acknowledgements ------------------------------------------------------------

    def wait(
        self,
        results: Sequence[ChangeResult],
        timeout: float,
        progress: Callable[[ChangeResult, Ack], object] | None = None,
    ) -> list[ChangeResult]:
        """
        Wait until the instances concerned applied each change (one deadline for
        all); unchanged and dry-run results are counted, not waited for.
        """
        deadline = time.monotonic() + timeout
        done = []
        for result in results:
            if not result.changed or result.dry_run:
                done.append(self.count(result))
                continue
            since = time.monotonic()
            ack = self.store.wait_applied(
                result.name,
                result.generation,
                max(0.0, deadline - since),
                None if progress is None else functools.partial(progress, result),
                digest=result.digest,
                selector=result.selector,
            )
            elapsed = since - (result.started or since) + ack.elapsed_s
            done.append(
                dataclasses.replace(result, ack=ack, waited=True, elapsed_s=elapsed)
            )
        return done

    def count(self, result: ChangeResult) -> ChangeResult:
        """How many of the instances concerned applied a change now (no waiting)."""
        ack = self.store.count_applied(
            result.name,
            result.generation,
            digest=result.digest,
            selector=result.selector,
        )
        return dataclasses.replace(result, ack=ack, waited=False)

    # -- watching and diagnosing -----------------------------------------------------

    def watch(
        self, stop: threading.Event, *, selector: str | Selector | None = None
    ) -> Generator[Frame, None, None]:
        """
        The fleet as it changes (the first view at once), with the events between
        views, until ``stop`` is set. Close the generator to release the watch.
        """
        from cbcontrol.operator._events import events_between
        from cbcontrol.operator._results import Frame

        chosen = _selector(selector)
        previous: FleetView | None = None
        with_events = self.store.watch(stop)
        try:
            for view in with_events:
                fleet = build_fleet(view, self._resolver(view), chosen)
                events = events_between(
                    previous, fleet, utc_text(time.time())[:19] + "Z"
                )
                previous = fleet
                yield Frame(fleet, tuple(events))
        finally:
            with_events.close()

    def doctor(self, *, write_test: bool = False) -> DoctorReport:
        """Check the store and the fleet (the write test leaves nothing behind)."""
        import cbcontrol
        from cbcontrol.operator._doctor import run_checks

        return run_checks(
            self.store,
            lambda view: build_fleet(view, self._resolver(view)),
            cbcontrol.__version__,
            write_test=write_test,
        )

    def accept_history(self, *, reason: str | None = None) -> str:
        """Accept the store as it is after its history went backwards; the epoch."""
        return self.store.accept_history(actor=self.actor, reason=reason)


def _towards(desired: Mapping[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    from cbcontrol.operator._plan import towards

    return towards(doc, desired)[0]


def open_operator(
    url: str | StoreBackend | None = None,
    *,
    namespace: str | None = None,
    environ: Mapping[str, str] | None = None,
    timeout: float = 2.5,
    actor: str | None = None,
    create: bool = False,
) -> Operator:
    """
    Open the operator API on a store (as :func:`cbcontrol.open_store` does).

    Args:
        url: ``file://PATH``, ``etcd://HOST:PORT/NAMESPACE``, ``etcds://...``, or a
            backend; default ``CBCONTROL_STORE``, else ``./cbcontrol.yaml``.
        namespace: Overrides the URL's namespace (etcd only).
        environ: Environment to read instead of :data:`os.environ`.
        timeout: Seconds each etcd call may take.
        actor: Who makes the changes (default ``CBCTL_ACTOR``, else user@host).
        create: Create a file store that does not exist yet.

    Raises:
        ConfigError: The URL or namespace is invalid.
        StoreError: A file store does not exist (and ``create`` is False).

    .. versionadded:: 0.3.0
    """
    from cbcontrol.store._control import open_store

    store = open_store(
        url, namespace=namespace, environ=environ, timeout=timeout, create=create
    )
    return Operator(store, actor=actor)
