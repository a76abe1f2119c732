"""Rewrite nodes/catalog_snapshot.json from the installed diffusers and this code (accepts an
intended schema change; `tests/unit/test_snapshot.py` shows what changed).

    .venv/bin/python scripts/snapshot_catalog.py
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[snapshot] %(message)s")
    sys.path.insert(0, str(REPO / "tests"))
    import conftest  # noqa: F401  (imports the pack the way ComfyUI does)
    from comfyui_modular_diffusers.nodes import snapshot

    data = snapshot.live_snapshot()
    snapshot.write_snapshot(data)
    logging.info("wrote %s: %d nodes, diffusers %s", snapshot.SNAPSHOT, len(data["nodes"]), data["diffusers"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
