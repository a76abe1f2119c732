"""The tiny random-weight Wan 2.1 and Wan 2.2 text-to-video folders (scripts/tiny_recipes/wan.py) load
offline as Modular Diffusers pipelines (WanBlocks; Wan22Blocks with two transformers swapped at the boundary
ratio) that make 5-frame 64x64 videos, visibly different for other prompts and seeds. What every build does
(determinism, idempotence, marker, the command line) is in test_tiny_build.py."""

from __future__ import annotations

import importlib.util
import json
import types

import numpy as np
import pytest
import torch
from tiny_build import MARKER
from tiny_checks import file_hashes
from tiny_recipes.wan import BOUNDARY_RATIO

HEIGHT, WIDTH, FRAMES = 64, 64, 5  # 2 latent frames of 8x8; (FRAMES - 1) must be a multiple of 4
COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
COMPONENTS_WAN22 = (*COMPONENTS, "transformer_2")


@pytest.fixture(scope="module", autouse=True)
def wan_runtime():
    """A stand-in for ftfy when it is missing."""
    with pytest.MonkeyPatch.context() as patch:
        if importlib.util.find_spec("ftfy") is None:
            # diffusers' Wan text encoder step cleans every prompt with ftfy.fix_text, imported only when
            # ftfy is installed (it is a dependency of neither diffusers nor this pack): without it the step
            # fails with NameError. fix_text leaves the ASCII prompts below unchanged.
            from diffusers.modular_pipelines.wan import encoders

            patch.setattr(encoders, "ftfy", types.SimpleNamespace(fix_text=lambda text: text), raising=False)
        yield


@pytest.fixture(scope="module")
def pipe(tiny_pipeline):
    return tiny_pipeline("tiny-wan")


@pytest.fixture(scope="module")
def pipe22(tiny_pipeline):
    return tiny_pipeline("tiny-wan22")


def test_wan21_folder(tiny_models):
    index = json.loads((tiny_models["tiny-wan"] / "model_index.json").read_text())
    assert index["_class_name"] == "WanPipeline"
    assert index.get("boundary_ratio") is None  # Wan 2.1: one transformer (a ratio would mean Wan 2.2)
    assert "transformer_2" not in index


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


# -- Wan 2.2: two transformers ----------------------------------------------------------------------


def test_wan22_folder(tiny_models):
    tiny_dir, wan22_dir = tiny_models["tiny-wan"], tiny_models["tiny-wan22"]
    index = json.loads((wan22_dir / "model_index.json").read_text())
    assert index["_class_name"] == "WanPipeline"
    assert index["boundary_ratio"] == BOUNDARY_RATIO == 0.875
    assert index["transformer_2"] == index["transformer"] == ["diffusers", "WanTransformer3DModel"]
    assert [None, None] not in index.values()
    assert json.loads((wan22_dir / MARKER).read_text())["kind"] == "tiny-wan22"

    hashes = file_hashes(wan22_dir)
    # The Wan 2.1 folder plus a transformer_2 of other random weights (same shapes, same config).
    wan21 = file_hashes(tiny_dir)
    assert sorted(name for name in hashes if hashes[name] != wan21.get(name)) == [
        "model_index.json",
        MARKER,
        "transformer_2/config.json",
        "transformer_2/diffusion_pytorch_model.safetensors",
    ]
    assert hashes["transformer_2/config.json"] == hashes["transformer/config.json"]
    weights = "diffusion_pytorch_model.safetensors"
    assert hashes[f"transformer_2/{weights}"] != hashes[f"transformer/{weights}"]


def test_loads_as_modular_wan22(pipe22):
    assert type(pipe22).__name__ == "Wan22ModularPipeline"
    assert type(pipe22.blocks).__name__ == "Wan22Blocks"
    assert list(pipe22.blocks.sub_blocks) == ["text_encoder", "denoise", "decode"]
    assert pipe22.config.boundary_ratio == BOUNDARY_RATIO
    for name in COMPONENTS_WAN22:
        assert getattr(pipe22, name) is not None, name
    assert pipe22.transformer is not pipe22.transformer_2
    assert pipe22.transformer_2.dtype == torch.float32
    first, second = pipe22.transformer.state_dict(), pipe22.transformer_2.state_dict()
    assert first.keys() == second.keys()
    assert not torch.equal(first["proj_out.weight"], second["proj_out.weight"])


def test_wan22_text2video_swaps_transformers_at_the_boundary(pipe22, no_network):
    """`transformer` denoises the steps with t >= boundary_ratio * 1000, `transformer_2` the rest; the
    video depends on both (running transformer in place of transformer_2 changes it)."""
    seen: dict[str, list[float]] = {"transformer": [], "transformer_2": []}
    hooks = [
        getattr(pipe22, name).register_forward_pre_hook(
            lambda module, args, kwargs, name=name: seen[name].append(float(kwargs["timestep"][0])),
            with_kwargs=True,
        )
        for name in seen
    ]
    try:
        video = _text2video(pipe22, 0)
    finally:
        for hook in hooks:
            hook.remove()
    assert video.shape == (1, FRAMES, HEIGHT, WIDTH, 3)
    assert np.isfinite(video).all() and video.std() > 0.05
    # 4 steps at t = 999, 900, 750, 500; CFG calls each model twice per step.
    boundary = BOUNDARY_RATIO * 1000
    assert seen["transformer"] and all(t >= boundary for t in seen["transformer"])
    assert seen["transformer_2"] and all(t < boundary for t in seen["transformer_2"])
    assert len(seen["transformer"]) + len(seen["transformer_2"]) == 2 * 4

    assert np.array_equal(video, _text2video(pipe22, 0))
    assert np.abs(video - _text2video(pipe22, 1)).mean() > 0.03
    low_noise = pipe22.transformer_2
    pipe22.update_components(transformer_2=pipe22.transformer)
    try:
        one_transformer = _text2video(pipe22, 0)
    finally:
        pipe22.update_components(transformer_2=low_noise)
    assert np.abs(video - one_transformer).mean() > 0.03
