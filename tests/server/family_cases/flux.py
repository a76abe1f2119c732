"""Flux text2image (tiny-flux) and Flux Kontext image editing (tiny-flux-kontext)."""

from __future__ import annotations

from typing import Any

from family_cases.case import SIZE, Case, Workflow, inputs_of, loaded_image, widgets


def flux(graph: Workflow) -> dict[str, Any]:
    return widgets(graph, text_encoder=("prompt", "max_sequence_length"), denoise=(*SIZE, "guidance_scale"))


def flux_kontext(graph: Workflow) -> dict[str, Any]:
    text, encode, denoise = (inputs_of(graph, suffix) for suffix in ("_text_encoder", "_vae_encoder", "_denoise"))
    return {
        "prompt": text["prompt"],
        "max_sequence_length": text["max_sequence_length"],
        "image": loaded_image(inputs_of(graph, "LoadImage")["image"], inputs_of(graph, "ImageScale")),
        "_auto_resize": encode["_auto_resize"],
        "max_area": denoise["max_area"],
        "guidance_scale": denoise["guidance_scale"],
    }


CASES = [
    Case(
        graph="flux_text2image",
        one_node="flux_text2image_one_node",
        model="tiny-flux",
        denoise="3",
        save="5",
        single="2",
        single_save="3",
        reference=flux,
        slow_steps={"height": 1024, "width": 1024},
    ),
    Case(
        graph="flux_kontext_edit",
        one_node="flux_kontext_edit_one_node",
        model="tiny-flux-kontext",
        denoise="6",
        save="8",
        single="4",
        single_save="5",
        reference=flux_kontext,
        other_seeds=("5",),
        slow_steps={"max_area": 1024 * 1024},
        non_square_preview=False,  # Kontext works at the size of its input image
    ),
]
