"""The fluent config builder of the article, over the one precedence of ``_merge``."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Self

from pydantic import ValidationError

from cbcontrol.config._layout import field_source
from cbcontrol.config._merge import (
    NULL_RULE,
    Layer,
    PresetTable,
    Resolved,
    builtin_presets,
    check_nulls,
    config_errors,
    merge_presets,
    resolve,
)
from cbcontrol.config._models import BreakerSpec, PresetSpec
from cbcontrol.config.sources._env import EnvSource
from cbcontrol.exceptions import ConfigError

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

    from cbcontrol.config._models import BreakerConfig
    from cbcontrol.config.sources._base import SourceSnapshot

__all__ = [
    "ConfigBuilder",
    "generation_of",
    "layer_from_spec",
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
        from cbcontrol.config.sources._file import FileSource

        source = FileSource(path)
        try:
            self.from_snapshot(source.read(), kind="file")
        finally:
            source.close()
        return self

    def from_snapshot(self, snapshot: SourceSnapshot, *, kind: str) -> Self:
        """Add a live store's snapshot as layer ``kind`` (``"file"`` or ``"etcd"``)."""
        if snapshot.error is not None:
            raise ConfigError(snapshot.error, breaker=self.name, source=snapshot.source)
        presets: dict[str, tuple[PresetSpec, str]] = {}
        for (entry_kind, name), entry in snapshot.entries.items():
            if entry_kind != "presets" or entry.data is None:
                continue
            presets[name] = (
                validate_preset(name, entry.data, entry.origin),
                entry.origin,
            )
        self._presets = merge_presets(self._presets, presets)
        mine = snapshot.entries.get(("breakers", self.name))
        if mine is not None:
            if mine.error is not None:
                raise ConfigError(mine.error, breaker=self.name, source=mine.origin)
            spec = validate_spec(self.name, mine.data or {}, mine.origin)
            self._layers[kind] = layer_from_spec(kind, spec, mine.origin)
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
    bad = check_nulls(spec.config_values())
    if bad is not None:
        raise ConfigError(
            NULL_RULE,
            breaker=breaker,
            field=bad,
            value=None,
            source=field_source(origin, bad),
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
            NULL_RULE,
            breaker=f"preset {name}",
            field=bad,
            value=None,
            source=field_source(origin, bad),
        )
    return spec


def generation_of(spec: BreakerSpec) -> int:
    """
    The spec's generation; derived from the content when the document has none.

    cbctl bumps ``generation`` on every write. A hand-edited file need not carry it:
    every instance then derives the same number from the content, without
    coordination, so acknowledgement still works.
    """
    if spec.generation is not None:
        return spec.generation
    raw = spec.model_dump_json(exclude={"generation"}).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=4).digest(), "big")


def layer_from_spec(kind: str, spec: BreakerSpec, origin: str) -> Layer:
    """The layer a validated spec contributes, with per-field provenance."""
    values = spec.config_values()
    sources = {f: field_source(origin, f) for f in values}
    preset_source = field_source(origin, "preset") if spec.preset else None
    return Layer(kind, values, sources, spec.preset, preset_source)
