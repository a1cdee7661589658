"""JSON Schemas of the documents, with each field's docstring as its description."""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cbcontrol.config._models import BreakerSpec, ConfigDocument, InstanceStatus

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["SCHEMAS", "SchemaName", "catalog", "catalog_text", "json_schema"]

SchemaName = Literal["config-file", "breaker-spec", "instance-status"]
SCHEMAS: dict[str, type[BaseModel]] = {
    "config-file": ConfigDocument,
    "breaker-spec": BreakerSpec,
    "instance-status": InstanceStatus,
}
"""The documents that have a schema, by name."""
_BASE = "https://cbcontrol.invalid/schemas"


def json_schema(name: SchemaName) -> dict[str, Any]:
    """
    The JSON Schema of ``config-file``, ``breaker-spec`` or ``instance-status``.

    Field docstrings in the models become descriptions here, when asked for, rather
    than at import time (where reading them costs every process ~45 ms).

    .. versionadded:: 0.1.0
    """
    schema = SCHEMAS[name].model_json_schema()
    docs = _field_docs()
    shared = docs.get("BreakerConfig", {})  # partial configs document no fields
    models = {schema.get("title", ""): schema, **schema.get("$defs", {})}
    for title, model in models.items():
        own = docs.get(title, {})
        for field, prop in model.get("properties", {}).items():
            text = own.get(field) or shared.get(field)
            if text and "description" not in prop:
                prop["description"] = text
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "$id": f"{_BASE}/{name}.json",
    }


@functools.cache
def _field_docs() -> dict[str, dict[str, str]]:
    """``{class: {field: docstring}}``: the string after each field in _models.py."""
    tree = ast.parse(Path(__file__).with_name("_models.py").read_text())
    docs: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        fields = docs.setdefault(node.name, {})
        for before, after in zip(node.body, node.body[1:], strict=False):
            if (
                isinstance(before, ast.AnnAssign)
                and isinstance(before.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                fields[before.target.id] = " ".join(after.value.value.split())
    return docs


# -- the field catalog: config fields as plain data (cbcontrol/config/_catalog.py) --

CATALOG_HEADER = '''"""
The config fields as plain data: GENERATED from ``BreakerConfig``, do not edit.

``python schemas/generate.py`` writes this file from the models (and ``--check``
fails when it is stale, as for the JSON Schemas). Readers that must not load pydantic
(cbctl's start, the status layout, the breaker core) take field names, kinds, bounds,
units and help from here: see :mod:`cbcontrol.config._fields`.
"""

from __future__ import annotations

from typing import Any, Final

FIELDS: Final[tuple[dict[str, Any], ...]] = (
'''


def _walk_field(annotation: Any, metadata: list[Any], out: dict[str, Any]) -> None:
    """Collect kind, nullability, choices and bounds from a field's annotation."""
    import types
    from typing import Annotated, Literal, Union, get_args, get_origin

    from cbcontrol.config._duration import parse_duration

    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        _walk_field(base, [*metadata, *extra], out)
    elif origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            _walk_field(arg, metadata, out)
    elif annotation is type(None):
        out["nullable"] = True
    elif origin is Literal:
        out["kind"] = "choice"
        out["choices"] = [str(c) for c in get_args(annotation)]
    else:
        duration = any(getattr(m, "func", None) is parse_duration for m in metadata)
        kind = {int: "int", float: "float"}.get(annotation, "text")
        out["kind"] = "duration" if duration else kind
        for item in metadata:
            for inner in [item, *getattr(item, "metadata", [])]:
                for bound in ("gt", "ge", "lt", "le"):
                    value = getattr(inner, bound, None)
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        out[bound] = value


def catalog() -> list[dict[str, Any]]:
    """Every config field of ``BreakerConfig`` as plain data, in declaration order."""
    from cbcontrol.config._models import BreakerConfig

    docs = _field_docs().get("BreakerConfig", {})
    fields = []
    for name, info in BreakerConfig.model_fields.items():
        data: dict[str, Any] = {"name": name, "nullable": False, "choices": []}
        _walk_field(info.annotation, list(info.metadata), data)
        unit = None
        if data["kind"] == "duration":
            unit = "seconds"
        elif data["kind"] == "float" and data.get("le") == 100:  # noqa: PLR2004
            unit = "percent"
        fields.append(
            {
                "name": name,
                "kind": data["kind"],
                "nullable": data["nullable"],
                "default": info.default,
                "choices": tuple(data["choices"]),
                "bounds": {b: data[b] for b in ("gt", "ge", "lt", "le") if b in data},
                "unit": unit,
                "help": " ".join(
                    (info.description or docs.get(name, "")).replace("``", "").split()
                ),
            }
        )
    return fields


def _literal(value: object) -> str:
    """``value`` as Python source in ``ruff format``'s style (double quotes)."""
    import json

    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple):
        items = ", ".join(_literal(v) for v in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    if isinstance(value, dict):
        items = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    return repr(value)


def catalog_text() -> str:
    """The exact text of ``cbcontrol/config/_catalog.py``."""
    lines = [CATALOG_HEADER]
    for field in catalog():
        lines.append("    {\n")
        lines += [f"        {_literal(k)}: {_literal(v)},\n" for k, v in field.items()]
        lines.append("    },\n")
    lines.append(")\n")
    return "".join(lines)
