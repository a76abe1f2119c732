"""Qwen-Image's preview conversion (nodes/previews.unpack_2x2_patches): its in-loop tokens [B, H/2*W/2, 64]
become the [B, 16, H, W] latents that diffusers' own unpacking gives after the loop (QwenImagePachifier),
which ComfyUI's Wan21 latent format previews. Qwen-Image's loop has no `img_ids` and no image size, only
`img_shapes`: on a non-square grid, so rows and columns cannot be swapped unnoticed."""

from __future__ import annotations

import types

import comfy.latent_formats
import torch
from comfyui_modular_diffusers.nodes.previews import unpack_2x2_patches
from diffusers.modular_pipelines.qwenimage.modular_pipeline import QwenImagePachifier

CHANNELS = comfy.latent_formats.Wan21.latent_channels  # 16, packed 2x2 into 64 a token


def _packed(rows: int, cols: int, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Image-shaped latents [B, C, 2 * rows, 2 * cols], and their tokens as diffusers packs them."""
    grid = torch.randn(batch, CHANNELS, 2 * rows, 2 * cols, generator=torch.Generator().manual_seed(0))
    return grid, QwenImagePachifier().pack_latents(grid)


def test_img_shapes_give_the_grid_diffusers_unpacks_to():
    grid, tokens = _packed(4, 2)  # tall: a square guess of 8 tokens would be 2 x 4
    # as QwenImageRoPEInputsStep makes them for a 64x32 image (height x width) (VAE 8x, 2x2 patches); an edit model's
    # input image grid follows the generated image's
    state = types.SimpleNamespace(img_shapes=[[(1, 4, 2), (1, 5, 5)]] * 2)
    preview = unpack_2x2_patches(tokens, state)
    assert preview.shape == (2, CHANNELS, 8, 4)
    assert torch.equal(preview, grid)
    unpacked = QwenImagePachifier().unpack_latents(tokens, height=64, width=32)  # [B, C, 1, H, W]
    assert torch.equal(preview, unpacked[:, :, 0])


def test_without_img_shapes_a_square_is_guessed():
    grid, tokens = _packed(4, 4)
    assert torch.equal(unpack_2x2_patches(tokens, types.SimpleNamespace()), grid)
