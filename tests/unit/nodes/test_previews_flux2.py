"""Flux.2's preview conversion (nodes/previews.tokens_to_grid): its in-loop tokens [B, H*W, 128] become the
[B, 128, H, W] latents that diffusers' own unpacking step gives after the loop, which ComfyUI's Flux2 latent
format previews; on a non-square grid, so rows and columns cannot be swapped unnoticed."""

from __future__ import annotations

import types

import comfy.latent_formats
import torch
from comfyui_modular_diffusers.nodes.previews import tokens_to_grid
from diffusers.modular_pipelines.flux2.before_denoise import Flux2PrepareLatentsStep
from diffusers.modular_pipelines.flux2.decoders import Flux2UnpackLatentsStep

CHANNELS = comfy.latent_formats.Flux2.latent_channels  # 128: 32 latent channels in 2x2 patches


def _packed(height: int, width: int, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Image-shaped latents, and their tokens and ids as diffusers' Flux.2 prepare-latents step makes them."""
    grid = torch.randn(batch, CHANNELS, height, width, generator=torch.Generator().manual_seed(0))
    return grid, Flux2PrepareLatentsStep._pack_latents(grid), Flux2PrepareLatentsStep._prepare_latent_ids(grid)


def test_tokens_become_the_grid_diffusers_unpacks_them_to():
    grid, tokens, ids = _packed(4, 8)
    preview = tokens_to_grid(tokens, types.SimpleNamespace(latent_ids=ids))
    assert preview.shape == (2, CHANNELS, 4, 8)
    assert torch.equal(preview, Flux2UnpackLatentsStep._unpack_latents_with_ids(tokens, ids))
    assert torch.equal(preview, grid)


def test_without_ids_the_image_size_gives_the_grid():
    grid, tokens, _ = _packed(8, 4)
    assert torch.equal(tokens_to_grid(tokens, types.SimpleNamespace(height=128, width=64)), grid)


def test_image_shaped_latents_pass_through():
    grid, _, _ = _packed(4, 4)
    assert tokens_to_grid(grid, None) is grid
