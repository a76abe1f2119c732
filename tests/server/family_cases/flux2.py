"""Flux.2 Klein text2image (tiny-flux2-klein): the distilled Klein, one transformer pass a step and no
guidance, so the plain call has no guidance value to set."""

from __future__ import annotations

from typing import Any

from family_cases.case import SIZE, Case, Workflow, widgets


def flux2_klein(graph: Workflow) -> dict[str, Any]:
    return widgets(graph, text_encoder=("prompt", "max_sequence_length"), denoise=SIZE)


CASES = [
    Case(
        graph="flux2_text2image",
        one_node="flux2_text2image_one_node",
        model="tiny-flux2-klein",
        denoise="3",
        save="5",
        single="2",
        single_save="3",
        reference=flux2_klein,
        slow_steps={"height": 1024, "width": 1024},
    ),
]
