"""The tiny random-weight Helios text-to-video folder (scripts/tiny_recipes/helios.py) loads offline as
diffusers' Helios Modular Diffusers pipeline (HeliosAutoBlocks) that makes a 9-frame 64x64 video in two
chunks, the second denoised against the first one's latents as history, visibly different for other
prompts and seeds. What every build does (determinism, idempotence, marker) is in test_tiny_build.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

MODEL = "tiny-helios"
HEIGHT, WIDTH, FRAMES = 64, 64, 9
LATENT_FRAMES_PER_CHUNK = 2  # (2 - 1) * 4 + 1 = 5 video frames a chunk: 9 frames are 2 chunks
CHUNKS, STEPS = 2, 4


@pytest.fixture(scope="module")
def pipe(tiny_pipeline):
    return tiny_pipeline(MODEL)


def test_folder(tiny_models):
    folder = tiny_models[MODEL]
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "HeliosPipeline"
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "HeliosScheduler"
    assert (scheduler["stages"], scheduler["use_dynamic_shifting"], scheduler["shift"]) == (1, True, 1.0)


def test_loads_as_modular_helios(pipe):
    assert type(pipe).__name__ == "HeliosModularPipeline"
    assert type(pipe.blocks).__name__ == "HeliosAutoBlocks"
    assert list(pipe.blocks.sub_blocks) == ["text_encoder", "vae_encoder", "denoise", "decode"]
    for name in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler", "guider"):
        assert getattr(pipe, name) is not None, name
    assert pipe.transformer.dtype == torch.float32
    assert (pipe.vae_scale_factor_spatial, pipe.vae_scale_factor_temporal) == (8, 4)


def _text2video(pipe, seed: int, prompt: str = "a cat") -> np.ndarray:
    return pipe(
        prompt=prompt,
        negative_prompt="blurry",
        num_inference_steps=STEPS,
        height=HEIGHT,
        width=WIDTH,
        num_frames=FRAMES,
        num_latent_frames_per_chunk=LATENT_FRAMES_PER_CHUNK,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
        output="videos",
    )


def test_text2video_in_two_chunks_with_history(pipe, no_network):
    # The short history the transformer sees on each call: zeros for the first chunk, the first chunk's
    # latents (its first frame as the prefix, its last frame) for the second.
    history = []
    hook = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: history.append(float(kwargs["latents_history_short"].abs().max())),
        with_kwargs=True,
    )
    try:
        video = _text2video(pipe, 0)
    finally:
        hook.remove()
    assert len(history) == CHUNKS * STEPS * 2  # CFG: two transformer calls a step
    first, second = history[: STEPS * 2], history[STEPS * 2 :]
    assert max(first) == 0.0 and min(second) > 0.1

    assert isinstance(video, np.ndarray)
    assert video.shape == (1, FRAMES, HEIGHT, WIDTH, 3)  # [batch, frames, height, width, channels]
    assert np.isfinite(video).all()
    assert video.min() >= 0.0 and video.max() <= 1.0
    assert video.std() > 0.05
    assert np.array_equal(video, _text2video(pipe, 0))
    assert np.abs(video - _text2video(pipe, 1)).mean() > 0.03
    assert np.abs(video - _text2video(pipe, 0, prompt="a red car")).mean() > 0.03
