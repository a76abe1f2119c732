"""The tiny random-weight Wan 2.1 text-to-video folder from scripts/build_tiny_wan.py: deterministic,
idempotent, and loadable offline as a Modular Diffusers pipeline (WanBlocks) that makes 5-frame 64x64
videos."""

from __future__ import annotations

import importlib.util
import json
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from build_tiny_wan import BUILDER_VERSION, COMPONENTS, KIND, build_tiny_wan
from tiny_build import MARKER
from tiny_checks import block_network, file_hashes, file_mtimes

HEIGHT, WIDTH, FRAMES = 64, 64, 5  # 2 latent frames of 8x8; (FRAMES - 1) must be a multiple of 4


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_wan(tmp_path_factory.mktemp("tiny") / "tiny-wan")


@pytest.fixture(scope="module")
def pipe(tiny_dir):
    from diffusers import ModularPipeline

    with pytest.MonkeyPatch.context() as patch:
        if importlib.util.find_spec("ftfy") is None:
            # diffusers' Wan text encoder step cleans every prompt with ftfy.fix_text, imported only when
            # ftfy is installed (it is a dependency of neither diffusers nor this pack): without it the step
            # fails with NameError. fix_text leaves the ASCII prompts below unchanged.
            from diffusers.modular_pipelines.wan import encoders

            patch.setattr(encoders, "ftfy", types.SimpleNamespace(fix_text=lambda text: text), raising=False)
        with pytest.MonkeyPatch.context() as offline:
            block_network(offline)
            pipeline = ModularPipeline.from_pretrained(str(tiny_dir))
            pipeline.load_components(dtype=torch.float32)
        pipeline.set_progress_bar_config(disable=True)
        # The model is tiny: one thread is as fast on an idle machine and far faster on a busy one.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield pipeline
        torch.set_num_threads(threads)


def test_build_is_deterministic_and_idempotent(tmp_path):
    first = build_tiny_wan(tmp_path / "a", seed=0)
    second = build_tiny_wan(tmp_path / "b", seed=0)
    assert first == (tmp_path / "a").absolute()

    hashes = file_hashes(first)
    assert hashes == file_hashes(second)
    # the standard diffusers layout, safetensors weights, a few MiB, and nothing left beside it
    for component in COMPONENTS:
        assert (first / component).is_dir(), component
    assert {
        "transformer/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
        "tokenizer/tokenizer.json",
        "scheduler/scheduler_config.json",
    } <= set(hashes)
    assert not any(name.endswith(".bin") for name in hashes)
    assert sum(path.stat().st_size for path in first.rglob("*") if path.is_file()) < 8 * 2**20
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a", "b"]

    index = json.loads((first / "model_index.json").read_text())
    assert index["_class_name"] == "WanPipeline"
    assert set(COMPONENTS) <= set(index)
    assert [None, None] not in index.values()
    assert index.get("boundary_ratio") is None  # Wan 2.1: one transformer (a ratio would mean Wan 2.2)
    marker = json.loads((first / MARKER).read_text())
    assert (marker["builder_version"], marker["seed"], marker["kind"]) == (BUILDER_VERSION, 0, KIND)

    before = file_mtimes(first)
    started = time.monotonic()
    assert build_tiny_wan(first, seed=0) == first
    assert time.monotonic() - started < 0.5
    assert file_mtimes(first) == before


def test_loads_as_modular_wan(pipe):
    assert type(pipe).__name__ == "WanModularPipeline"
    assert type(pipe.blocks).__name__ == "WanBlocks"
    assert list(pipe.blocks.sub_blocks) == ["text_encoder", "denoise", "decode"]
    for name in COMPONENTS:
        assert getattr(pipe, name) is not None, name
    assert type(pipe.scheduler).__name__ == "UniPCMultistepScheduler"
    assert pipe.transformer.dtype == torch.float32
    assert (pipe.vae_scale_factor_spatial, pipe.vae_scale_factor_temporal) == (8, 4)


def _text2video(pipe, seed: int, prompt: str = "a cat") -> np.ndarray:
    return pipe(
        prompt=prompt,
        num_inference_steps=4,
        height=HEIGHT,
        width=WIDTH,
        num_frames=FRAMES,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
        output="videos",
    )


def test_text2video(pipe, no_network):
    video = _text2video(pipe, 0)
    assert isinstance(video, np.ndarray)
    assert video.shape == (1, FRAMES, HEIGHT, WIDTH, 3)  # [batch, frames, height, width, channels]
    assert np.isfinite(video).all()
    assert video.min() >= 0.0 and video.max() <= 1.0
    assert video.std() > 0.05
    assert np.array_equal(video, _text2video(pipe, 0))
    assert np.abs(video - _text2video(pipe, 1)).mean() > 0.03
    assert np.abs(video - _text2video(pipe, 0, prompt="a red car")).mean() > 0.03
