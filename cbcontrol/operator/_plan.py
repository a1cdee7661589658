"""
Config documents for GitOps: check one, plan its application, export the store's.

A document is what the file store holds and ``cbctl export`` writes: ``version``,
``presets``, ``breakers``. Applying it gives each breaker it names exactly the config
fields, preset and scopes it gives; what it leaves out of those is removed. Run-time
state is never taken back by a document:

* an ``override`` changes only if the document names one (an incident's trip
  survives an apply); a scope that holds an override the document does not name is
  kept, its override only;
* ``reset_generation`` is never lowered (an old document does not reset breakers);
* metadata (``generation``, ``updated_by``, ...) is cbctl's.

``export`` leaves all of those out: it is the configuration, not the incident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from cbcontrol._names import NAME_RULE, is_name
from cbcontrol.config._fields import CONFIG_FIELDS, as_read
from cbcontrol.exceptions import ConfigError
from cbcontrol.store._control import METADATA, check_spec, flatten

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from cbcontrol.config._models import ConfigDocument, PresetSpec
    from cbcontrol.store._control import StoredSpec

__all__ = [
    "CheckedDocument",
    "Plan",
    "PlannedChange",
    "check_document",
    "export_document",
    "plan_document",
    "towards",
]

RUNTIME = frozenset({*METADATA, "reset_generation", "override"})
"""Keys a document carries that are run-time state, not configuration."""
_OWN = (*CONFIG_FIELDS, "preset")


@dataclass(frozen=True, slots=True)
class CheckedDocument:
    """
    A config document as read and checked: every error, or the valid document.

    Attributes:
        where: The file (``<stdin>`` for standard input).
        data: The document as plain JSON types ({} if it did not parse).
        errors: Every error found, as ``path: what is wrong``.

    .. versionadded:: 0.3.0
    """

    where: str
    data: Mapping[str, Any]
    errors: tuple[str, ...]
    document: ConfigDocument | None = field(default=None, repr=False)

    @property
    def valid(self) -> bool:
        """No error was found."""
        return not self.errors

    def counts(self) -> tuple[int, int]:
        """``(presets, breakers)`` in the document."""
        presets = self.data.get("presets") or {}
        breakers = self.data.get("breakers") or {}
        return len(presets), len(breakers)


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """
    What applying a document changes in one preset or breaker.

    Attributes:
        kind: ``preset`` or ``breaker``.
        name: Its name.
        changes: ``{field: (old, new)}`` (a scope's fields as ``field[selector]``).
        notes: What the document asked for that is kept from the store instead.
        created: There was no such preset or breaker before.

    .. versionadded:: 0.3.0
    """

    kind: Literal["preset", "breaker"]
    name: str
    changes: Mapping[str, tuple[object, object]]
    notes: tuple[str, ...] = ()
    created: bool = False

    def to_json(self) -> dict[str, Any]:
        """``{field: [old, new]}``."""
        return {k: [old, new] for k, (old, new) in self.changes.items()}


@dataclass(frozen=True, slots=True)
class Plan:
    """
    The diff of applying a document to a store, per preset, breaker and field.

    Attributes:
        where: The document's file.
        items: The presets and breakers that change (presets first).
        notes: What is kept from the store although the document differs.

    .. versionadded:: 0.3.0
    """

    where: str
    items: tuple[PlannedChange, ...]
    notes: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __bool__(self) -> bool:
        return bool(self.items)

    @property
    def presets(self) -> tuple[PlannedChange, ...]:
        """The presets that change."""
        return tuple(i for i in self.items if i.kind == "preset")

    @property
    def breakers(self) -> tuple[PlannedChange, ...]:
        """The breakers that change."""
        return tuple(i for i in self.items if i.kind == "breaker")

    def to_json(self) -> dict[str, Any]:
        """``{"presets": {name: {field: [old, new]}}, "breakers": {...}, "notes"}``."""
        return {
            "presets": {i.name: i.to_json() for i in self.presets},
            "breakers": {i.name: i.to_json() for i in self.breakers},
            "notes": list(self.notes),
        }


# -- checking --------------------------------------------------------------------------

_SHOWN_VALUE = 100  # characters of a bad value an error quotes


def _plain(value: object) -> object:
    """YAML values as JSON types (keys as text; the loader bounds the expansion)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _message(error: Mapping[str, Any]) -> str:
    """A schema error as ``path: rule, got value``, in cbcontrol's words (bounded)."""
    from cbcontrol._limits import clip
    from cbcontrol.config._merge import _rule

    path = ".".join(str(p) for p in error["loc"]) or "(document)"
    if error["type"] == "extra_forbidden":
        rule = "is not a known field"
    elif error["type"] == "missing":
        rule = "is required"
    else:
        rule = _rule(error)
        if "input" in error and ", got " not in rule:
            rule += f", got {clip(repr(error['input']), _SHOWN_VALUE)}"
    return clip(f"{path}: {rule}")


def _bounded(errors: list[str]) -> tuple[str, ...]:
    """At most MAX_ERRORS of them: a document of bad entries is not a flood."""
    from cbcontrol._limits import MAX_ERRORS

    if len(errors) <= MAX_ERRORS:
        return tuple(errors)
    return (*errors[:MAX_ERRORS], f"... and {len(errors) - MAX_ERRORS} more errors")


def _valid_part(
    data: Mapping[str, Any], errors: Sequence[Mapping[str, Any]]
) -> ConfigDocument | None:
    """The entries without a schema error, to check further (None if none are)."""
    from pydantic import ValidationError

    from cbcontrol.config._models import ConfigDocument

    bad = {tuple(str(p) for p in e["loc"][:2]) for e in errors}
    part: dict[str, Any] = {}
    for kind in ("presets", "breakers"):
        section = data.get(kind)
        if not isinstance(section, dict) or (kind,) in bad:
            continue
        part[kind] = {n: v for n, v in section.items() if (kind, str(n)) not in bad}
    try:
        return ConfigDocument.model_validate(part)
    except ValidationError:
        return None


def _resolution_errors(
    document: ConfigDocument,
    raw: Mapping[str, Any],
    store_presets: Mapping[str, PresetSpec],
) -> list[str]:
    """Names outside the grammar; breakers that do not resolve over their presets."""
    errors = [
        f"{kind}.{name}: the name {NAME_RULE}"
        for kind, names in (
            ("presets", document.presets),
            ("breakers", document.breakers),
        )
        for name in names
        if not is_name(name)
    ]
    if errors:
        return errors
    presets = {**store_presets, **document.presets}
    breakers = raw.get("breakers") or {}
    for name in document.breakers:
        try:
            check_spec(
                name,
                breakers.get(name) or {},
                presets,
                "file",
                f"file:#breakers.{name}",
            )
        except ConfigError as exc:
            where = f"breakers.{name}" + (f".{exc.field}" if exc.field else "")
            errors.append(f"{where}: {exc.rule}")
    return errors


def check_document(
    raw: bytes, where: str, store_presets: Mapping[str, PresetSpec] | None = None
) -> CheckedDocument:
    """
    Read and check a config document: every error, with its path.

    Beyond the schema, each breaker must resolve over the presets it can see (the
    built-in ones, ``store_presets``, the document's own), as instances will.
    """
    from pydantic import ValidationError

    from cbcontrol._limits import DocumentError
    from cbcontrol.config._models import ConfigDocument
    from cbcontrol.config._yamldoc import check_top_level, load_yaml

    try:
        data = _plain(check_top_level(load_yaml(raw, where), where))
    except DocumentError as exc:
        return CheckedDocument(where, {}, (" ".join(str(exc).split()),))
    assert isinstance(data, dict)  # noqa: S101 - check_top_level made sure
    try:
        document = ConfigDocument.model_validate(data)
    except ValidationError as exc:
        schema = exc.errors()
        valid = _valid_part(data, schema)
        errors = [_message(e) for e in schema]
        if valid is not None:
            errors += _resolution_errors(valid, data, store_presets or {})
        return CheckedDocument(where, data, _bounded(errors))
    errors = _resolution_errors(document, data, store_presets or {})
    return CheckedDocument(where, data, _bounded(errors), document)


# -- planning --------------------------------------------------------------------------


def _read(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A document with its values as the library reads them (``30s`` == ``30``)."""
    out: dict[str, Any] = {}
    for key, value in flatten(doc).items():
        name = key.partition("[")[0]
        try:
            out[key] = as_read(name, value) if name in CONFIG_FIELDS else value
        except (TypeError, ValueError):
            out[key] = value
    return out


def _changes(
    old: Mapping[str, Any], new: Mapping[str, Any]
) -> dict[str, tuple[object, object]]:
    before, after = _read(old), _read(new)
    keys = [*before, *(k for k in after if k not in before)]
    return {
        k: (before.get(k), after.get(k))
        for k in keys
        if k not in METADATA
        and ((k in before) != (k in after) or before.get(k) != after.get(k))
    }


def _same(a: object, b: object, key: str) -> bool:
    return _read({key: a}) == _read({key: b})


def _own(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The config fields and preset of ``desired``, keeping equal stored text."""
    out = {}
    for key in _OWN:
        if key in desired:
            same = key in current and _same(current[key], desired[key], key)
            out[key] = current[key] if same else desired[key]
    return out


def towards(
    current: Mapping[str, Any], desired: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """
    The spec a document's entry makes of a stored one (see the module), and notes.

    Args:
        current: The stored spec, without metadata ({} if none).
        desired: The document's entry, as written.
    """
    notes: list[str] = []
    new = _own(current, desired)
    for key in ("override", "reset_generation"):
        if key in current:
            new[key] = current[key]
    if "override" in desired:
        new["override"] = desired["override"]
    kept_reset = _higher(
        current.get("reset_generation"), desired.get("reset_generation")
    )
    if kept_reset is not None:
        new["reset_generation"] = kept_reset
    if desired.get("reset_generation") is not None and kept_reset != desired.get(
        "reset_generation"
    ):
        notes.append(
            f"reset_generation {desired['reset_generation']} is below the store's "
            f"{current.get('reset_generation')}: kept (applying never resets)"
        )
    scopes, kept = _scopes_towards(current, desired)
    notes += kept
    if scopes:
        new["scopes"] = scopes
    return new, notes


def _scopes_towards(
    current: Mapping[str, Any], desired: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The document's scopes, with the store's run-time state of each kept."""
    from cbcontrol._labels import Selector

    stored = {
        str(Selector.parse(str(s.get("selector")))): s
        for s in current.get("scopes") or []
        if isinstance(s, dict)
    }
    scopes, notes = [], []
    for scope in desired.get("scopes") or []:
        text = str(Selector.parse(str(scope["selector"])))
        before = stored.pop(text, {})
        part = {"selector": text, **_own(before, scope)}
        override = scope.get("override", before.get("override"))
        if override is not None:
            part["override"] = override
        reset = _higher(before.get("reset_generation"), scope.get("reset_generation"))
        if reset is not None:
            part["reset_generation"] = reset
        scopes.append(part)
    keep = ("selector", "override", "reset_generation")
    for text, scope in stored.items():
        # A scope the document leaves out keeps its run-time state, as the
        # breaker's own does; export leaves that state out, so it must survive.
        if "override" in scope:
            scopes.append({k: v for k, v in scope.items() if k in keep})
            notes.append(
                f"scope {text} is not in the document but holds an override: kept "
                "(lift it with reset --selector)"
            )
        elif "reset_generation" in scope:
            scopes.append({k: v for k, v in scope.items() if k in keep})
    return scopes, notes


def _higher(stored: object, given: object) -> int | None:
    values = [v for v in (stored, given) if type(v) is int]
    return max(values) if values else None


def plan_document(
    checked: CheckedDocument,
    specs: Mapping[str, StoredSpec],
    store_presets: Mapping[str, tuple[Mapping[str, Any], str]],
) -> Plan:
    """
    What applying a valid document to a store with ``specs`` and presets changes.

    Raises:
        ValueError: The document has errors (check it first).
    """
    if not checked.valid:
        msg = f"{checked.where} has errors; plan only a valid document"
        raise ValueError(msg)
    items: list[PlannedChange] = []
    notes: list[str] = []
    for name, values in (checked.data.get("presets") or {}).items():
        before = store_presets.get(name, ({}, ""))[0]
        changes = _changes(before, values or {})
        if changes:
            items.append(
                PlannedChange(
                    "preset", name, changes, created=name not in store_presets
                )
            )
    for name, entry in (checked.data.get("breakers") or {}).items():
        stored = specs.get(name)
        current = {} if stored is None or stored.read_error else dict(stored.data)
        current = {k: v for k, v in current.items() if k not in METADATA}
        new, kept = towards(current, entry or {})
        notes += [f"breaker {name}: {n}" for n in kept]
        changes = _changes(current, new)
        if changes:
            items.append(
                PlannedChange(
                    "breaker", name, changes, tuple(kept), created=stored is None
                )
            )
    return Plan(checked.where, tuple(items), tuple(notes), checked.data)


# -- exporting -------------------------------------------------------------------------


def desired_only(data: Mapping[str, Any]) -> dict[str, Any]:
    """A spec without its run-time state: what ``export`` writes of it."""
    out = {k: v for k, v in data.items() if k not in RUNTIME and k != "scopes"}
    scopes = []
    for scope in data.get("scopes") or []:
        if isinstance(scope, dict):
            part = {k: v for k, v in scope.items() if k not in RUNTIME}
            if set(part) - {"selector"}:
                scopes.append(part)
    if scopes:
        out["scopes"] = scopes
    return out


def export_document(
    specs: Mapping[str, StoredSpec],
    store_presets: Mapping[str, tuple[Mapping[str, Any], str]],
) -> tuple[dict[str, Any], list[str]]:
    """The store's configuration as a document, and what had to be left out (why)."""
    presets = {name: dict(doc) for name, (doc, _) in sorted(store_presets.items())}
    breakers = {}
    skipped = []
    for name, stored in sorted(specs.items()):
        if stored.error is not None:
            skipped.append(f"breaker {name} left out, it is invalid: {stored.error}")
            continue
        breakers[name] = desired_only(stored.data)
    return {"version": 1, "presets": presets, "breakers": breakers}, skipped
