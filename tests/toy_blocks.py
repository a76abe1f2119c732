"""Small blocks the adapter unit tests share (a leaf, a conditional, and a leaf whose params are shared
objects, as many real blocks' are)."""

from __future__ import annotations

import torch
from diffusers.modular_pipelines import AutoPipelineBlocks, InputParam, ModularPipelineBlocks, OutputParam


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


# One object for every read of SharedScale.inputs, like a block that keeps its params in a class constant.
SHARED_LATENTS = InputParam("latents", type_hint=torch.Tensor, required=True, description="what to scale")


class SharedScale(Scale):
    @property
    def inputs(self):
        return [SHARED_LATENTS, InputParam("factor", type_hint=float, default=2.0)]


class MaybeScale(AutoPipelineBlocks):
    """A conditional block with no default branch: it may be skipped, so diffusers marks every input
    of its branch not required, on the branch's own param objects."""

    block_classes = [SharedScale]
    block_names = ["scale"]
    block_trigger_inputs = ["scale_it"]
