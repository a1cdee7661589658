"""
The one place precedence lives: layers merged per field, with provenance.

Lowest to highest (DESIGN.md §4)::

    built-in default  <  preset  <  environment  <  YAML file  <  etcd

The live stores are on top because they are what operators change at run time; env
vars are deploy-time defaults under them. Each effective field keeps the source that
set it. The merge is pure: layers in, a validated config (or errors) out.

:func:`merge` is the precedence itself and needs no models: operator tools use it to
derive what an instance runs from its spec and its own layers (``docs/store.md``)
without loading pydantic. :func:`resolve` is :func:`merge` plus validation.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, NamedTuple, get_args

from cbcontrol.config._fields import CONFIG_FIELDS
from cbcontrol.exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from pydantic import ValidationError

    from cbcontrol._labels import Selector
    from cbcontrol.config._models import BreakerConfig

__all__ = [
    "DEFAULT_PRESET",
    "PRECEDENCE",
    "Layer",
    "Merged",
    "PresetTable",
    "Resolved",
    "ScopedValues",
    "builtin_presets",
    "check_nulls",
    "config_errors",
    "field_source",
    "merge",
    "merge_presets",
    "null_rule",
    "nullable_fields",
    "resolve",
    "scoped_origin",
    "spec_layer",
    "spec_layers",
]

PRECEDENCE: Final = ("default", "preset", "code", "env", "file", "etcd")
"""Layer kinds, lowest precedence first. Nothing else in cbcontrol orders layers."""

DEFAULT_PRESET: Final = "default"
"""The preset of a breaker that names none and is named like none."""


@functools.cache
def nullable_fields() -> frozenset[str]:
    """Fields whose value may be null (a disabled threshold, no request timeout)."""
    from cbcontrol.config._models import BreakerConfig

    return frozenset(
        name
        for name, info in BreakerConfig.model_fields.items()
        if type(None) in get_args(info.annotation)
    )


@dataclass(frozen=True, slots=True)
class Layer:
    """
    One source's contribution to one breaker's config.

    Attributes:
        kind: One of :data:`PRECEDENCE` (``"env"``, ``"file"``, ``"etcd"``, ...).
        values: Field values this layer sets (validated, durations in seconds).
        sources: The provenance of each field in ``values``.
        preset: The preset this layer chooses, if it chooses one.
        preset_source: Where that choice came from.
    """

    kind: str
    values: Mapping[str, object] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    preset: str | None = None
    preset_source: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in PRECEDENCE:
            msg = f"layer kind must be one of {PRECEDENCE}, got {self.kind!r}"
            raise ValueError(msg)


PresetTable = dict[str, Layer]
"""Preset name -> its fields (as a ``"preset"`` layer, with provenance)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """
    A breaker's effective config and where each field came from.

    Attributes:
        config: The validated config.
        sources: Field -> provenance (``"default"``, ``"preset:payment"``,
            ``"env:PAYMENT_CB_MAX_FAILURES"``, ``"file:...#breakers.payment.x"``,
            ``"etcd:/cbcontrol/default/breakers/payment@42"``).
        preset: The preset the breaker started from.
    """

    config: BreakerConfig
    sources: Mapping[str, str]
    preset: str

    def explain(self) -> dict[str, tuple[object, str]]:
        """``{field: (value, source)}`` for every field."""
        return {f: (getattr(self.config, f), self.sources[f]) for f in self.sources}


class Merged(NamedTuple):
    """
    Layers merged, not validated: what :func:`merge` gives.

    Attributes:
        values: The fields some layer sets (the defaults are not included).
        sources: Field -> provenance, for every field (``"default"`` if none sets it).
        preset: The preset the breaker starts from.
    """

    values: dict[str, object]
    sources: dict[str, str]
    preset: str


def field_source(origin: str, field: str | None) -> str:
    """
    The provenance of one field of the document at ``origin``.

    Files address each field (``file:/x.yaml#breakers.payment.max_failures``); an etcd
    key holds the whole document at one revision, the provenance of all its fields.
    """
    if field is None or not origin.startswith(("file:", "code:")):
        return origin
    return f"{origin}.{field}" if "#" in origin else f"{origin}#{field}"


def builtin_presets() -> PresetTable:
    """The built-in presets as layers with ``preset:<name>`` provenance."""
    from cbcontrol.config._presets import BUILTIN_PRESETS

    return preset_table(
        {name: spec.config_values() for name, spec in BUILTIN_PRESETS.items()}
    )


def preset_table(presets: Mapping[str, Mapping[str, object]]) -> PresetTable:
    """Presets given as values (``{name: {field: value}}``) as a built-in table."""
    return {
        name: _preset_layer(values, f"preset:{name}")
        for name, values in presets.items()
    }


