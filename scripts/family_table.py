"""The README's table of model families, generated from the catalog (never edited by hand).

    .venv/bin/python scripts/family_table.py           # rewrite the table in README.md
    .venv/bin/python scripts/family_table.py --check   # exit 1 when README.md is out of date

The table sits between the `families:start` and `families:end` markers of README.md.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
START, END = "<!-- families:start -->", "<!-- families:end -->"


def table() -> str:
    from pack_import import import_pack

    import_pack()
    from comfyui_modular_diffusers.nodes import catalog, families

    entries = catalog.catalog_entries()
    by_family = collections.defaultdict(list)
    for entry in entries:
        by_family[entry.family].append(entry)
    lines = [
        f"{len(entries)} generated nodes over {len(by_family)} families (diffusers {catalog.diffusers_version()}).",
        "",
        "| family | category | blocks classes | nodes | workflows | status |",
        "|---|---|---|---|---|---|",
    ]
    for family, items in sorted(by_family.items()):
        spec = families.family_spec(family)
        classes = sorted({item.class_name for item in items})
        workflows = sorted({item.name for item in items if item.kind == "workflow"})
        status = f"runs end to end: {spec.proven}" if spec.proven else "schema-tested only"
        if spec.batched_guidance:
            status += "; batched guidance by default"
        lines.append(
            f"| `{family}` | {spec.label} | {', '.join(classes)} | {len(items)} | "
            f"{', '.join(workflows) or '(whole class)'} | {status} |"
        )
    return "\n".join(lines)


def updated_readme() -> str:
    """README.md's text with the table regenerated."""
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    return pattern.sub(lambda _: f"{START}\n{table()}\n{END}", README.read_text(encoding="utf-8"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = README.read_text(encoding="utf-8")
    new = updated_readme()
    if args.check:
        if new != text:
            print("README.md's family table is out of date: run scripts/family_table.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
