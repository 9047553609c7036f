"""Derive the compact Bot API schema used by the sandbox stand-in (``bot/sandbox/botapi_schema.json``).

The input is the machine-readable Bot API reference (``api.json``: ``methods`` and ``types``, each with
``fields`` of ``name`` / ``types`` / ``required``).  The output keeps only what a validator needs:

* ``methods[name]``: ``params`` (name -> ``{"types": [...], "required": bool}``) and ``returns``;
* ``types[name]``: ``fields`` (same shape as ``params``) and, for abstract types, ``subtypes``;
* a field's ``const`` where the reference fixes its value (``type`` of ``BotCommandScopeChat`` must be
  ``chat``, ``status`` of ``ChatMemberLeft`` is always ``left``), so unions can be told apart.

Descriptions are dropped. The output is deterministic (sorted keys), so re-running on the same input
gives a byte-identical file.  Run from the repository root::

    python tools/derive_botapi_schema.py [path/to/api.json] [-o bot/sandbox/botapi_schema.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = Path("../shared/telegram-bot-api/api.json")
DEFAULT_OUTPUT = REPO / "bot" / "sandbox" / "botapi_schema.json"

# 'Type of the media, must be photo' / 'Type of the message origin, always "user"'
_CONST = re.compile(r',\s*(?:always|must be)\s+["“]?([a-z0-9_]+)["”]?\.?$')
_DISCRIMINATORS = frozenset({"type", "status", "source"})


def _field(raw: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"types": list(raw["types"]), "required": bool(raw["required"])}
    if raw["name"] in _DISCRIMINATORS and raw["types"] == ["String"]:
        match = _CONST.search(str(raw.get("description", "")).strip())
        if match:
            spec["const"] = match.group(1)
    return spec


def derive(api: dict[str, Any]) -> dict[str, Any]:
    """Return the compact schema for a parsed ``api.json``."""
    methods = {
        name: {
            "params": {f["name"]: _field(f) for f in method.get("fields", [])},
            "returns": list(method.get("returns", [])),
        }
        for name, method in api["methods"].items()
    }
    types: dict[str, Any] = {}
    for name, type_ in api["types"].items():
        entry: dict[str, Any] = {"fields": {f["name"]: _field(f) for f in type_.get("fields", [])}}
        if type_.get("subtypes"):
            entry["subtypes"] = list(type_["subtypes"])
        types[name] = entry
    return {"version": api.get("version", ""), "methods": methods, "types": types}


def render(schema: dict[str, Any]) -> str:
    """Serialise deterministically (sorted keys, one-space indent, trailing newline)."""
    return json.dumps(schema, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE, help="api.json to read")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="schema file to write")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the output file is not up to date instead of writing"
    )
    args = parser.parse_args(argv)

    with args.source.open(encoding="utf-8") as fh:
        text = render(derive(json.load(fh)))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date; re-run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    schema = json.loads(text)
    print(f"wrote {args.output}: {len(schema['methods'])} methods, {len(schema['types'])} types")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
