"""What a family's decoders are asked for (`FamilySpec.output_type`, fixed on every node whose block takes
`output_type`): float arrays by default, 8-bit PIL images for Qwen-Image, whose inpainting decoder accepts
nothing else in diffusers 0.42.1. Every node of a family gets the same, so a block graph and its one-node
workflow give the same pixels."""

from __future__ import annotations

import pytest
import torch
from comfyui_modular_diffusers.nodes import catalog
from comfyui_modular_diffusers.nodes.families import FAMILIES
from diffusers.image_processor import InpaintProcessor
from diffusers.modular_pipelines import PipelineState
from diffusers.modular_pipelines.qwenimage.decoders import QwenImageInpaintProcessImagesOutputStep
from PIL import Image


def _fixed_output_types(family: str) -> dict[str, str]:
    """node id -> the output_type its definition fixes, for every node of `family` whose block takes one."""
    found = {}
    for entry in catalog.entries_for_family(family):
        fixed = catalog.definition_for(entry).fixed_inputs
        if "output_type" in fixed:
            found[entry.node_id] = fixed["output_type"]
    return found


def test_every_family_asks_for_an_output_type_diffusers_knows():
    assert {spec.output_type for spec in FAMILIES.values()} <= {"np", "pil"}


@pytest.mark.parametrize(("family", "output_type"), [("qwenimage", "pil"), ("flux", "np")])
def test_every_decoding_node_of_a_family_gets_its_output_type(family, output_type):
    fixed = _fixed_output_types(family)
    assert f"MDiff_{family}_{'QwenImageAutoBlocks' if family == 'qwenimage' else 'FluxAutoBlocks'}_decode" in fixed
    assert set(fixed.values()) == {output_type}


def test_qwenimage_inpainting_decodes_only_to_pil():
    """Why Qwen-Image decodes to PIL: its inpainting postprocess step refuses any other output_type as soon
    as the encoder's mask-overlay kwargs are in the state, and the encoder always puts them there (all None
    without a crop). Should diffusers fix this, the family can go back to float arrays."""
    processor = InpaintProcessor(vae_scale_factor=16)
    image, mask = Image.new("RGB", (32, 32)), Image.new("L", (32, 32), 255)
    _, _, overlay = processor.preprocess(image=image, mask=mask, height=32, width=32)
    assert overlay and overlay["crops_coords"] is None
    step = QwenImageInpaintProcessImagesOutputStep()
    pipe = step.init_pipeline()

    def decode(output_type: str):
        state = PipelineState()
        for name, value in {"images": torch.zeros(1, 3, 32, 32), "output_type": output_type}.items():
            state.set(name, value)
        state.set("mask_overlay_kwargs", overlay)
        return step(pipe, state)[1].get("images")

    with pytest.raises(ValueError, match="only support output_type 'pil'"):
        decode("np")
    assert isinstance(decode("pil")[0], Image.Image)
