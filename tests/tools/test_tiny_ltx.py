"""The tiny random-weight LTX-Video folder (scripts/tiny_recipes/ltx.py) loads offline as diffusers' LTX
Modular Diffusers pipeline (LTXAutoBlocks) that makes 9-frame 64x64 videos, visibly different for other
prompts and seeds. What every build does (determinism, idempotence, marker) is in test_tiny_build.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

MODEL = "tiny-ltx"
HEIGHT, WIDTH, FRAMES = 64, 64, 9  # 2 latent frames of 2x2; (FRAMES - 1) must be a multiple of 8


@pytest.fixture(scope="module")
def pipe(tiny_pipeline):
    return tiny_pipeline(MODEL)


def test_folder(tiny_models):
    index = json.loads((tiny_models[MODEL] / "model_index.json").read_text())
    assert index["_class_name"] == "LTXPipeline"
    assert index["text_encoder"] == ["transformers", "T5EncoderModel"]


def test_loads_as_modular_ltx(pipe):
    assert type(pipe).__name__ == "LTXModularPipeline"
    assert type(pipe.blocks).__name__ == "LTXAutoBlocks"
    for name in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler", "guider", "pachifier"):
        assert getattr(pipe, name) is not None, name
    assert pipe.transformer.dtype == torch.float32
    assert (pipe.vae_spatial_compression_ratio, pipe.vae_temporal_compression_ratio) == (32, 8)
    assert pipe.transformer.config.in_channels == pipe.vae.config.latent_channels == 128  # ComfyUI's LTXV
    assert not pipe.vae.config.timestep_conditioning  # the decode step draws no noise
    assert pipe.tokenizer.model_max_length == 128


def _text2video(pipe, seed: int, prompt: str = "a cat", output: str = "videos") -> np.ndarray:
    return pipe(
        prompt=prompt,
        num_inference_steps=4,
        height=HEIGHT,
        width=WIDTH,
        num_frames=FRAMES,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
        output=output,
    )


def test_text2video(pipe, no_network):
    video = _text2video(pipe, 0)
    assert isinstance(video, np.ndarray)
    assert video.shape == (1, FRAMES, HEIGHT, WIDTH, 3)  # [batch, frames, height, width, channels]
    assert np.isfinite(video).all()
    assert video.min() >= 0.0 and video.max() <= 1.0
    assert video.std() > 0.05
    assert np.abs(np.diff(video, axis=1)).mean() > 0.03  # the frames differ: a video, not a still
    assert np.array_equal(video, _text2video(pipe, 0))
    assert np.abs(video - _text2video(pipe, 1)).mean() > 0.05
    assert np.abs(video - _text2video(pipe, 0, prompt="a red car")).mean() > 0.05


def test_final_latents_are_video_shaped(pipe, no_network):
    """After the loop, diffusers unpacks the tokens into [B, 128, latent frames, rows, columns]: what ComfyUI's
    LTXV latent format previews."""
    latents = _text2video(pipe, 0, output="latents")
    assert latents.shape == (1, 128, 2, 2, 2)
