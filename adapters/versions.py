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
  the file. The versions route serves the table it needs (`SchemaVersions.table`).
- Where ComfyUI has node replacement (the newest releases), each deprecated node is also registered
  as replaceable by the current node, so the frontend offers the upgrade (`register_replacements`).

API-format prompts name their inputs, so they need none of this; a renamed node's old id still runs.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Sequence
from typing import Any

from comfy_api.latest import io

from .factory import node_class
from .layout import WIDGET, NodeLayout

logger = logging.getLogger(__name__)

VERSION_PROPERTY = "mdiff_schema_version"  # the node property the web extension stamps


class SchemaVersions:
    """The earlier shapes registered in one load of the pack (its own nodes' and other packs' through
    `api.versioned_nodes`): the versions table the web extension reads, and the replacements offered
    to ComfyUI's node replacement."""

    def __init__(self) -> None:
        # node id -> {"version": current version, "older": {version: deprecated node id}}
        self.versions: dict[str, dict[str, Any]] = {}
        # deprecated node id -> (its layout, the current node's layout)
        self.replacements: dict[str, tuple[NodeLayout, NodeLayout]] = {}

    def versioned_nodes(self, current: type[io.ComfyNode], previous: Sequence[NodeLayout]) -> list[type[io.ComfyNode]]:
        """The deprecated nodes that keep `current`'s earlier layouts loadable (oldest first), and
        `current`'s entry in the versions table. `current` is a node made by the adapter (it has a
        `LAYOUT` and a `RUN`); a layout with another id is a node renamed to `current`."""
        layout: NodeLayout = current.LAYOUT
        own = [old for old in previous if old.node_id == layout.node_id]
        nodes = []
        older: dict[str, str] = {}
        for old in previous:
            version = own.index(old) + 1 if old in own else None
            node_id = f"{old.node_id}_v{version}" if version else old.node_id
            if version:
                older[str(version)] = node_id
            nodes.append(deprecated_node(old, node_id, version, current))
            self.replacements[node_id] = (nodes[-1].LAYOUT, layout)
        if own:
            self.versions[layout.node_id] = {"version": len(own) + 1, "older": older}
        return nodes

    def table(self) -> dict[str, Any]:
        """What the web extension needs: each versioned node's current version and deprecated ids."""
        return {"property": VERSION_PROPERTY, "nodes": dict(self.versions)}

    async def register_replacements(self, service: Any = None, node_replace: Any = None) -> int:
        """Register every deprecated node as replaceable where ComfyUI has node replacement (newest
        releases: `ComfyAPI().node_replacement` and `io.NodeReplace`, looked up when not given); nothing
        on ComfyUI 0.3.75. Returns how many were registered. A failure is logged, never raised."""
        try:
            service = service or _replacement_service()
            node_replace = node_replace or getattr(io, "NodeReplace", None)
            if service is None or node_replace is None or not self.replacements:
                return 0
            accepted = set(inspect.signature(node_replace).parameters)
            for old, new in self.replacements.values():
                spec = {key: value for key, value in replacement_spec(old, new).items() if key in accepted}
                result = service.register(node_replace(**spec))
                if inspect.isawaitable(result):
                    await result
            return len(self.replacements)
        except Exception as error:  # a newer API we do not know: the deprecated nodes still work
            logger.warning("Modular Diffusers: node replacements not registered: %s", error)
            return 0


def _replacement_service() -> Any:
    from comfy_api.latest import ComfyAPI

    return getattr(ComfyAPI(), "node_replacement", None)


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


def deprecated_node(
    old: NodeLayout, node_id: str, version: int | None, current: type[io.ComfyNode]
) -> type[io.ComfyNode]:
    """A hidden node with `old`'s layout under `node_id` that runs `current` with its values matched by name."""
    new: NodeLayout = current.LAYOUT
    label = f"version {version}" if version else "old name"
    layout = NodeLayout(
        node_id=node_id,
        display_name=f"{new.display_name} ({label})",
        category=new.category,
        description=f"Kept so that saved workflows with the {label} of '{new.display_name}' ({new.node_id}) load "
        f"and run; it runs the current node. Replace it with '{new.display_name}' when convenient.\n\n"
        f"{new.description}",
        inputs=old.inputs,
        outputs=old.outputs,
    )
    run = functools.partial(_run_as_current, current=current, old=old, node_id=node_id)
    schema = functools.partial(layout.schema, deprecated=True)
    return node_class(node_id, schema, run, LAYOUT=layout, __doc__=layout.description)


def _run_as_current(
    values: dict[str, Any], unique_id: Any, *, current: type[io.ComfyNode], old: NodeLayout, node_id: str
) -> list[Any]:
    new: NodeLayout = current.LAYOUT
    new_inputs = {socket.id for socket in new.inputs}
    dropped = sorted(name for name, value in values.items() if name not in new_inputs and value is not None)
    if dropped:
        logger.warning(
            "node %s (%s): inputs %s are gone from %s and are ignored",
            unique_id or "?",
            node_id,
            ", ".join(dropped),
            new.node_id,
        )
    defaults = {s.id: s.options["default"] for s in new.inputs if s.kind == WIDGET and "default" in s.options}
    outputs = current.RUN(
        {**defaults, **{name: value for name, value in values.items() if name in new_inputs}}, unique_id
    )
    by_id = {socket.id: value for socket, value in zip(new.outputs, outputs, strict=False)}
    return [by_id.get(socket.id) for socket in old.outputs]
