"""The tiny random-weight Z-Image folder (scripts/tiny_recipes/z_image.py) loads offline as diffusers'
Z-Image Modular Diffusers pipeline that runs text2image at 64x64, with visibly different images for other
prompts and seeds. What every build does (determinism, idempotence, marker) is in test_tiny_build.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

MODEL = "tiny-z-image"


@pytest.fixture(scope="module")
def pipe(tiny_pipeline):
    return tiny_pipeline(MODEL)


def test_folder(tiny_models):
    index = json.loads((tiny_models[MODEL] / "model_index.json").read_text())
    assert index["_class_name"] == "ZImagePipeline"


def test_loads_as_modular_z_image(pipe):
    assert type(pipe).__name__ == "ZImageModularPipeline"
    assert type(pipe.blocks).__name__ == "ZImageAutoBlocks"
    for name in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler", "guider"):
        assert getattr(pipe, name) is not None, name
    assert pipe.transformer.dtype == torch.float32
    assert pipe.tokenizer.chat_template


def _text2image(pipe, seed: int, prompt: str = "a cat") -> np.ndarray:
    images = pipe(
        prompt=prompt,
        num_inference_steps=4,
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
        output="images",
    )
    return np.asarray(images)


def test_text2image(pipe, no_network):
    images = _text2image(pipe, 0)
    assert images.shape == (1, 64, 64, 3)
    assert np.isfinite(images).all()
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images.std() > 0.05
    assert np.array_equal(images, _text2image(pipe, 0))
    assert np.abs(images - _text2image(pipe, 1)).mean() > 0.05
    assert np.abs(images - _text2image(pipe, 0, prompt="a red car")).mean() > 0.03
