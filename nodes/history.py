"""The pack's record of earlier node shapes (`schema_history.json`), kept so saved canvas workflows
load after a node changes (see `adapters/versions.py` for the mechanism).

`scripts/snapshot_catalog.py` keeps it: when it accepts a snapshot in which a node's saved shape
(input ids, types and kinds in order; output ids and types in order) differs from the committed
one, the committed layout is added here as that node's previous version. A tooltip, description,
default or bound change is not a new version: saved files do not depend on it.

Format: {"format": 1, "nodes": {node id: [layout, ...]}}, each node's earlier layouts oldest first. A
layout whose `node_id` is another id records a rename (the old id stays loadable).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from comfy_api.latest import io

from ..adapters.layout import NodeLayout
from ..adapters.versions import SchemaVersions

logger = logging.getLogger(__name__)

HISTORY = Path(__file__).with_name("schema_history.json")
FORMAT = 1


def read_history(path: Path = HISTORY) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"format": FORMAT, "nodes": {}}
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a format-{FORMAT} schema history")
    return data


def write_history(data: dict[str, Any], path: Path = HISTORY) -> None:
    path.write_text(json_text(data), encoding="utf-8")


def json_text(data: dict[str, Any]) -> str:
    """Indented, keys sorted: a changed record is a readable diff (the history and the snapshot)."""
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def deprecated_nodes(
    nodes: Iterable[type[io.ComfyNode]], versions: SchemaVersions, path: Path = HISTORY
) -> list[type[io.ComfyNode]]:
    """The deprecated nodes for every node in `nodes` that has earlier shapes in the history (recorded
    in `versions`, the pack's table for the web extension)."""
    history = read_history(path)["nodes"]
    extra: list[type[io.ComfyNode]] = []
    for node in nodes:
        layout = getattr(node, "LAYOUT", None)
        if layout is not None and history.get(layout.node_id):
            extra += versions.versioned_nodes(node, [NodeLayout.from_json(item) for item in history[layout.node_id]])
    return extra


def accept(
    committed: list[dict[str, Any]], live: list[dict[str, Any]], history: dict[str, Any]
) -> tuple[dict[str, Any], list[str], list[str]]:
    """The history after accepting `live` node layouts over `committed` ones (layout JSON, as in
    the catalog snapshot), the ids whose saved shape changed (each gets a version), and the ids
    that are gone (saved workflows using them will show a missing node)."""
    history = copy.deepcopy(history)
    before = {item["node_id"]: item for item in committed}
    after = {item["node_id"]: item for item in live}
    changed = []
    for node_id in sorted(set(before) & set(after)):
        if _shape(before[node_id]) != _shape(after[node_id]):
            history["nodes"].setdefault(node_id, []).append(_layout_json(before[node_id]))
            changed.append(node_id)
    return history, changed, sorted(set(before) - set(after))


def _layout_json(item: dict[str, Any]) -> dict[str, Any]:
    return NodeLayout.from_json(item).to_json()  # without the snapshot's extra keys (family)


def _shape(item: dict[str, Any]) -> Any:
    return NodeLayout.from_json(item).saved_shape()
