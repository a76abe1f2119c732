"""Z-Image text2image (tiny-z-image)."""

from __future__ import annotations

from typing import Any

from family_cases.case import SIZE, TEXT, Case, Workflow, widgets


def z_image(graph: Workflow) -> dict[str, Any]:
    # The guidance_scale widget keeps the guider's default (5.0 with CFG disabled in diffusers' Z-Image
    # blocks), so the plain call leaves the guider alone.
    return widgets(graph, text_encoder=TEXT, denoise=SIZE)


CASES = [
    Case(
        graph="z_image_text2image",
        one_node="z_image_text2image_one_node",
        model="tiny-z-image",
        denoise="3",
        save="5",
        single="2",
        single_save="3",
        reference=z_image,
        slow_steps={"height": 1024, "width": 1024},
    ),
]
