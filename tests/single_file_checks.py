"""What the single-file fixture tests share (tests/tools/test_tiny_single_files*.py): the fixtures' names (as
scripts/tiny_single_files.py's FILES names them) and two checks."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

SDXL, SDXL_BIGG, FLUX, Z_IMAGE = "tiny-sdxl", "tiny-sdxl-bigg", "tiny-flux", "tiny-z-image"
FLUX_3072 = "tiny-flux-3072"
CHECKPOINT = "checkpoints/tiny-sdxl.safetensors"
CHECKPOINTS = {SDXL: CHECKPOINT, SDXL_BIGG: "checkpoints/tiny-sdxl-bigg.safetensors"}
BFL = "diffusion_models/tiny-flux-bfl.safetensors"
Q8_0 = "diffusion_models/tiny-flux-Q8_0.gguf"
IQ2 = "diffusion_models/tiny-flux-IQ2_XXS.gguf"
BFL_3072 = "diffusion_models/tiny-flux-3072-bfl.safetensors"
Q8_0_3072 = "diffusion_models/tiny-flux-3072-Q8_0.gguf"
UNET = "unet/tiny-sdxl-unet.safetensors"
VAE = "vae/tiny-sdxl-vae.safetensors"
CONFIGS = {SDXL: "diffusers/tiny-sdxl-configs", SDXL_BIGG: "diffusers/tiny-sdxl-bigg-configs"}
Z_ORIGINAL = "diffusion_models/tiny-z-image-original.safetensors"
Z_Q8_0 = "diffusion_models/tiny-z-image-Q8_0.gguf"
FLUX_WIDTH = "diffusers' BFL Flux converter hardcodes inner_dim = 3072 (FLUX.1's) to split single_blocks linear1"


def assert_same_weights(loaded: torch.nn.Module, reference: torch.nn.Module) -> None:
    got, want = loaded.state_dict(), reference.state_dict()
    assert sorted(got) == sorted(want)
    differing = [key for key in want if got[key].is_meta or not torch.equal(got[key], want[key])]
    assert not differing, differing[:5]


def header_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors as meta tensors of their shapes, from its header alone."""
    with path.open("rb") as file:
        header = json.loads(file.read(struct.unpack("<Q", file.read(8))[0]))
    return {key: torch.empty(info["shape"], device="meta") for key, info in header.items() if key != "__metadata__"}
