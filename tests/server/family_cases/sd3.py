"""Stable Diffusion 3 text2image (tiny-sd3): three text encoders (CLIP-L, CLIP-G, T5), CFG by default."""

from __future__ import annotations

from typing import Any

from family_cases.case import SIZE, TEXT, Case, Workflow, inputs_of, widgets


def sd3(graph: Workflow) -> dict[str, Any]:
    # The guidance_scale widget keeps the guider's default (CFG at 7.0 in diffusers' SD3 blocks), so the
    # plain call leaves the guider alone; the negative prompt makes the loop run both passes. Empty
    # prompt_2 / prompt_3 / negative_prompt_2 / negative_prompt_3 widgets are unset: diffusers then uses prompt /
    # negative_prompt (tests/server/test_sd3_prompts_server.py sets the third ones).
    text, denoise = inputs_of(graph, "_text_encoder"), inputs_of(graph, "_denoise")
    assert denoise["guidance_scale"] == 7.0
    assert text["negative_prompt"] and not any(
        text[f"{name}_{n}"] for name in ("prompt", "negative_prompt") for n in (2, 3)
    )
    return widgets(graph, text_encoder=TEXT, denoise=SIZE)


CASES = [
    Case(
        graph="sd3_text2image",
        one_node="sd3_text2image_one_node",
        model="tiny-sd3",
        denoise="3",
        save="5",
        single="2",
        single_save="3",
        reference=sd3,
        # 512x512: 1024 image tokens, ~0.08 s a step with CFG on a busy core (768x768 ~0.2 s, 1024x1024, the
        # largest the tiny transformer's position embedding takes, ~0.5 s).
        slow_steps={"height": 512, "width": 512},
    ),
]
