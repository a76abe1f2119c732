"""The tiny random-weight SDXL folder from scripts/build_tiny_sdxl.py: deterministic, idempotent, and
loadable offline as a Modular Diffusers pipeline that runs text2image and image2image at 64x64."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from build_tiny_sdxl import BUILDER_VERSION, COMPONENTS, build_tiny_sdxl
from PIL import Image
from tiny_build import MARKER
from tiny_checks import block_network, file_hashes, file_mtimes


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_sdxl(tmp_path_factory.mktemp("tiny") / "tiny-sdxl")


@pytest.fixture(scope="module")
def pipe(tiny_dir):
    from diffusers import ModularPipeline

    with pytest.MonkeyPatch.context() as patch:
        block_network(patch)
        pipeline = ModularPipeline.from_pretrained(str(tiny_dir))
        pipeline.load_components(dtype=torch.float32)
    pipeline.set_progress_bar_config(disable=True)
    # The model is tiny: one thread is as fast on an idle machine and far faster on a busy one, where two
    # spinning intra-op threads fight other processes for 2 cores (6 s instead of 0.2 s a call).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield pipeline
    torch.set_num_threads(threads)


def test_build_is_deterministic_and_idempotent(tmp_path):
    first = build_tiny_sdxl(tmp_path / "a", seed=0)
    second = build_tiny_sdxl(tmp_path / "b", seed=0)
    assert first == (tmp_path / "a").absolute()

    hashes = file_hashes(first)
    assert hashes == file_hashes(second)
    # the standard diffusers layout, safetensors weights, a few MiB, and nothing left beside it
    for component in COMPONENTS:
        assert (first / component).is_dir(), component
    assert {"unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"} <= set(hashes)
    assert {"text_encoder/model.safetensors", "text_encoder_2/model.safetensors"} <= set(hashes)
    assert not any(name.endswith(".bin") for name in hashes)
    assert sum(path.stat().st_size for path in first.rglob("*") if path.is_file()) < 16 * 2**20
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a", "b"]

    index = json.loads((first / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"
    assert set(COMPONENTS) <= set(index)
    assert [None, None] not in index.values()
    marker = json.loads((first / MARKER).read_text())
    assert (marker["builder_version"], marker["seed"]) == (BUILDER_VERSION, 0)

    before = file_mtimes(first)
    started = time.monotonic()
    assert build_tiny_sdxl(first, seed=0) == first
    assert time.monotonic() - started < 0.5
    assert file_mtimes(first) == before


def test_other_seed_replaces_the_build(tmp_path):
    out = build_tiny_sdxl(tmp_path / "tiny", seed=0)
    seed0 = file_hashes(out)
    build_tiny_sdxl(out, seed=1)
    seed1 = file_hashes(out)
    assert json.loads((out / MARKER).read_text())["seed"] == 1
    assert seed0["unet/diffusion_pytorch_model.safetensors"] != seed1["unet/diffusion_pytorch_model.safetensors"]
    assert seed0["unet/config.json"] == seed1["unet/config.json"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tiny"]


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        build_tiny_sdxl(foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mine"]


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
