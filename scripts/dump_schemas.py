"""Print every node schema of the pack as JSON (id -> inputs/outputs), for comparing two versions.

.venv/bin/python scripts/dump_schemas.py > schemas.json
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import conftest  # noqa: E402  (imports the pack the way ComfyUI does)


async def main() -> None:
    extension = await conftest._import_pack().comfy_entrypoint()
    out = {}
    for node in await extension.get_node_list():
        info = node.GET_NODE_INFO_V1()
        out[info["name"]] = {
            "input": info["input"],
            "input_order": info.get("input_order"),
            "output": info["output"],
            "output_name": info["output_name"],
            "output_tooltips": info.get("output_tooltips"),
            "description": info.get("description"),
            "category": info["category"],
            "display_name": info["display_name"],
        }
    json.dump(out, sys.stdout, indent=1, sort_keys=True, default=str)


asyncio.run(main())
