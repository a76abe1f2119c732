"""HunyuanVideo 1.5 text-to-video (tiny-hunyuan-video15): 5 frames of 64x64 (2 latent frames of 4x4: 16x spatial,
4x temporal), through both text encoders (the prompt's quoted text reaches ByT5)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from family_cases.case import SIZE, Case, Workflow, inputs_of, widgets


def hunyuan_video15(graph: Workflow) -> dict[str, Any]:
    # The guidance_scale widget is the folder's guider's scale (CFG at 6.0, the 480p T2V checkpoint's), so
    # the plain call keeps the guider the folder ships.
    assert inputs_of(graph, "_text_encoder")["guidance_scale"] == 6.0
    return widgets(graph, text_encoder=("prompt", "negative_prompt"), denoise=(*SIZE, "num_frames"))


CASES = [
    Case(
        graph="hunyuan_video15_text2video",
        one_node="hunyuan_video15_text2video_one_node",
        model="tiny-hunyuan-video15",
        denoise="3",
        save="5",
        single="2",
        single_save="3",
        reference=hunyuan_video15,
        # A step is two transformer calls over 2017 tokens (1985 of them text: the pipeline's fixed lengths),
        # ~0.1 s at 64x64: slow enough to interrupt within one as it is.
        output="videos",
        video="6",
        single_video="4",
        fps=Fraction(24),
    ),
]
