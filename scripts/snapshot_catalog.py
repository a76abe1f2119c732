"""Accept an intended schema change: rewrite nodes/catalog_snapshot.json from the installed diffusers
and this code (`tests/unit/nodes/test_snapshot.py` shows what changed), and record in
nodes/schema_history.json the earlier layout of every node whose saved shape changed, so canvas
workflows saved with it keep loading (as a deprecated node; adapters/versions.py).

    .venv/bin/python scripts/snapshot_catalog.py
"""

from __future__ import annotations

import logging
import sys


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[snapshot] %(message)s")
    from pack_import import import_pack

    import_pack()
    from comfyui_modular_diffusers.nodes import history, snapshot

    data = snapshot.live_snapshot()
    committed = snapshot.read_snapshot()
    if committed is not None:
        accepted, changed, gone = history.accept(
            snapshot.layouts(committed), snapshot.layouts(data), history.read_history()
        )
        history.write_history(accepted)
        for node_id in changed:
            version = len(accepted["nodes"][node_id]) + 1
            logging.info("%s: saved shape changed, now version %d (the old one stays loadable)", node_id, version)
        for node_id in gone:
            logging.warning("%s: removed; saved workflows using it will show a missing node", node_id)
    snapshot.write_snapshot(data)
    logging.info("wrote %s: %d nodes, diffusers %s", snapshot.SNAPSHOT, len(data["nodes"]), data["diffusers"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
