"""Running a block node (`BlockRun`): inputs from sockets, state and defaults, errors that name the
node, the block and the input, and outputs in ComfyUI's types."""

from __future__ import annotations

import pytest
import torch
from comfyui_modular_diffusers.adapters.hints import MELLON
from comfyui_modular_diffusers.adapters.plan import NodePlan
from comfyui_modular_diffusers.adapters.run import BlockExecutionError, BlockRun, NodeInputError, private_copy
from comfyui_modular_diffusers.adapters.sockets import SHOW_COMMON
from comfyui_modular_diffusers.nodes import examples
from diffusers.modular_pipelines import InputParam, ModularPipelineBlocks, OutputParam, PipelineState
from toy_blocks import Scale, ScaleOrNegate


def run(block, mapping=None, **values):
    plan = NodePlan.from_block(private_copy(block), **({"mapping": mapping} if mapping else {}), policy=SHOW_COMMON)
    state, *outputs = BlockRun(node_id="Test_Node", display_name="Test", plan=plan)(values, "1")
    return state, outputs


def test_run_forks_and_resolves_values():
    incoming = PipelineState()
    incoming.set("latents", torch.ones(2))
    state, (latents,) = run(Scale(), state=incoming)
    assert torch.equal(latents, torch.full((2,), 2.0))  # from state, factor from default
    assert torch.equal(incoming.get("latents"), torch.ones(2))  # the input state is untouched
    assert state is not incoming and torch.equal(state.get("latents"), latents)
    _, (latents,) = run(Scale(), state=incoming, latents=torch.ones(1), factor=3.0)
    assert torch.equal(latents, torch.full((1,), 3.0))  # sockets win over the state


def test_missing_required_input_names_node_block_and_parameter():
    with pytest.raises(NodeInputError, match=r"node 1 'Test' \(Test_Node\): block Scale needs input 'latents'"):
        run(Scale())


def test_non_finite_numbers_are_refused_by_name():
    with pytest.raises(NodeInputError, match=r"input 'factor' is nan"):
        run(Scale(), latents=torch.ones(1), factor=float("nan"))


def test_block_errors_are_wrapped():
    with pytest.raises(BlockExecutionError, match=r"node 1 'Test' \(Test_Node\): block Scale failed: TypeError"):
        run(Scale(), latents="not a tensor", factor=None)


def test_auto_blocks_pick_a_branch_from_the_state():
    _, (latents,) = run(ScaleOrNegate(), latents=torch.ones(1))
    assert latents.item() == 2.0
    _, (latents,) = run(ScaleOrNegate(), latents=torch.ones(1), negate=True)
    assert latents.item() == -1.0


def test_sequential_and_loop_examples_run():
    _, outputs = run(examples.input_then_image_encoder(), prompt="a\nb", num_images_per_prompt=3)
    assert outputs[0] == 12 and outputs[1].shape == (1, 4, 64, 64)
    loop = examples.LoopWrapper.from_blocks_dict({"a": examples.LoopBlock(), "b": examples.LoopBlock()})
    _, (x,) = run(loop, examples.EXAMPLE_MAPPING, num_steps=10, x=0)
    assert x == 20


class RunsOutOfMemory(Scale):
    def __call__(self, components, state):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def test_out_of_memory_reaches_comfyui_unwrapped():
    # ComfyUI's executor unloads every model and shows its OOM tip only for the OOM exception itself.
    with pytest.raises(torch.OutOfMemoryError):
        run(RunsOutOfMemory(), latents=torch.ones(1))


class Pick(ModularPipelineBlocks):
    @property
    def inputs(self):
        return [InputParam("mode", type_hint=str, default="fast", metadata={MELLON: {"options": ["fast", "slow"]}})]

    @property
    def intermediate_outputs(self):
        return [OutputParam("mode", type_hint=str)]

    def __call__(self, components, state):
        return components, state


def test_a_dropdown_value_must_be_one_of_its_options():
    # ComfyUI 0.3.75 does not check a V3 dropdown's value itself.
    assert run(Pick(), mode="slow")[1] == ["slow"]
    with pytest.raises(NodeInputError, match=r"input 'mode' is 'medium'; give one of \['fast', 'slow'\]"):
        run(Pick(), mode="medium")


def test_audio_and_video_outputs_in_comfyui_types():
    class Decode(ModularPipelineBlocks):
        @property
        def intermediate_outputs(self):
            return [OutputParam("audio", type_hint=torch.Tensor), OutputParam("videos")]

        def __call__(self, components, state):
            state.set("audio", torch.zeros(1, 2, 80))
            state.set("videos", torch.rand(1, 3, 2, 8, 8))  # [B, C, F, H, W]
            state.set("sampling_rate", 8000)
            state.set("fps", 12)
            return components, state

    _, (audio, frames, video) = run(Decode())
    assert audio["sample_rate"] == 8000 and audio["waveform"].shape == (1, 2, 80)
    assert frames.shape == (2, 8, 8, 3)
    components = video.get_components()
    assert components.frame_rate == 12 and components.audio is audio
