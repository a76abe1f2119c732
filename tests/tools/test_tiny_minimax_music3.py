"""The tiny random-weight MiniMax Music 3 folder (scripts/tiny_recipes/minimax_music3.py) loads offline as
diffusers' MiniMax Music 3 modular pipeline (a family without a classic pipeline: the folder has only a
modular_model_index.json) and makes a second of 16 kHz stereo, with audibly different waveforms for other
seeds, prompts and lyrics. What every build does (determinism, idempotence, marker) is in
test_tiny_build.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

MODEL = "tiny-minimax-music3"
SAMPLE_RATE = 16000


@pytest.fixture(scope="module")
def pipe(tiny_pipeline):
    return tiny_pipeline(MODEL)


def test_folder_has_only_a_modular_index(tiny_models):
    folder = tiny_models[MODEL]
    assert not (folder / "model_index.json").exists()
    index = json.loads((folder / "modular_model_index.json").read_text())
    assert index["_class_name"] == "MiniMaxMusic3ModularPipeline"
    assert index["_blocks_class_name"] == "MiniMaxMusic3Blocks"
    # Where the build saved each component (a staging folder) is not recorded: it loads from the folder.
    assert {entry[2]["pretrained_model_name_or_path"] for entry in index.values() if isinstance(entry, list)} == {None}


def test_loads_as_modular_minimax_music3(pipe, tiny_models):
    assert type(pipe).__name__ == "MiniMaxMusic3ModularPipeline"
    assert type(pipe.blocks).__name__ == "MiniMaxMusic3Blocks"
    names = ("tokenizer", "language_model", "rvq_depth_decoder", "condition_encoder", "transformer", "vocoder")
    for name in (*names, "scheduler", "guider"):
        assert getattr(pipe, name) is not None, name
    for name in names:  # from this folder, not from where it was built
        assert pipe._component_specs[name].pretrained_model_name_or_path == str(tiny_models[MODEL]), name
    assert pipe.transformer.dtype == torch.float32
    assert pipe.guider.guidance_scale == 1.7  # the blocks' own default
    # The rates the blocks read from the configs: 5 frames, 125 latents and 16000 samples a second.
    assert (pipe.frame_rate, pipe.latent_hop_length, pipe.sampling_rate) == (5.0, 128, SAMPLE_RATE)


def _text2music(
    pipe, seed: int, prompt: str = "calm piano", lyrics: str = "[verse]\nla la la", seconds: float = 1.0
) -> dict:
    return pipe(
        prompt=prompt,
        lyrics=lyrics,
        audio_duration=seconds,
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
        output=["audios", "frame_hiddens", "latent_chunks"],
    )


def test_text2music(pipe, no_network):
    result = _text2music(pipe, 0)
    audio = result["audios"]
    assert audio.shape == (1, 2, SAMPLE_RATE)  # one stereo second
    assert result["frame_hiddens"].shape == (1, 5, 3 * 8)  # 5 frames, 3 codebooks of the 8-wide hidden state
    assert [chunk.shape for chunk in result["latent_chunks"]] == [(1, 8, 125)]  # one window, no crop
    assert np.isfinite(audio).all()
    assert audio.min() >= -1.0 and audio.max() <= 1.0
    assert audio.std() > 0.1
    assert np.array_equal(audio, _text2music(pipe, 0)["audios"])
    assert np.abs(audio - _text2music(pipe, 1)["audios"]).mean() > 0.05
    assert np.abs(audio - _text2music(pipe, 0, prompt="loud metal, fast drums")["audios"]).mean() > 0.03
    assert np.abs(audio - _text2music(pipe, 0, lyrics="[chorus]\noh yeah")["audios"]).mean() > 0.015


def test_the_language_model_never_ends_a_clip_early(pipe):
    """The audio-end token's logit is pinned below the sampled codes' (recipe's ZeroRow): every seed and
    prompt runs to the full duration, so a test's clip never changes length with its seed."""
    for seed in range(4):
        result = _text2music(pipe, seed, prompt=f"song number {seed}", seconds=2.0)
        assert result["frame_hiddens"].shape[1] == 10