def merge_presets(
    base: PresetTable, extra: Mapping[str, tuple[Mapping[str, object], str]]
) -> PresetTable:
    """
    Extend or override ``base`` field by field with presets from a store.

    ``extra`` maps a preset name to the values it sets (validated, or as the library
    reads them) and the origin of its document (for provenance such as
    ``preset:payment (file:/x.yaml#presets.payment.max_failures)``).
    """
    table = dict(base)
    for name, (values, origin) in extra.items():
        below = table.get(name, Layer("preset"))
        sep = "." if origin.startswith("file:") else ""
        sources = {
            f: f"preset:{name} ({origin}{sep}{f if sep else ''})" for f in values
        }
        table[name] = Layer(
            "preset",
            {**below.values, **values},
            {**below.sources, **sources},
        )
    return table


def spec_layer(
    kind: str, values: Mapping[str, object], preset: object, origin: str
) -> Layer:
    """
    The layer a store's spec contributes, with per-field provenance.

    ``values`` are the config fields it sets, as the library reads them (validated,
    or normalized by :func:`~cbcontrol.config._fields.as_read`).
    """
    sources = {f: field_source(origin, f) for f in values}
    chosen = preset if isinstance(preset, str) and preset else None
    preset_source = field_source(origin, "preset") if chosen else None
    return Layer(kind, dict(values), sources, chosen, preset_source)


def scoped_origin(origin: str, selector: str) -> str:
    """The provenance of a scope of the document at ``origin``: ``...[zone=eu-1]``."""
    return f"{origin}[{selector}]"


class ScopedValues(NamedTuple):
    """
    A scope of a spec, as the merge needs it.

    Attributes:
        selector: Its selector, parsed.
        values: The config fields it sets (as the library reads them).
        preset: The preset it chooses, if any.
    """

    selector: Selector
    values: Mapping[str, object]
    preset: object = None


def spec_layers(
    kind: str,
    values: Mapping[str, object],
    preset: object,
    origin: str,
    *,
    scopes: Iterable[ScopedValues],
    labels: Mapping[str, str],
) -> list[Layer]:
    """
    A store spec's layers for an instance with ``labels``: unscoped, then its scopes.

    Each scope whose selector matches ``labels`` adds a layer above the spec's own
    fields, in the order of the document, so of two matching scopes the later wins
    (the merge keeps the order of layers of one kind).
    """
    layers = [spec_layer(kind, values, preset, origin)]
    for scope in scopes:
        if scope.selector.matches(labels):
            where = scoped_origin(origin, str(scope.selector))
            layers.append(spec_layer(kind, scope.values, scope.preset, where))
    return layers


def merge(breaker: str, layers: Iterable[Layer], presets: PresetTable) -> Merged:
    """
    Merge ``layers`` (any order; precedence is by kind) over the chosen preset.

    Raises:
        ConfigError: The chosen preset is not defined.
    """
    ordered = sorted(layers, key=lambda layer: PRECEDENCE.index(layer.kind))
    preset = _choose_preset(breaker, ordered, presets)
    values: dict[str, object] = {}
    sources = dict.fromkeys(CONFIG_FIELDS, "default")
    for layer in (presets[preset], *ordered):
        values.update(layer.values)
        sources.update(layer.sources)
    return Merged(values, sources, preset)


def resolve(
    breaker: str,
    layers: Iterable[Layer],
    presets: PresetTable | None = None,
) -> Resolved:
    """
    Merge ``layers`` (any order; precedence is by kind) over default and preset.

    Raises:
        ConfigError: The chosen preset is not defined, or the merged fields break a
            rule that spans fields (e.g. ``minimum_calls`` > ``window_size``).
    """
    from pydantic import ValidationError

    table = builtin_presets() if presets is None else presets
    layers = list(layers)
    merged = merge(breaker, layers, table)
    try:
        config = _validated(merged.values)
    except ValidationError as exc:
        message = " ".join(str(e["msg"]) for e in exc.errors())
        ordered = sorted(layers, key=lambda layer: PRECEDENCE.index(layer.kind))
        top = _culprit(message, [table[merged.preset], *ordered])
        raise config_errors(exc, breaker=breaker, source=lambda _: top)[0] from None
    return Resolved(config, merged.sources, merged.preset)


