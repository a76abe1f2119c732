"""Earlier node shapes: recorded when a snapshot is accepted, registered as deprecated nodes, served to
the web extension, and described for ComfyUI's node replacement. (The canvas side runs in the real
frontend: tests/test_schema_versions_server.py.)"""

from __future__ import annotations

import asyncio
import dataclasses

from comfyui_modular_diffusers.adapters.layout import WIDGET, NodeLayout, SocketLayout
from comfyui_modular_diffusers.adapters.versions import register_replacements, replacement_spec, versions_table
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


def test_earlier_shapes_become_deprecated_nodes(tmp_path):
    old = NODE.LAYOUT
    earlier = _with_inputs(old, [s for s in old.inputs if s.id != "num_images_per_prompt"])
    renamed = dataclasses.replace(earlier, node_id="MDiff_ExampleOldInputBlock")
    path = tmp_path / "history.json"
    history.write_history({"format": 1, "nodes": {old.node_id: [earlier.to_json(), renamed.to_json()]}}, path)

    nodes = {node.LAYOUT.node_id: node for node in history.deprecated_nodes([NODE, *EXAMPLE_NODES[:1]], path)}
    assert set(nodes) == {"MDiff_ExampleInputBlock_v1", "MDiff_ExampleOldInputBlock"}
    for node in nodes.values():
        info = node.GET_NODE_INFO_V1()
        assert info["deprecated"] is True
        assert "num_images_per_prompt" not in info["input"].get("optional", {})
        assert info["output_name"] == NODE.GET_NODE_INFO_V1()["output_name"]
    assert "(version 1)" in nodes["MDiff_ExampleInputBlock_v1"].GET_NODE_INFO_V1()["display_name"]
    table = versions_table()
    assert table["property"] == "mdiff_schema_version"
    assert table["nodes"][old.node_id] == {"version": 2, "older": {"1": "MDiff_ExampleInputBlock_v1"}}
    assert "MDiff_ExampleOldInputBlock" not in table["nodes"]  # a renamed id loads as it is


def test_the_history_committed_with_the_pack_is_readable():
    data = history.read_history()
    for node_id, layouts in data["nodes"].items():
        assert layouts and all(NodeLayout.from_json(item).saved_shape() for item in layouts), node_id


def test_replacement_spec_maps_widgets_inputs_and_outputs_by_id():
    old = NODE.LAYOUT
    new = dataclasses.replace(
        _with_inputs(old, [NEW_WIDGET, *old.inputs]), outputs=tuple(reversed(old.outputs)), node_id="MDiff_New"
    )
    spec = replacement_spec(old, new)
    assert spec["new_node_id"] == "MDiff_New" and spec["old_node_id"] == old.node_id
    assert spec["old_widget_ids"] == [s.id for s in old.inputs if s.kind == WIDGET]
    assert spec["input_mapping"] == [{"new_id": s.id, "old_id": s.id} for s in old.inputs]
    last = len(old.outputs) - 1
    assert spec["output_mapping"] == [{"new_idx": last - i, "old_idx": i} for i in range(len(old.outputs))]


def test_node_replacement_is_feature_detected():
    """ComfyUI 0.3.75 has no node replacement: nothing is registered and nothing fails (on the newest
    ComfyUI each deprecated node is registered with `replacement_spec`'s descriptor)."""
    from comfy_api.latest import ComfyAPI, io

    assert not hasattr(ComfyAPI(), "node_replacement") and not hasattr(io, "NodeReplace")
    assert asyncio.run(register_replacements()) == 0
