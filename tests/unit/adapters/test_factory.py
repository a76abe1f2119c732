"""Node classes made from blocks: their V3 schema, their run, and the classes made from layouts alone."""

from __future__ import annotations

import torch
from comfy_api.latest import io
from comfyui_modular_diffusers.adapters.factory import (
    BlockNodeDefinition,
    make_block_node,
    make_deferred_node,
    node_class,
)
from diffusers.modular_pipelines import PipelineState
from toy_blocks import Scale


def scale_node(node_id: str = "Test_Scale") -> type[io.ComfyNode]:
    return make_block_node(BlockNodeDefinition(node_id=node_id, block=Scale(), display_name="Scale", category="tests"))


def test_schema_of_a_leaf_block():
    node = scale_node()
    assert issubclass(node, io.ComfyNode)
    schema = node.GET_SCHEMA()
    inputs = {i.id: i for i in schema.inputs}
    assert list(inputs) == ["state", "latents", "factor"]
    assert inputs["latents"].io_type == "MDIFF_TENSOR" and inputs["latents"].optional
    assert inputs["latents"].tooltip == "what to scale"
    assert inputs["factor"].default == 2.0
    assert [o.display_name for o in schema.outputs] == ["state", "latents"]
    assert len({i.id for i in schema.inputs} | {o.id for o in schema.outputs}) == 5  # ids disjoint


def test_execute_runs_the_block_on_a_fork_of_the_state():
    incoming = PipelineState()
    incoming.set("latents", torch.ones(2))
    result = scale_node().execute(state=incoming, factor=3.0)
    state, latents = result.args
    assert torch.equal(latents, torch.full((2,), 3.0)) and state is not incoming
    assert torch.equal(incoming.get("latents"), torch.ones(2))


def test_the_node_runs_its_own_copy_of_the_block():
    block = Scale()
    node = make_block_node(BlockNodeDefinition(node_id="Test_Copy", block=block, display_name="C", category="t"))
    assert node.PLAN.block is not block


def test_a_deferred_node_builds_its_block_node_on_first_run():
    built = []

    def build():
        built.append(scale_node())
        return built[-1]

    layout = scale_node().LAYOUT
    deferred = make_deferred_node(layout, build)
    assert deferred.GET_SCHEMA().node_id == "Test_Scale" and not built  # the schema needs no block
    _, latents = deferred.execute(latents=torch.ones(1)).args
    _, again = deferred.execute(latents=torch.ones(1)).args
    assert latents.item() == again.item() == 2.0 and len(built) == 1


def test_every_generated_class_runs_through_its_run_function():
    calls = []

    def run(values, unique_id):
        calls.append((values, unique_id))
        return ["out"]

    schema = scale_node().LAYOUT.schema
    node = node_class("Test_Plain", schema, run, EXTRA=1)
    assert node.EXTRA == 1 and node.RUN is run
    assert node.execute(a=1).args == ("out",) and calls == [({"a": 1}, None)]
