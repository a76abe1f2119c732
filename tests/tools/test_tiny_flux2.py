"""The tiny random-weight Flux.2 Klein folder (scripts/tiny_recipes/flux2.py) loads offline as diffusers'
distilled Flux.2 Klein Modular Diffusers pipeline that runs text2image at 64x64, with visibly different
images for other prompts and seeds. What every build does (determinism, idempotence, marker) is in
test_tiny_build.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

MODEL = "tiny-flux2-klein"


@pytest.fixture(scope="module")
def pipe(tiny_pipeline):
    return tiny_pipeline(MODEL)


def test_folder(tiny_models):
    index = json.loads((tiny_models[MODEL] / "model_index.json").read_text())
    assert index["_class_name"] == "Flux2KleinPipeline"
    assert index["is_distilled"] is True  # what makes diffusers pick the distilled Klein blocks


def test_loads_as_modular_flux2_klein(pipe):
    assert type(pipe).__name__ == "Flux2KleinModularPipeline"
    assert type(pipe.blocks).__name__ == "Flux2KleinAutoBlocks"
    for name in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert getattr(pipe, name) is not None, name
    assert pipe.transformer.dtype == torch.float32
    assert pipe.tokenizer.chat_template
    # The Klein text-encoder step stacks these hidden states into the transformer's text width.
    layers = pipe.blocks.sub_blocks["text_encoder"].inputs
    (out_layers,) = [param.default for param in layers if param.name == "text_encoder_out_layers"]
    assert pipe.text_encoder.config.num_hidden_layers >= max(out_layers)
    assert pipe.transformer.config.joint_attention_dim == len(out_layers) * pipe.text_encoder.config.hidden_size


def _text2image(pipe, seed: int, prompt: str = "a cat", output: str = "images", **size: int) -> np.ndarray:
    result = pipe(
        prompt=prompt,
        num_inference_steps=4,
        height=size.get("height", 64),
        width=size.get("width", 64),
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
        output=output,
    )
    return np.asarray(result)


def test_text2image(pipe, no_network):
    images = _text2image(pipe, 0)
    assert images.shape == (1, 64, 64, 3)
    assert np.isfinite(images).all()
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.std() > 0.05
    assert np.array_equal(images, _text2image(pipe, 0))
    assert np.abs(images - _text2image(pipe, 1)).mean() > 0.05
    assert np.abs(images - _text2image(pipe, 0, prompt="a red car")).mean() > 0.03


def test_final_latents_are_comfyui_flux2_latents(pipe):
    """diffusers' final latents are the patchified [B, 128, H/16, W/16] grid that ComfyUI's Flux2 latent
    format previews (its latent_rgb_factors_reshape unpatchifies them)."""
    import comfy.latent_formats

    latents = _text2image(pipe, 0, output="latents", height=64, width=128)
    assert latents.shape == (1, comfy.latent_formats.Flux2.latent_channels, 4, 8)
