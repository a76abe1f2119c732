"""The catalog snapshot: every node's schema (id, inputs with types, defaults, bounds and order,
outputs), committed as `catalog_snapshot.json`: the generated nodes' layouts under "nodes", the
hand-written nodes under "hand_written" (a layout where the node has one, else ComfyUI's own node
info, with option lists that depend on the machine, like the loader's model list, left out).

At start-up the catalog registers its nodes from the snapshot when it was written for the installed
diffusers version: no family module is imported and no block is planned until a node first runs
(start-up stays fast however many families diffusers has). A family the snapshot does not know (a
newer diffusers) is generated live; another diffusers version makes every node live. The snapshot
is also the record of what each node looks like: `tests/unit/test_snapshot.py` fails with a readable
diff when code or a diffusers upgrade changes any node, and `scripts/snapshot_catalog.py` accepts an
intended change by rewriting it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from comfy_api.latest import io

from ..adapters.factory import make_block_node, make_deferred_node
from ..adapters.layout import NodeLayout
from . import catalog
from .hand_written import HAND_WRITTEN_NODES
from .history import json_text

logger = logging.getLogger(__name__)

SNAPSHOT = Path(__file__).with_name("catalog_snapshot.json")
FORMAT = 1


def live_snapshot() -> dict[str, Any]:
    """The snapshot the installed diffusers and this code give now."""
    nodes = catalog.catalog_nodes()
    families = {entry.node_id: entry.family for entry in catalog.catalog_entries()}
    return {
        "format": FORMAT,
        "diffusers": catalog.diffusers_version(),
        "families": catalog.family_names(),
        "nodes": [{"family": families[node.LAYOUT.node_id], **node.LAYOUT.to_json()} for node in nodes],
        "hand_written": [hand_written_record(node) for node in HAND_WRITTEN_NODES],
    }


def layouts(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node layout of a snapshot: the generated nodes and the hand-written ones that have one."""
    return [*data["nodes"], *(item for item in data.get("hand_written", []) if "node_id" in item)]


def hand_written_record(node: type[io.ComfyNode]) -> dict[str, Any]:
    """A hand-written node's schema as data: its layout, or ComfyUI's node info for the node
    (without `python_module`, and with the options of its `MACHINE_OPTIONS` inputs left out)."""
    layout = getattr(node, "LAYOUT", None)
    if layout is not None:
        return layout.to_json()
    info = {key: value for key, value in node.GET_NODE_INFO_V1().items() if key != "python_module"}
    for name in getattr(node, "MACHINE_OPTIONS", ()):
        for group in info["input"].values():
            if name in group:
                group[name] = [group[name][0], {**group[name][1], "options": "<depends on the machine>"}]
    return info


def read_snapshot(path: Path = SNAPSHOT) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        logger.info("Modular Diffusers: no usable catalog snapshot (%s); building every node live", error)
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def snapshot_text(data: dict[str, Any]) -> str:
    return json_text(data)


def write_snapshot(data: dict[str, Any], path: Path = SNAPSHOT) -> None:
    path.write_text(snapshot_text(data), encoding="utf-8")


def catalog_node_classes(path: Path = SNAPSHOT) -> list[type[io.ComfyNode]]:
    """The catalog's node classes for start-up: deferred ones from the snapshot where it is valid
    for the installed diffusers, live ones for everything else."""
    data = read_snapshot(path)
    families = catalog.family_names()
    if data is None or data.get("diffusers") != catalog.diffusers_version():
        if data is not None:
            logger.info(
                "Modular Diffusers: catalog snapshot is for diffusers %s, installed is %s; building nodes live",
                data.get("diffusers"),
                catalog.diffusers_version(),
            )
        return catalog.catalog_nodes()
    known = [family for family in families if family in data["families"]]
    nodes: list[type[io.ComfyNode]] = [
        make_deferred_node(NodeLayout.from_json(item), _builder(item["node_id"], item["family"]))
        for item in data["nodes"]
        if item["family"] in known
    ]
    new = [family for family in families if family not in known]
    if new:
        logger.info("Modular Diffusers: families not in the catalog snapshot, built live: %s", ", ".join(new))
        nodes += catalog.catalog_nodes(families=new)
    return nodes


def _builder(node_id: str, family: str):
    def build() -> type[io.ComfyNode]:
        stages = catalog.guider_stages(family)
        for entry in catalog.entries_for_family(family):
            if entry.node_id == node_id:
                return make_block_node(catalog.definition_for(entry, guider_stages=stages.get(entry.class_name)))
        raise RuntimeError(f"{node_id}: the installed diffusers has no such block any more (family {family!r})")

    return build
