"""The tiny random-weight Z-Image folder from scripts/build_tiny_z_image.py: deterministic, idempotent, and
loadable offline as diffusers' Z-Image Modular Diffusers pipeline that runs text2image at 64x64."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from build_tiny_z_image import BUILDER_VERSION, COMPONENTS, KIND, build_tiny_z_image
from tiny_build import MARKER
from tiny_checks import block_network, file_hashes, file_mtimes


def _disable_progress_bars(blocks) -> None:
    # ModularPipeline.set_progress_bar_config reaches only the top-level sub-blocks; Z-Image's denoise
    # loop sits three levels down (denoise -> text2image/image2image -> denoise).
    if hasattr(blocks, "set_progress_bar_config"):
        blocks.set_progress_bar_config(disable=True)
    for sub_block in getattr(blocks, "sub_blocks", {}).values():
        _disable_progress_bars(sub_block)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_z_image(tmp_path_factory.mktemp("tiny") / "tiny-z-image")


@pytest.fixture(scope="module")
def pipe(tiny_dir):
    from diffusers import ModularPipeline

    with pytest.MonkeyPatch.context() as patch:
        block_network(patch)
        pipeline = ModularPipeline.from_pretrained(str(tiny_dir))
        pipeline.load_components(dtype=torch.float32)
    _disable_progress_bars(pipeline.blocks)
    # The model is tiny: one thread is as fast on an idle machine and far faster on a busy one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield pipeline
    torch.set_num_threads(threads)


def test_build_is_deterministic_and_idempotent(tiny_dir, tmp_path):
    again = build_tiny_z_image(tmp_path / "again", seed=0)
    assert again == (tmp_path / "again").absolute()

    hashes = file_hashes(tiny_dir)
    assert hashes == file_hashes(again)
    # the standard diffusers layout, safetensors weights, a few MiB, and nothing left beside it
    for component in COMPONENTS:
        assert (tiny_dir / component).is_dir(), component
    assert {
        "transformer/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
    } <= set(hashes)
    assert not any(name.endswith(".bin") for name in hashes)
    assert sum(path.stat().st_size for path in tiny_dir.rglob("*") if path.is_file()) < 8 * 2**20
    assert sorted(path.name for path in tmp_path.iterdir()) == ["again"]

    index = json.loads((tiny_dir / "model_index.json").read_text())
    assert index["_class_name"] == "ZImagePipeline"
    assert set(COMPONENTS) <= set(index)
    assert [None, None] not in index.values()
    marker = json.loads((tiny_dir / MARKER).read_text())
    assert (marker["builder_version"], marker["seed"], marker["kind"]) == (BUILDER_VERSION, 0, KIND)

    before = file_mtimes(again)
    started = time.monotonic()
    assert build_tiny_z_image(again, seed=0) == again
    assert time.monotonic() - started < 0.5
    assert file_mtimes(again) == before


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


def test_other_seed_replaces_the_build(tmp_path):
    out = build_tiny_z_image(tmp_path / "tiny", seed=0)
    seed0 = file_hashes(out)
    build_tiny_z_image(out, seed=1)
    seed1 = file_hashes(out)
    assert json.loads((out / MARKER).read_text())["seed"] == 1
    weights = "transformer/diffusion_pytorch_model.safetensors"
    assert seed0[weights] != seed1[weights]
    assert seed0["transformer/config.json"] == seed1["transformer/config.json"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tiny"]
