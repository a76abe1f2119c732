"""Node classes made from blocks of every kind, run in-process (the server tests cover the rest)."""

from __future__ import annotations

import pytest
import torch
from comfy_api.latest import io
from comfyui_modular_diffusers.adapters.factory import BlockNodeDefinition, make_block_node
from comfyui_modular_diffusers.adapters.plan import BlockExecutionError, NodeInputError, NodePlan
from comfyui_modular_diffusers.nodes import examples
from diffusers.modular_pipelines import (
    AutoPipelineBlocks,
    InputParam,
    ModularPipelineBlocks,
    OutputParam,
    PipelineState,
)


class Scale(ModularPipelineBlocks):
    @property
    def inputs(self):
        return [
            InputParam("latents", type_hint=torch.Tensor, required=True, description="what to scale"),
            InputParam("factor", type_hint=float, default=2.0),
        ]

    @property
    def intermediate_outputs(self):
        return [OutputParam("latents", type_hint=torch.Tensor)]

    def __call__(self, components, state):
        block_state = self.get_block_state(state)
        block_state.latents = block_state.latents * block_state.factor
        self.set_block_state(state, block_state)
        return components, state


class Negate(Scale):
    def __call__(self, components, state):
        block_state = self.get_block_state(state)
        block_state.latents = -block_state.latents
        self.set_block_state(state, block_state)
        return components, state


class ScaleOrNegate(AutoPipelineBlocks):
    block_classes = [Negate, Scale]
    block_names = ["negate", "scale"]
    block_trigger_inputs = ["negate", None]


def run(plan: NodePlan, block, **values):
    return plan.run(values, pipeline=block.init_pipeline(), node_label="node 1")


def test_schema_of_a_leaf_block():
    node = make_block_node(BlockNodeDefinition("Test_Scale", Scale(), "Scale", "tests"))
    assert issubclass(node, io.ComfyNode)
    schema = node.GET_SCHEMA()
    inputs = {i.id: i for i in schema.inputs}
    assert list(inputs) == ["state", "latents", "factor"]
    assert inputs["latents"].io_type == "MDIFF_TENSOR" and inputs["latents"].optional
    assert inputs["latents"].tooltip == "what to scale"
    assert inputs["factor"].default == 2.0
    assert [o.display_name for o in schema.outputs] == ["state", "latents"]
    assert len({i.id for i in schema.inputs} | {o.id for o in schema.outputs}) == 5  # ids disjoint


def test_run_forks_and_resolves_values():
    plan = NodePlan.from_block(Scale())
    incoming = PipelineState()
    incoming.set("latents", torch.ones(2))
    state, (latents,) = run(plan, Scale(), state=incoming)
    assert torch.equal(latents, torch.full((2,), 2.0))  # from state, factor from default
    assert torch.equal(incoming.get("latents"), torch.ones(2))  # the input state is untouched
    _, (latents,) = run(plan, Scale(), state=incoming, latents=torch.ones(1), factor=3.0)
    assert torch.equal(latents, torch.full((1,), 3.0))  # sockets win over the state


def test_missing_required_input_names_node_block_and_parameter():
    with pytest.raises(NodeInputError, match=r"node 1: block Scale needs input 'latents'"):
        run(NodePlan.from_block(Scale()), Scale())


def test_block_errors_are_wrapped():
    with pytest.raises(BlockExecutionError, match=r"node 1: block Scale failed: TypeError"):
        run(NodePlan.from_block(Scale()), Scale(), latents="not a tensor", factor=None)


def test_auto_blocks_pick_a_branch_from_the_state():
    block = ScaleOrNegate()
    plan = NodePlan.from_block(block)
    assert [s.name for s in plan.inputs] == ["latents", "factor", "negate"]
    _, (latents,) = run(plan, block, latents=torch.ones(1))
    assert latents.item() == 2.0
    _, (latents,) = run(plan, block, latents=torch.ones(1), negate=True)
    assert latents.item() == -1.0


def test_sequential_and_loop_examples():
    sequential = examples.input_then_image_encoder()
    plan = NodePlan.from_block(sequential)
    assert [s.name for s in plan.inputs] == ["prompt", "num_images_per_prompt", "image"]
    state, outputs = run(plan, sequential, prompt="a\nb", num_images_per_prompt=3)
    assert outputs[0] == 12 and outputs[1].shape == (1, 4, 64, 64)
    loop = examples.LoopWrapper.from_blocks_dict({"a": examples.LoopBlock(), "b": examples.LoopBlock()})
    plan = NodePlan.from_block(loop, examples.EXAMPLE_MAPPING)
    assert {s.name: s.spec.io_type for s in plan.inputs} == {"num_steps": "INT", "x": "INT"}
    _, (x,) = run(plan, loop, num_steps=10, x=0)
    assert x == 20


def test_reading_inputs_does_not_flip_required_on_shared_params():
    block = ScaleOrNegate()
    NodePlan.from_block(block)
    assert block.sub_blocks["scale"].inputs[0].required is True


class RunsOutOfMemory(Scale):
    def __call__(self, components, state):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_out_of_memory_reaches_comfyui_unwrapped():
    # ComfyUI's executor unloads every model and shows its OOM tip only for the OOM exception itself.
    with pytest.raises(torch.OutOfMemoryError):
        run(NodePlan.from_block(RunsOutOfMemory()), RunsOutOfMemory(), latents=torch.ones(1))


def test_components_bundle_is_sized_by_its_weights():
    from types import SimpleNamespace

    from comfyui_modular_diffusers.adapters.components import ComponentsBundle

    module = torch.nn.Linear(16, 8)
    bundle = ComponentsBundle(SimpleNamespace(components={"a": module, "b": module, "scheduler": object()}), "x")
    tensors = bundle._comfy_cache_tensors()
    assert sum(t.numel() * t.element_size() for t in tensors) == (16 * 8 + 8) * 4  # shared modules once
