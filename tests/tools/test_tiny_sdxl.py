"""The tiny random-weight SDXL folders (scripts/tiny_recipes/sdxl.py: tiny-sdxl, and tiny-sdxl-bigg with a wider
text_encoder_2) load offline as Modular Diffusers pipelines that run text2image and image2image at 64x64, with
visibly different images for other prompts, seeds and input images. What every build does (determinism,
idempotence, marker) is in test_tiny_build.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_build import MARKER
from tiny_models import RECIPES

MODEL = "tiny-sdxl"
BIGG = "tiny-sdxl-bigg"


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


@pytest.fixture(scope="module", params=[MODEL, BIGG])
def pipe(request, tiny_pipeline):
    return tiny_pipeline(request.param)


def test_folder(tiny_models):
    index = json.loads((tiny_models[MODEL] / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    assert index["force_zeros_for_empty_prompt"] is True
    # the marker predates `kind`: its bytes (and so every folder built before) stay as they were
    marker = json.loads((tiny_models[MODEL] / MARKER).read_text())
    assert "kind" not in marker and marker["builder_version"] == RECIPES[MODEL].builder_version == 2


def test_bigg_folder(tiny_models):
    """tiny-sdxl but for text_encoder_2's width (48, CLIP-L's 32) and the UNet inputs that follow from it."""
    configs = {
        model: {
            name: json.loads((tiny_models[model] / name / "config.json").read_text())
            for name in ("text_encoder", "text_encoder_2", "unet", "vae")
        }
        for model in (MODEL, BIGG)
    }
    sdxl, bigg = configs[MODEL], configs[BIGG]
    assert (bigg["text_encoder"]["hidden_size"], bigg["text_encoder_2"]["hidden_size"]) == (32, 48)
    assert bigg["text_encoder_2"]["projection_dim"] == 48
    assert (bigg["unet"]["cross_attention_dim"], bigg["unet"]["projection_class_embeddings_input_dim"]) == (80, 96)
    assert (sdxl["unet"]["cross_attention_dim"], sdxl["unet"]["projection_class_embeddings_input_dim"]) == (64, 80)
    assert bigg["text_encoder"] == sdxl["text_encoder"] and bigg["vae"] == sdxl["vae"]
    unet_changes = {key for key in sdxl["unet"] if sdxl["unet"][key] != bigg["unet"][key]}
    assert unet_changes == {"cross_attention_dim", "projection_class_embeddings_input_dim"}
    assert json.loads((tiny_models[BIGG] / MARKER).read_text())["kind"] == BIGG


def test_loads_as_modular_sdxl(pipe):
    assert type(pipe).__name__ == "StableDiffusionXLModularPipeline"
    assert type(pipe.blocks).__name__ == "StableDiffusionXLAutoBlocks"
    for name in ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"):
        assert getattr(pipe, name) is not None, name
    assert pipe.unet.dtype == torch.float32


def _text2image(pipe, seed: int, prompt: str = "a cat") -> Image.Image:
    return pipe(
        prompt=prompt,
        negative_prompt="",
        num_inference_steps=2,
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(seed),
        output="images",
    )[0]


def test_text2image(pipe, no_network):
    image = _text2image(pipe, 0)
    assert isinstance(image, Image.Image)
    assert image.size == (64, 64)
    pixels = _pixels(image)
    assert pixels.std() > 0.02
    assert np.array_equal(pixels, _pixels(_text2image(pipe, 0)))
    assert np.abs(pixels - _pixels(_text2image(pipe, 1))).mean() > 0.02
    assert np.abs(pixels - _pixels(_text2image(pipe, 0, prompt="a red car"))).mean() > 0.02


def test_image2image(pipe, no_network):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ys, xs = np.mgrid[0:64, 0:64]
    ramp = np.stack([xs * 4, ys * 4, np.full_like(xs, 128)], axis=-1).astype(np.uint8)

    def run(image: np.ndarray) -> np.ndarray:
        result = pipe(
            prompt="a cat",
            image=Image.fromarray(image),
            strength=0.5,
            num_inference_steps=4,
            generator=torch.Generator().manual_seed(0),
            output="images",
        )[0]
        assert result.size == (64, 64)
        return _pixels(result)

    from_noise = run(noise)
    assert from_noise.std() > 0.02
    assert np.array_equal(from_noise, run(noise))
    assert np.abs(from_noise - run(ramp)).mean() > 0.02
