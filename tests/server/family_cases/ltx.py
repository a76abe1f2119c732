"""LTX-Video text-to-video (tiny-ltx): 9 frames of 64x64 (2 latent frames of 2x2: 32x spatial, 8x temporal)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from family_cases.case import SIZE, TEXT, Case, Workflow, inputs_of, widgets


def ltx(graph: Workflow) -> dict[str, Any]:
    # The guidance_scale widget keeps the guider's default (CFG at 3.0 in diffusers' LTX blocks), so the
    # plain call leaves the guider alone. frame_rate reaches the transformer (its RoPE's time scale).
    text, denoise = inputs_of(graph, "_text_encoder"), inputs_of(graph, "_denoise")
    assert text["guidance_scale"] == 3.0
    values = widgets(graph, text_encoder=TEXT, denoise=(*SIZE, "frame_rate"))
    return {**values, "num_frames": denoise["num_frames"] or None}


CASES = [
    Case(
        graph="ltx_text2video",
        one_node="ltx_text2video_one_node",
        model="tiny-ltx",
        denoise="3",
        save="5",
        single="2",
        single_save="3",
        reference=ltx,
        other_seeds=("4",),  # the decode's (noise for a timestep-conditioned VAE; tiny-ltx's has none)
        slow_steps={"height": 128, "width": 128, "num_frames": 161},  # 336 tokens: ~40 ms a step
        output="videos",
        video="6",
        single_video="4",
        # The workflows' frame_rate (24, LTX-Video's usual rate) in the state, not the family's default when
        # a state has none (25.0, diffusers' frame_rate default: nodes/families.py).
        fps=Fraction(24),
    ),
]
