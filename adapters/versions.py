"""Saved canvas workflows keep loading when a node's schema changes.

A canvas file saves a node's widget values by position and its links by slot index, so a node whose
inputs or outputs change shape (`NodeLayout.saved_shape`) would load old files with values in the
wrong widgets. The mechanism, the same for every node made by the adapter:

- Each earlier shape of a node stays registered as a hidden, deprecated node with exactly that
  layout: `<id>_v<k>` for version k of the same id, or the old id itself for a renamed node. It runs
  the current node with its values matched by name: inputs the current node no longer has are
  dropped (logged), new ones take their defaults, and outputs are returned by name.
- A node with earlier shapes has a version (1 + their number). The pack's web extension
  (`web/js/schema_versions.js`) stamps it on every such node it creates
  (`properties.mdiff_schema_version`) and, when a workflow loads, turns a node saved at an older
  version (no stamp: version 1) into that version's deprecated node, whose positions and slots match
  the file. The versions route serves the table it needs (`versions_table`).
- Where ComfyUI has node replacement (the newest releases), each deprecated node is also registered
  as replaceable by the current node, so the frontend offers the upgrade (`register_replacements`).

API-format prompts name their inputs, so they need none of this; a renamed node's old id still runs.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

from comfy_api.latest import io

from .layout import WIDGET, NodeLayout

logger = logging.getLogger(__name__)

VERSION_PROPERTY = "mdiff_schema_version"  # the node property the web extension stamps

# node id -> {"version": current version, "older": {version: deprecated node id}}, for the web extension.
_VERSIONS: dict[str, dict[str, Any]] = {}
# deprecated node id -> (its layout, the current node's layout), for ComfyUI's node replacement.
_REPLACEMENTS: dict[str, tuple[NodeLayout, NodeLayout]] = {}


def versioned_nodes(current: type[io.ComfyNode], previous: Sequence[NodeLayout]) -> list[type[io.ComfyNode]]:
    """The deprecated nodes that keep `current`'s earlier layouts loadable (oldest first), and
    `current`'s entry in the versions table. `current` is a node made by the adapter (it has a
    `LAYOUT`); a layout with another id is a node renamed to `current`."""
    layout: NodeLayout = current.LAYOUT
    own = [old for old in previous if old.node_id == layout.node_id]
    nodes = []
    older: dict[str, str] = {}
    for old in previous:
        version = own.index(old) + 1 if old in own else None
        node_id = f"{old.node_id}_v{version}" if version else old.node_id
        if version:
            older[str(version)] = node_id
        nodes.append(_deprecated_node(old, node_id, version, current))
        _REPLACEMENTS[node_id] = (nodes[-1].LAYOUT, layout)
    if own:
        _VERSIONS[layout.node_id] = {"version": len(own) + 1, "older": older}
    return nodes


def versions_table() -> dict[str, Any]:
    """What the web extension needs: each versioned node's current version and deprecated ids."""
    return {"property": VERSION_PROPERTY, "nodes": dict(_VERSIONS)}


def replacement_spec(old: NodeLayout, new: NodeLayout) -> dict[str, Any]:
    """ComfyUI's node-replacement descriptor (newest `io.NodeReplace` keywords) for swapping a
    deprecated node for the current one: widgets by old position, inputs and outputs by id."""
    new_inputs = {socket.id for socket in new.inputs}
    new_outputs = [socket.id for socket in new.outputs]
    return {
        "new_node_id": new.node_id,
        "old_node_id": old.node_id,
        "old_widget_ids": [socket.id for socket in old.inputs if socket.kind == WIDGET],
        "input_mapping": [{"new_id": s.id, "old_id": s.id} for s in old.inputs if s.id in new_inputs],
        "output_mapping": [
            {"new_idx": new_outputs.index(s.id), "old_idx": index}
            for index, s in enumerate(old.outputs)
            if s.id in new_outputs
        ],
    }


async def register_replacements() -> int:
    """Register every deprecated node as replaceable where ComfyUI has node replacement (newest
    releases: `ComfyAPI().node_replacement`, `io.NodeReplace`); nothing on ComfyUI 0.3.75.
    Returns how many were registered. A failure is logged, never raised."""
    try:
        from comfy_api.latest import ComfyAPI

        service = getattr(ComfyAPI(), "node_replacement", None)
        node_replace = getattr(io, "NodeReplace", None)
        if service is None or node_replace is None or not _REPLACEMENTS:
            return 0
        accepted = set(inspect.signature(node_replace).parameters)
        for old, new in _REPLACEMENTS.values():
            spec = {key: value for key, value in replacement_spec(old, new).items() if key in accepted}
            result = service.register(node_replace(**spec))
            if inspect.isawaitable(result):
                await result
        return len(_REPLACEMENTS)
    except Exception as error:  # a newer API we do not know: the deprecated nodes still work
        logger.warning("Modular Diffusers: node replacements not registered: %s", error)
        return 0


def _deprecated_node(
    old: NodeLayout, node_id: str, version: int | None, current: type[io.ComfyNode]
) -> type[io.ComfyNode]:
    new: NodeLayout = current.LAYOUT
    label = f"version {version}" if version else "old name"
    layout = NodeLayout(
        node_id,
        f"{new.display_name} ({label})",
        new.category,
        f"Kept so that saved workflows with the {label} of '{new.display_name}' ({new.node_id}) load and "
        f"run; it runs the current node. Replace it with '{new.display_name}' when convenient.\n\n"
        f"{new.description}",
        old.inputs,
        old.outputs,
    )
    new_inputs = {socket.id: socket for socket in new.inputs}
    defaults = {s.id: s.options["default"] for s in new.inputs if s.kind == WIDGET and "default" in s.options}
    new_outputs = [socket.id for socket in new.outputs]

    def define_schema(cls) -> io.Schema:
        return layout.schema(deprecated=True)

    def execute(cls, **values: Any) -> io.NodeOutput:
        dropped = sorted(name for name, value in values.items() if name not in new_inputs and value is not None)
        if dropped:
            logger.warning(
                "node %s (%s): inputs %s are gone from %s and are ignored",
                cls.hidden.unique_id if cls.hidden else "?",
                node_id,
                ", ".join(dropped),
                new.node_id,
            )
        kept = {**defaults, **{name: value for name, value in values.items() if name in new_inputs}}
        result: io.NodeOutput = current.execute.__func__(cls, **kept)
        outputs = list(result.args)
        by_id = {output_id: outputs[i] for i, output_id in enumerate(new_outputs) if i < len(outputs)}
        return io.NodeOutput(*(by_id.get(socket.id) for socket in old.outputs), ui=result.ui)

    return type(
        node_id,
        (io.ComfyNode,),
        {
            "define_schema": classmethod(define_schema),
            "execute": classmethod(execute),
            "LAYOUT": layout,
            "__doc__": layout.description,
        },
    )
