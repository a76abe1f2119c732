"""Helios text-to-video (tiny-helios): a video denoised chunk by chunk, the whole timestep loop inside one
leaf block per chunk (HeliosChunkDenoiseInner), against the history of the chunks before it. The
workflows ask for 9 frames in chunks of 2 latent frames (5 video frames): 2 chunks, the fewest that run
the chunk loop with history (1 latent frame per chunk would give 2 chunks of 1 frame each, trimmed to 1
frame: the second chunk would not show)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from family_cases.case import SIZE, TEXT, Case, Workflow, inputs_of, widgets

CHUNKS = 2  # ceil(num_frames 9 / ((num_latent_frames_per_chunk 2 - 1) * 4 + 1))


def helios(graph: Workflow) -> dict[str, Any]:
    # The guidance_scale widget keeps the guider's default (CFG at 5.0 in diffusers' Helios blocks), so
    # the plain call leaves the guider alone.
    assert inputs_of(graph, "_text_encoder")["guidance_scale"] == 5.0
    chunking = ("num_frames", "num_latent_frames_per_chunk", "keep_first_frame")
    return widgets(graph, text_encoder=TEXT, denoise=(*SIZE, *chunking))


CASES = [
    Case(
        graph="helios_text2video",
        one_node="helios_text2video_one_node",
        model="tiny-helios",
        denoise="3",
        save="5",
        single="2",
        single_save="3",
        reference=helios,
        slow_steps={"height": 128, "width": 128},
        output="videos",
        video="6",
        single_video="4",
        fps=Fraction(24),
        chunks=CHUNKS,
    ),
]
