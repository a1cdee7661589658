"""JSON Schemas of the documents, with each field's docstring as its description."""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cbcontrol.config._models import BreakerSpec, ConfigDocument, InstanceStatus

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["SCHEMAS", "SchemaName", "json_schema"]

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
