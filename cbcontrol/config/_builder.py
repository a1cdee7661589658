"""The fluent config builder of the article, over the one precedence of ``_merge``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Self

from pydantic import ValidationError

from cbcontrol._limits import MAX_FILE_BYTES, DocumentError
from cbcontrol.config._env import EnvSource
from cbcontrol.config._merge import (
    Layer,
    PresetTable,
    Resolved,
    ScopedValues,
    builtin_presets,
    check_nulls,
    config_errors,
    field_source,
    merge_presets,
    null_rule,
    resolve,
    spec_layer,
    spec_layers,
)
from cbcontrol.config._models import BreakerSpec, PresetSpec
from cbcontrol.config._yamldoc import parse_document
from cbcontrol.exceptions import ConfigError, StoreError

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

    from cbcontrol.config._models import BreakerConfig

__all__ = [
    "ConfigBuilder",
    "generation_of",
    "layer_from_spec",
    "layers_from_spec",
    "scopes_of",
    "validate_preset",
    "validate_spec",
]


class ConfigBuilder:
    """
    Build one breaker's config from layers, in the fixed precedence of DESIGN.md §4.

    The order of the calls does not matter: each call fills its layer, and layers are
    merged ``default < preset < env < file < etcd``, field by field::

        config = (
            ConfigBuilder("payment")
            .with_preset("payment")
            .from_environment("PAYMENT_CB")
            .from_file("cbcontrol.yaml")
            .build()
        )

    Args:
        name: The breaker's name (chooses its ``PAYMENT_CB_`` prefix and its default
            preset).
        environ: Environment to read instead of :data:`os.environ`.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self, name: str = "default", *, environ: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self._environ = environ
        self._layers: dict[str, Layer] = {}
        self._presets: PresetTable = builtin_presets()

    def with_preset(self, preset: str) -> Self:
        """Start from ``preset`` (``payment``, ``analytics``, ``user-profile``, ...)."""
        self._layers["code-preset"] = Layer(
            "default", preset=preset, preset_source="code:with_preset"
        )
        return self

    def from_environment(self, prefix: str | None = None) -> Self:
        """
        Add the env layer: ``<prefix>_<FIELD>`` and ``CB_<FIELD>`` variables.

        Raises:
            ConfigError: A variable is unknown or holds a bad value.
        """
        layer, errors = EnvSource(self._environ).layer(self.name, prefix=prefix)
        if errors:
            raise errors[0]
        self._layers["env"] = layer
        return self

    def from_file(self, path: str | os.PathLike[str]) -> Self:
        """
        Add the YAML file layer (presets and ``breakers.<name>``), read once.

        Raises:
            ConfigError: The file or this breaker's entry is invalid.
            StoreError: The file cannot be read.
        """
        where = str(Path(path).absolute())
        try:
            with Path(path).open("rb") as file:
                raw = file.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            msg = f'file "{where}" cannot be read ({exc.strerror or exc})'
            raise StoreError(msg, store=f"file:{where}") from exc
        try:
            parsed = parse_document(raw, where)
        except DocumentError as exc:
            raise ConfigError(
                str(exc), breaker=self.name, source=f"file:{where}"
            ) from None
        presets: dict[str, tuple[Mapping[str, object], str]] = {}
        for entry in parsed.entries:
            origin = f"file:{where}#{entry.kind}.{entry.name}"
            if entry.kind == "presets" and entry.data is not None:
                preset = validate_preset(entry.name, entry.data, origin)
                presets[entry.name] = (preset.config_values(), origin)
            elif entry.kind == "breakers" and entry.name == self.name:
                if entry.error is not None or entry.data is None:
                    rule = entry.error or "is not a valid entry"
                    raise ConfigError(rule, breaker=self.name, source=origin)
                spec = validate_spec(self.name, entry.data, origin)
                self._layers["file"] = layer_from_spec("file", spec, origin)
        self._presets = merge_presets(self._presets, presets)
        return self

    def with_values(self, kind: str, /, **values: object) -> Self:
        """Set fields directly as layer ``kind`` (``"file"``, ``"etcd"``, ...)."""
        spec = validate_spec(self.name, values, f"code:{kind}")
        self._layers[kind] = layer_from_spec(kind, spec, f"code:{kind}")
        return self

    def resolve(self) -> Resolved:
        """The effective config with provenance."""
        layers = list(self._layers.values())
        return resolve(self.name, layers, self._presets)

    def build(self) -> BreakerConfig:
        """The effective, validated config."""
        return self.resolve().config

    def explain(self) -> dict[str, tuple[object, str]]:
        """``{field: (value, source)}`` for every field."""
        return self.resolve().explain()


def validate_spec(breaker: str, data: Mapping[str, object], origin: str) -> BreakerSpec:
    """
    Validate one breaker document from a store.

    Raises:
        ConfigError: For the first bad field, naming field, value, source and rule.
    """
    try:
        spec = BreakerSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise config_errors(
            exc, breaker=breaker, source=lambda f: field_source(origin, f)
        )[0] from None
    for where, values in (
        (origin, spec.config_values()),
        *(
            (f"{origin}.scopes.{i}", scope.config_values())
            for i, scope in enumerate(spec.scopes or ())
        ),
    ):
        bad = check_nulls(values)
        if bad is not None:
            raise ConfigError(
                null_rule(),
                breaker=breaker,
                field=bad,
                value=None,
                source=field_source(where, bad),
            )
    return spec


def validate_preset(name: str, data: Mapping[str, object], origin: str) -> PresetSpec:
    """
    Validate one preset document from a store.

    Raises:
        ConfigError: For the first bad field.
    """
    try:
        spec = PresetSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise config_errors(
            exc, breaker=name, source=lambda f: field_source(origin, f), kind="preset"
        )[0] from None
    bad = check_nulls(spec.config_values())
    if bad is not None:
        raise ConfigError(
            null_rule(),
            breaker=f"preset {name}",
            field=bad,
            value=None,
            source=field_source(origin, bad),
        )
    return spec


def generation_of(spec: BreakerSpec) -> int:
    """
    The spec's generation: what cbctl wrote, or 0 for a document written by hand.

    A document without one is told apart by its digest (:func:`document_digest`), which
    every instance reports with the generation it applied.
    """
    return 0 if spec.generation is None else spec.generation


def layer_from_spec(kind: str, spec: BreakerSpec, origin: str) -> Layer:
    """The layer a validated spec's own (unscoped) fields contribute."""
    return spec_layer(kind, spec.config_values(), spec.preset, origin)


def scopes_of(spec: BreakerSpec) -> list[ScopedValues]:
    """A validated spec's scopes, as the merge takes them."""
    from cbcontrol._labels import Selector

    return [
        ScopedValues(Selector.parse(s.selector), s.config_values(), s.preset)
        for s in spec.scopes or ()
    ]


def layers_from_spec(
    kind: str, spec: BreakerSpec, origin: str, labels: Mapping[str, str]
) -> list[Layer]:
    """The layers a validated spec gives an instance with ``labels`` (with scopes)."""
    return spec_layers(
        kind,
        spec.config_values(),
        spec.preset,
        origin,
        scopes=scopes_of(spec),
        labels=labels,
    )
