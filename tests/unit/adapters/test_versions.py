"""Earlier node shapes as deprecated nodes, the versions table for the web extension, and ComfyUI's node
replacement. (The canvas side runs in the real frontend: tests/server/test_schema_versions_server.py.)"""

from __future__ import annotations

import asyncio
import dataclasses

import torch
from comfyui_modular_diffusers.adapters.layout import WIDGET, NodeLayout, SocketLayout
from comfyui_modular_diffusers.adapters.versions import SchemaVersions, replacement_spec
from comfyui_modular_diffusers.nodes.examples import EXAMPLE_NODES

NODE = next(node for node in EXAMPLE_NODES if node.LAYOUT.node_id == "MDiff_ExampleInputBlock")
NEW_WIDGET = SocketLayout("strength", "FLOAT", WIDGET, True, {"default": 1.0})


def _with_inputs(layout: NodeLayout, inputs) -> NodeLayout:
    return dataclasses.replace(layout, inputs=tuple(inputs))


def earlier_shapes() -> tuple[NodeLayout, NodeLayout]:
    old = NODE.LAYOUT
    earlier = _with_inputs(old, [s for s in old.inputs if s.id != "num_images_per_prompt"])
    return earlier, dataclasses.replace(earlier, node_id="MDiff_ExampleOldInputBlock")


def test_earlier_shapes_become_deprecated_nodes_and_enter_the_table():
    versions = SchemaVersions()
    earlier, renamed = earlier_shapes()
    nodes = {node.LAYOUT.node_id: node for node in versions.versioned_nodes(NODE, [earlier, renamed])}
    assert set(nodes) == {"MDiff_ExampleInputBlock_v1", "MDiff_ExampleOldInputBlock"}
    for node in nodes.values():
        info = node.GET_NODE_INFO_V1()
        assert info["deprecated"] is True
        assert "num_images_per_prompt" not in info["input"].get("optional", {})
        assert info["output_name"] == NODE.GET_NODE_INFO_V1()["output_name"]
    assert "(version 1)" in nodes["MDiff_ExampleInputBlock_v1"].GET_NODE_INFO_V1()["display_name"]
    table = versions.table()
    assert table["property"] == "mdiff_schema_version"
    assert table["nodes"] == {NODE.LAYOUT.node_id: {"version": 2, "older": {"1": "MDiff_ExampleInputBlock_v1"}}}
    assert SchemaVersions().table()["nodes"] == {}  # one registry per pack load: nothing leaks


def test_a_deprecated_node_runs_the_current_one_with_values_by_name():
    earlier, _ = earlier_shapes()
    (old_node,) = SchemaVersions().versioned_nodes(NODE, [earlier])
    state, batch_size = old_node.execute(prompt="a\nb\nc", gone_input=5).args
    assert batch_size == 3  # num_images_per_prompt, gone from the old shape, took the current default (1)
    assert state.get("batch_size") == 3 and not isinstance(batch_size, torch.Tensor)


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


class RecordingService:
    """Stands for newest ComfyUI's node-replacement service: records what is registered."""

    def __init__(self, awaitable: bool = False):
        self.registered = []
        self.awaitable = awaitable

    def register(self, replacement):
        self.registered.append(replacement)
        return asyncio.sleep(0) if self.awaitable else None


def node_replace(new_node_id, old_node_id, old_widget_ids, input_mapping):  # no output_mapping: an older keyword set
    return {"new": new_node_id, "old": old_node_id, "widgets": old_widget_ids, "inputs": input_mapping}


def test_each_deprecated_node_is_registered_as_replaceable():
    versions = SchemaVersions()
    earlier, renamed = earlier_shapes()
    versions.versioned_nodes(NODE, [earlier, renamed])
    for awaitable in (False, True):
        service = RecordingService(awaitable)
        assert asyncio.run(versions.register_replacements(service, node_replace)) == 2
        assert sorted(item["old"] for item in service.registered) == [
            "MDiff_ExampleInputBlock_v1",
            "MDiff_ExampleOldInputBlock",
        ]
        assert {item["new"] for item in service.registered} == {NODE.LAYOUT.node_id}
        assert all("prompt" in item["widgets"] for item in service.registered)


def test_replacement_without_the_service_or_with_a_failing_one_registers_nothing():
    """ComfyUI 0.3.75 has neither `ComfyAPI().node_replacement` nor `io.NodeReplace`."""
    versions = SchemaVersions()
    versions.versioned_nodes(NODE, [earlier_shapes()[0]])
    assert asyncio.run(versions.register_replacements()) == 0

    class Broken:
        def register(self, replacement):
            raise RuntimeError("a newer API")

    assert asyncio.run(versions.register_replacements(Broken(), node_replace)) == 0
    assert asyncio.run(SchemaVersions().register_replacements(RecordingService(), node_replace)) == 0
