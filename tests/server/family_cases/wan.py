"""Wan 2.1 text-to-video (tiny-wan). Wan 2.2's two transformers: tests/server/test_wan22_server.py."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from family_cases.case import SIZE, TEXT, Case, Workflow, inputs_of, widgets


def wan(graph: Workflow) -> dict[str, Any]:
    # The guidance_scale widget keeps the guider's default (CFG at 5.0 in diffusers' Wan blocks), so
    # the plain call leaves the guider alone. num_frames 0 (unset) is diffusers' default (81 frames).
    text, denoise = inputs_of(graph, "_text_encoder"), inputs_of(graph, "_denoise")
    assert text["guidance_scale"] == 5.0
    return {**widgets(graph, text_encoder=TEXT, denoise=SIZE), "num_frames": denoise["num_frames"] or None}


CASES = [
    Case(
        graph="wan_text2video",
        one_node="wan_text2video_one_node",
        model="tiny-wan",
        denoise="3",
        save="5",
        single="2",
        single_save="3",
        reference=wan,
        slow_steps={"height": 128, "width": 128, "num_frames": 81},
        output="videos",
        video="6",
        single_video="4",
        fps=Fraction(16),
    ),
]
