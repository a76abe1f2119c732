"""The record of earlier node shapes (nodes/schema_history.json): what accepting a snapshot records, and
the deprecated nodes it gives at start-up."""

from __future__ import annotations

import dataclasses

from comfyui_modular_diffusers.adapters.layout import WIDGET, NodeLayout, SocketLayout
from comfyui_modular_diffusers.adapters.versions import SchemaVersions
from comfyui_modular_diffusers.nodes import history
from comfyui_modular_diffusers.nodes.examples import EXAMPLE_NODES

NODE = next(node for node in EXAMPLE_NODES if node.LAYOUT.node_id == "MDiff_ExampleInputBlock")
NEW_WIDGET = SocketLayout("strength", "FLOAT", WIDGET, True, {"default": 1.0})


def _with_inputs(layout: NodeLayout, inputs) -> NodeLayout:
    return dataclasses.replace(layout, inputs=tuple(inputs))


def test_accept_records_the_old_layout_when_the_saved_shape_changes():
    old = NODE.LAYOUT
    new = _with_inputs(old, [*old.inputs[:1], NEW_WIDGET, *old.inputs[1:]])
    retitled = dataclasses.replace(old, node_id="MDiff_Retitled", description="only the text changed")
    committed = [old.to_json(), retitled.to_json(), {**old.to_json(), "node_id": "MDiff_Gone"}]
    live = [new.to_json(), dataclasses.replace(retitled, display_name="Renamed in the menu").to_json()]
    accepted, changed, gone = history.accept(committed, live, {"format": 1, "nodes": {}})
    assert changed == [old.node_id] and gone == ["MDiff_Gone"]
    assert accepted["nodes"] == {old.node_id: [old.to_json()]}  # a display change is not a new version
    again, changed, _ = history.accept([new.to_json()], [old.to_json()], accepted)
    assert changed == [old.node_id] and len(again["nodes"][old.node_id]) == 2  # version 3 now


def test_the_history_gives_deprecated_nodes(tmp_path):
    old = NODE.LAYOUT
    earlier = _with_inputs(old, [s for s in old.inputs if s.id != "num_images_per_prompt"])
    renamed = dataclasses.replace(earlier, node_id="MDiff_ExampleOldInputBlock")
    path = tmp_path / "history.json"
    history.write_history({"format": 1, "nodes": {old.node_id: [earlier.to_json(), renamed.to_json()]}}, path)
    versions = SchemaVersions()
    nodes = history.deprecated_nodes([NODE, *EXAMPLE_NODES[:1]], versions, path)
    assert {node.LAYOUT.node_id for node in nodes} == {"MDiff_ExampleInputBlock_v1", "MDiff_ExampleOldInputBlock"}
    assert versions.table()["nodes"][old.node_id]["version"] == 2


def test_the_history_committed_with_the_pack_is_readable():
    data = history.read_history()
    for node_id, layouts in data["nodes"].items():
        assert layouts and all(NodeLayout.from_json(item).saved_shape() for item in layouts), node_id
