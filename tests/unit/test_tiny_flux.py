"""The tiny random-weight Flux and Flux Kontext folders from scripts/build_tiny_flux.py: deterministic,
idempotent, and loadable offline as Modular Diffusers pipelines that run text2image, image2image and
(Kontext) image_conditioned at 64x64."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from build_tiny_flux import BUILDER_VERSION, COMPONENTS, KIND, KIND_KONTEXT, build_tiny_flux, is_complete, main
from PIL import Image
from tiny_build import MARKER
from tiny_checks import block_network, file_hashes, file_mtimes

SIZE = 64  # pixels; heights and widths must be multiples of 16 (VAE factor 8, then 2x2 packing)


def _load(folder: Path):
    from diffusers import ModularPipeline

    with pytest.MonkeyPatch.context() as patch:
        block_network(patch)
        pipeline = ModularPipeline.from_pretrained(str(folder))
        pipeline.load_components(dtype=torch.float32)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _ramp() -> Image.Image:
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    return Image.fromarray(np.stack([xs * 4, ys * 4, np.full_like(xs, 128)], axis=-1).astype(np.uint8))


def _noise() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The models are tiny: one thread is as fast on an idle machine and far faster on a busy one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def flux_dir(tmp_path_factory) -> Path:
    return build_tiny_flux(tmp_path_factory.mktemp("tiny") / "tiny-flux")


@pytest.fixture(scope="module")
def kontext_dir(tmp_path_factory) -> Path:
    return build_tiny_flux(tmp_path_factory.mktemp("tiny") / "tiny-flux-kontext", kontext=True)


@pytest.fixture(scope="module")
def flux(flux_dir):
    return _load(flux_dir)


@pytest.fixture(scope="module")
def kontext(kontext_dir):
    return _load(kontext_dir)


def _run(pipe, seed: int = 0, prompt: str = "a cat", **kwargs) -> np.ndarray:
    images = pipe(
        prompt=prompt,
        num_inference_steps=4,
        height=SIZE,
        width=SIZE,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
        output="images",
        **kwargs,
    )
    assert isinstance(images, np.ndarray)
    assert images.shape == (1, SIZE, SIZE, 3)
    assert images.dtype == np.float32
    assert np.isfinite(images).all()
    assert images.min() >= 0.0 and images.max() <= 1.0
    return images


def _conditioned(pipe, image: Image.Image, seed: int = 0, prompt: str = "a cat") -> np.ndarray:
    # Without these two, Kontext resizes the input image to a preferred ~1 MP resolution and the output to
    # max_area (1024x1024 by default): 4096+ tokens instead of 16.
    return _run(pipe, seed, prompt, image=image, _auto_resize=False, max_area=SIZE * SIZE)


def test_build_is_deterministic_and_idempotent(tmp_path, flux_dir):
    first = build_tiny_flux(tmp_path / "a", seed=0)
    assert first == (tmp_path / "a").absolute()

    hashes = file_hashes(first)
    assert hashes == file_hashes(flux_dir)
    # the standard diffusers layout, safetensors weights, a few MiB, and nothing left beside it
    for component in COMPONENTS:
        assert (first / component).is_dir(), component
    weights = {"transformer", "vae"}
    assert {f"{name}/diffusion_pytorch_model.safetensors" for name in weights} <= set(hashes)
    assert {"text_encoder/model.safetensors", "text_encoder_2/model.safetensors"} <= set(hashes)
    assert {"tokenizer/tokenizer.json", "tokenizer_2/tokenizer.json"} <= set(hashes)
    assert not any(name.endswith(".bin") for name in hashes)
    assert sum(path.stat().st_size for path in first.rglob("*") if path.is_file()) <= 8 * 2**20
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a"]

    index = json.loads((first / "model_index.json").read_text())
    assert index["_class_name"] == "FluxPipeline"
    assert set(COMPONENTS) <= set(index)
    assert [None, None] not in index.values()
    marker = json.loads((first / MARKER).read_text())
    assert (marker["builder_version"], marker["seed"], marker["kind"]) == (BUILDER_VERSION, 0, KIND)

    before = file_mtimes(first)
    started = time.monotonic()
    assert build_tiny_flux(first, seed=0) == first
    assert time.monotonic() - started < 0.5
    assert file_mtimes(first) == before


def test_kontext_folder(flux_dir, kontext_dir, capsys):
    index = json.loads((kontext_dir / "model_index.json").read_text())
    assert index["_class_name"] == "FluxKontextPipeline"
    assert [None, None] not in index.values()
    assert json.loads((kontext_dir / MARKER).read_text())["kind"] == KIND_KONTEXT
    # the same seeded weights as the Flux folder; only the pipeline class differs
    flux_hashes, kontext_hashes = file_hashes(flux_dir), file_hashes(kontext_dir)
    assert sorted(name for name in flux_hashes if flux_hashes[name] != kontext_hashes.get(name)) == [
        "model_index.json",
        MARKER,
    ]
    # a Kontext folder is not a finished Flux build and vice versa
    assert is_complete(kontext_dir, 0, kontext=True) and not is_complete(kontext_dir, 0)
    assert is_complete(flux_dir, 0) and not is_complete(flux_dir, 0, kontext=True)

    # the command line keeps finished folders and prints their paths
    before = file_mtimes(kontext_dir)
    assert main([str(kontext_dir), "--kontext"]) == 0
    assert main([str(flux_dir), "--seed", "0"]) == 0
    assert capsys.readouterr().out.split() == [str(kontext_dir), str(flux_dir)]
    assert file_mtimes(kontext_dir) == before


def test_loads_as_modular_flux(flux):
    assert type(flux).__name__ == "FluxModularPipeline"
    assert type(flux.blocks).__name__ == "FluxAutoBlocks"
    assert set(flux.blocks.available_workflows) == {"text2image", "image2image"}
    for name in COMPONENTS:
        assert getattr(flux, name) is not None, name
    assert flux.transformer.dtype == torch.float32
    assert flux.num_channels_latents == 16 and flux.vae_scale_factor == 8


def test_text2image(flux, no_network):
    images = _run(flux)
    assert images.std() > 0.05
    assert np.array_equal(images, _run(flux))
    assert np.abs(images - _run(flux, seed=1)).mean() > 0.05
    assert np.abs(images - _run(flux, prompt="a red car")).mean() > 0.03


def test_image2image(flux, no_network):
    from_ramp = _run(flux, image=_ramp(), strength=0.6)
    assert from_ramp.std() > 0.05
    assert np.abs(from_ramp - _run(flux, image=_noise(), strength=0.6)).mean() > 0.02


def test_loads_as_modular_flux_kontext(kontext):
    assert type(kontext).__name__ == "FluxKontextModularPipeline"
    assert type(kontext.blocks).__name__ == "FluxKontextAutoBlocks"
    assert set(kontext.blocks.available_workflows) == {"image_conditioned", "text2image"}
    for name in COMPONENTS:
        assert getattr(kontext, name) is not None, name


def test_kontext_image_conditioned(kontext, no_network):
    from_ramp = _conditioned(kontext, _ramp())
    assert from_ramp.std() > 0.05
    assert np.array_equal(from_ramp, _conditioned(kontext, _ramp()))
    assert np.abs(from_ramp - _conditioned(kontext, _noise())).mean() > 0.02
    assert np.abs(from_ramp - _conditioned(kontext, _ramp(), seed=1)).mean() > 0.05
    # without an image, Kontext is a text2image model
    assert np.abs(from_ramp - _run(kontext)).mean() > 0.02