def _validated(values: Mapping[str, object]) -> BreakerConfig:
    """
    ``BreakerConfig.model_validate(values)``, shared between equal values.

    A fleet's breakers mostly resolve to a few distinct configs, and validation is
    most of a resolution's cost (``cbctl list`` over 5,000 specs resolves each). The
    key holds each value's type too: the model is strict, and ``1 == 1.0 == True``.
    """
    from cbcontrol.config._models import BreakerConfig

    try:
        key = tuple((f, type(v), v) for f, v in sorted(values.items()))
        hash(key)
    except TypeError:  # not a value a strict field takes: validation will say so
        return BreakerConfig.model_validate(values)
    return _validated_key(key)


@functools.lru_cache(maxsize=1024)
def _validated_key(key: tuple[tuple[str, type, object], ...]) -> BreakerConfig:
    from cbcontrol.config._models import BreakerConfig

    return BreakerConfig.model_validate({f: v for f, _, v in key})


def config_errors(
    exc: ValidationError,
    *,
    breaker: str | None,
    source: Callable[[str | None], str | None],
    kind: str = "breaker",
) -> list[ConfigError]:
    """
    Translate pydantic's errors into ConfigErrors naming field, value, source, rule.

    Args:
        exc: The validation error.
        breaker: The breaker (or preset) the document was for.
        source: Maps a field name (None for whole-document rules) to its provenance.
        kind: ``"breaker"`` or ``"preset"``, for the message.
    """
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        name = ".".join(loc) if loc else None
        rule = _rule(err)
        if err["type"] == "extra_forbidden" and len(loc) == 1:
            rule = _unknown_field_rule(loc[0])
        errors.append(
            ConfigError(
                rule,
                breaker=breaker if kind == "breaker" else f"preset {breaker}",
                field=name,
                value=err.get("input") if name is not None else None,
                source=source(loc[0] if loc else None),
            )
        )
    return errors


def check_nulls(values: Mapping[str, object]) -> str | None:
    """The first non-nullable field set to null, if any (null only clears optionals)."""
    for name, value in values.items():
        if value is None and name not in nullable_fields():
            return name
    return None


def null_rule() -> str:
    """The rule for a null in a non-nullable field."""
    return (
        f"cannot be null (only {', '.join(sorted(nullable_fields()))} can); remove "
        "the key to inherit the value from the layer below"
    )


# -- internals ---------------------------------------------------------------------


def _preset_layer(values: Mapping[str, object], source: str) -> Layer:
    return Layer("preset", dict(values), dict.fromkeys(values, source))


def _culprit(message: str, layers: list[Layer]) -> str | None:
    """The source to blame for a cross-field error.

    That is the highest layer that sets a field the message names, else the highest
    layer that sets any field.
    """
    for layer in reversed(layers):
        named = [s for f, s in layer.sources.items() if f in message]
        if named:
            return named[0]
    setting = [x for x in reversed(layers) if x.sources]
    return next(iter(setting[0].sources.values())) if setting else None


def _choose_preset(breaker: str, ordered: list[Layer], table: PresetTable) -> str:
    for layer in reversed(ordered):
        if layer.preset is not None:
            if layer.preset not in table:
                rule = (
                    f"names a preset that is not defined; defined presets: "
                    f"{', '.join(sorted(table))}"
                )
                raise ConfigError(
                    rule,
                    breaker=breaker,
                    field="preset",
                    value=layer.preset,
                    source=layer.preset_source,
                )
            return layer.preset
    return breaker if breaker in table else DEFAULT_PRESET


_RULES: Final[dict[str, Callable[[dict[str, object]], str]]] = {
    "int_parsing": lambda _: "must be an integer",
    "float_parsing": lambda _: "must be a number",
    "greater_than_equal": lambda c: f"must be >= {_num(c['ge'])}",
    "greater_than": lambda c: f"must be > {_num(c['gt'])}",
    "less_than_equal": lambda c: f"must be <= {_num(c['le'])}",
    "less_than": lambda c: f"must be < {_num(c['lt'])}",
    "literal_error": lambda c: f"must be one of {c['expected']}",
    "int_type": lambda _: "must be an integer",
    "float_type": lambda _: "must be a number",
    "string_type": lambda _: "must be a string",
    "model_type": lambda _: "must be a mapping",
    "dict_type": lambda _: "must be a mapping",
}


def _num(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _rule(err: Mapping[str, object]) -> str:
    ctx = err.get("ctx")
    make = _RULES.get(str(err["type"]))
    if make is not None:
        return make(ctx if isinstance(ctx, dict) else {})
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg[:1].lower() + msg[1:]


def _unknown_field_rule(name: str) -> str:
    known = (*CONFIG_FIELDS, "preset", "override", "reset_generation")
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"is not a known field; {hint}known fields: {', '.join(CONFIG_FIELDS)}"
