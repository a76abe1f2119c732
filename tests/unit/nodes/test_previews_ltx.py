"""LTX-Video's preview conversion (nodes/previews.unpack_video_tokens): its in-loop tokens [B, F*H*W, 128]
become the [B, 128, F, H, W] latents that diffusers' own pachifier unpacks them to after the loop, which
ComfyUI's LTXV latent format previews; on a non-square grid of two frames, so frames, rows and columns
cannot be swapped unnoticed."""

from __future__ import annotations

import types

import comfy.latent_formats
import torch
from comfyui_modular_diffusers.nodes.previews import unpack_video_tokens
from diffusers.modular_pipelines.ltx.modular_pipeline import LTXVideoPachifier

CHANNELS = comfy.latent_formats.LTXV.latent_channels  # 128
SPATIAL, TEMPORAL, FRAME_RATE = 32, 8, 25  # LTX-Video's VAE compression and default frame rate


def _loop_state(height: int, width: int) -> types.SimpleNamespace:
    """What LTX's denoising loop carries: the size in pixels and the RoPE scale of its set-timesteps step."""
    return types.SimpleNamespace(
        height=height, width=width, rope_interpolation_scale=(TEMPORAL / FRAME_RATE, SPATIAL, SPATIAL)
    )


def test_tokens_become_the_video_latents_diffusers_unpacks_them_to():
    latents = torch.randn(2, CHANNELS, 2, 2, 4, generator=torch.Generator().manual_seed(0))
    pachifier = LTXVideoPachifier(patch_size=1, patch_size_t=1)
    tokens = pachifier.pack_latents(latents)
    assert tokens.shape == (2, 2 * 2 * 4, CHANNELS)
    preview = unpack_video_tokens(tokens, _loop_state(64, 128))
    assert torch.equal(preview, pachifier.unpack_latents(tokens, 2, 2, 4))
    assert torch.equal(preview, latents)


def test_without_the_loop_sizes_nothing_is_guessed():
    tokens = torch.randn(1, 16, CHANNELS)
    assert unpack_video_tokens(tokens, types.SimpleNamespace(height=64, width=128)) is tokens
    assert unpack_video_tokens(tokens, _loop_state(96, 96)) is tokens  # 3x3 does not divide 16 tokens


def test_video_shaped_latents_pass_through():
    latents = torch.randn(1, CHANNELS, 2, 2, 2)
    assert unpack_video_tokens(latents, _loop_state(64, 64)) is latents
