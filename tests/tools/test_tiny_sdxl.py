"""The tiny random-weight SDXL folder (scripts/tiny_recipes/sdxl.py) loads offline as a Modular Diffusers
pipeline that runs text2image and image2image at 64x64, with visibly different images for other prompts,
seeds and input images. What every build does (determinism, idempotence, marker) is in test_tiny_build.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_build import MARKER
from tiny_models import RECIPES

MODEL = "tiny-sdxl"


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


@pytest.fixture(scope="module")
def pipe(tiny_pipeline):
    return tiny_pipeline(MODEL)


def test_folder(tiny_models):
    index = json.loads((tiny_models[MODEL] / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    assert index["force_zeros_for_empty_prompt"] is True
    # the marker predates `kind`: its bytes (and so every folder built before) stay as they were
    marker = json.loads((tiny_models[MODEL] / MARKER).read_text())
    assert "kind" not in marker and marker["builder_version"] == RECIPES[MODEL].builder_version == 2


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
