"""The examples of the Modular Diffusers guides (SequentialPipelineBlocks, LoopSequentialPipelineBlocks)
ported to diffusers 0.42.1, as nodes in the "examples" category.

The port is minimal: blocks subclass `ModularPipelineBlocks` (`PipelineBlock` is gone), `batch_size`
moved from `intermediate_inputs` to `inputs` (merged in 0.42), and `from_blocks_dict` gets instances
(the loop version keeps classes as classes otherwise). The blocks are otherwise as written in the
guides, including their simulated image encoding.
"""

from __future__ import annotations

import torch
from diffusers.modular_pipelines import (
    InputParam,
    InsertableDict,
    LoopSequentialPipelineBlocks,
    ModularPipelineBlocks,
    OutputParam,
    SequentialPipelineBlocks,
)

from ..adapters.factory import BlockNodeDefinition, make_block_node
from ..adapters.sockets import DEFAULT_MAPPING, SHOW_COMMON
from ..adapters.spec import NameRule
from .naming import ROOT_CATEGORY


class InputBlock(ModularPipelineBlocks):
    @property
    def inputs(self):
        return [
            InputParam(name="prompt", type_hint=list, description="list of text prompts"),
            InputParam(name="num_images_per_prompt", type_hint=int, description="number of images per prompt"),
        ]

    @property
    def intermediate_outputs(self):
        return [OutputParam(name="batch_size", description="calculated batch size")]

    @property
    def description(self):
        return "A block that determines batch_size based on the number of prompts and num_images_per_prompt argument."

    def __call__(self, components, state):
        block_state = self.get_block_state(state)
        batch_size = len(block_state.prompt)
        block_state.batch_size = batch_size * block_state.num_images_per_prompt
        self.set_block_state(state, block_state)
        return components, state


class ImageEncoderBlock(ModularPipelineBlocks):
    @property
    def inputs(self):
        return [
            InputParam(name="image", type_hint="PIL.Image", description="raw input image to process"),
            InputParam(name="batch_size", type_hint=int),
        ]

    @property
    def intermediate_outputs(self):
        return [OutputParam(name="image_latents", description="latents representing the image")]

    @property
    def description(self):
        return "Encode raw image into its latent presentation"

    def __call__(self, components, state):
        block_state = self.get_block_state(state)
        # Simulate processing the image
        # This will change the state of the image from a PIL image to a tensor for all blocks
        block_state.image = torch.randn(1, 3, 512, 512)
        block_state.batch_size = block_state.batch_size * 2
        block_state.image_latents = torch.randn(1, 4, 64, 64)
        self.set_block_state(state, block_state)
        return components, state


def input_then_image_encoder() -> SequentialPipelineBlocks:
    blocks_dict = InsertableDict()
    blocks_dict["input"] = InputBlock()
    blocks_dict["image_encoder"] = ImageEncoderBlock()
    return SequentialPipelineBlocks.from_blocks_dict(blocks_dict)


class LoopWrapper(LoopSequentialPipelineBlocks):
    model_name = "test"

    @property
    def description(self):
        return "I'm a loop!!"

    @property
    def loop_inputs(self):
        return [InputParam(name="num_steps")]

    @torch.no_grad()
    def __call__(self, components, state):
        block_state = self.get_block_state(state)
        # Loop structure - can be customized to your needs
        for i in range(block_state.num_steps):
            # loop_step executes all registered blocks in sequence
            components, block_state = self.loop_step(components, block_state, i=i)
        self.set_block_state(state, block_state)
        return components, state


class LoopBlock(ModularPipelineBlocks):
    model_name = "test"

    @property
    def inputs(self):
        return [InputParam(name="x")]

    @property
    def intermediate_outputs(self):
        # outputs produced by this block
        return [OutputParam(name="x")]

    @property
    def description(self):
        return "I'm a block used inside the `LoopWrapper` class"

    def __call__(self, components, block_state, i: int):
        block_state.x += 1
        return components, block_state


# The loop example's parameters carry no type hints; these rules give them widgets.
EXAMPLE_MAPPING = DEFAULT_MAPPING.extended(
    {
        "num_steps": NameRule(
            "INT", {"default": 10, "min": 0, "max": 10000, "step": 1}, description="Number of loop iterations."
        ),
        "x": NameRule(
            "INT",
            {"default": 0, "min": -(2**31), "max": 2**31 - 1, "step": 1},
            description="The value each loop block adds 1 to.",
        ),
    }
)

CATEGORY = f"{ROOT_CATEGORY}/examples"


def _example(node_id: str, block: ModularPipelineBlocks, display_name: str, **fields) -> BlockNodeDefinition:
    # The examples were released with the catalog's show policy.
    return BlockNodeDefinition(
        node_id=node_id,
        block=block,
        display_name=display_name,
        category=CATEGORY,
        socket_policy=SHOW_COMMON,
        **fields,
    )


EXAMPLE_DEFINITIONS = [
    _example("MDiff_ExampleInputBlock", InputBlock(), "Example: Input Block"),
    _example(
        "MDiff_ExampleImageEncoderBlock",
        ImageEncoderBlock(),
        "Example: Image Encoder Block",
        inputs=["image", "batch_size"],  # released with an INT socket for batch_size
    ),
    _example(
        "MDiff_ExampleSequentialBlocks",
        input_then_image_encoder(),
        "Example: Input + Image Encoder (sequential)",
        description="SequentialPipelineBlocks of the Input Block then the Image Encoder Block: "
        "batch_size flows from the first to the second inside one node.",
    ),
    _example(
        "MDiff_ExampleLoop",
        LoopWrapper.from_blocks_dict({"block1": LoopBlock()}),
        "Example: Loop (one block)",
        description="LoopWrapper with one LoopBlock: adds 1 to x on each of num_steps iterations.",
        mapping=EXAMPLE_MAPPING,
    ),
    _example(
        "MDiff_ExampleLoopTwoBlocks",
        LoopWrapper.from_blocks_dict({"block1": LoopBlock(), "block2": LoopBlock()}),
        "Example: Loop (two blocks)",
        description="LoopWrapper with two LoopBlocks: adds 2 to x on each of num_steps iterations.",
        mapping=EXAMPLE_MAPPING,
    ),
]

EXAMPLE_NODES = [make_block_node(definition) for definition in EXAMPLE_DEFINITIONS]
