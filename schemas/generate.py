"""
Write the JSON Schemas of cbcontrol's documents, or check that they are current.

    python schemas/generate.py          # rewrite schemas/*.json and the catalog
    python schemas/generate.py --check  # exit 1 if any file is stale (CI)

The schemas come from the pydantic models (``cbcontrol.config.json_schema``, which
``cbctl schema`` prints too), so editors (via the ``yaml-language-server`` line in the
example files) validate exactly what cbcontrol accepts. The same models give
``cbcontrol/config/_catalog.py``: the config fields as plain data (kinds, bounds,
units, help), which cbctl's options and every reader that must not load pydantic use.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import get_args

from cbcontrol.config import SchemaName, json_schema
from cbcontrol.config._schema import catalog_text

HERE = Path(__file__).parent
CATALOG = HERE.parent / "cbcontrol" / "config" / "_catalog.py"


def render(name: SchemaName) -> str:
    """The schema file's exact text."""
    return json.dumps(json_schema(name), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write or check every schema; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--check", action="store_true", help="fail if files are stale")
    args = parser.parse_args(argv)
    stale = []
    outputs = [(HERE / f"{name}.json", render(name)) for name in get_args(SchemaName)]
    outputs.append((CATALOG, catalog_text()))
    for path, text in outputs:
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(
            f"stale: {', '.join(stale)}; run `python schemas/generate.py`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
