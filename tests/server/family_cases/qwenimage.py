"""Qwen-Image text2image and inpainting (tiny-qwenimage), Qwen-Image-Edit image editing (tiny-qwenimage-edit)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from comfy_harness import comfyui_dir
from comfyui_modular_diffusers.adapters.convert import image_to_pil
from PIL import Image, ImageOps

from family_cases import case
from family_cases.case import SIZE, TEXT, Case, Workflow, inputs_of, widgets


def loaded_image(name: str) -> Image.Image:
    """What core LoadImage hands to the pack (the file's RGB pixels as floats), as the PIL image the pack
    gives diffusers (whose inpainting encoder resizes it to its height and width)."""
    pixels = np.asarray(ImageOps.exif_transpose(Image.open(comfyui_dir() / "input" / name)).convert("RGB"))
    return image_to_pil(torch.from_numpy(pixels.astype(np.float32) / 255.0)[None], None)


def _guider_left_alone(graph: Workflow) -> None:
    # The guidance_scale widget keeps the guider's default (CFG at 4.0 in diffusers' Qwen-Image blocks),
    # so the plain call leaves the guider alone.
    assert inputs_of(graph, "_text_encoder")["guidance_scale"] == 4.0


def qwenimage(graph: Workflow) -> dict[str, Any]:
    _guider_left_alone(graph)
    return widgets(graph, text_encoder=TEXT, denoise=SIZE)


def normalized_latents(pipe: Any, latents: torch.Tensor) -> torch.Tensor:
    """Qwen-Image's decoder step leaves the VAE's latents in the state (`latents_std` and `latents_mean`
    applied): the loop's own, the ones its previews show, are normalized."""
    config = pipe.vae.config
    mean, std = (torch.tensor(values).view(1, -1, 1, 1, 1) for values in (config.latents_mean, config.latents_std))
    return (latents - mean) / std


def composited_mask(graph: Workflow) -> Image.Image:
    """What core SolidMask + SolidMask + MaskComposite ("add") make, as the mask diffusers is to get: ComfyUI's
    MASK 1 (the area to change) is diffusers' white (repainted; tests/tools/test_tiny_qwenimage.py), 0 black.
    Made here from the widget values, not with the pack's converter, so an inverted conversion would fail."""
    composite = inputs_of(graph, "MaskComposite")
    assert composite["operation"] == "add"
    destination, source = (graph[composite[name][0]]["inputs"] for name in ("destination", "source"))
    mask = np.full((destination["height"], destination["width"]), float(destination["value"]))
    top, left = composite["y"], composite["x"]
    mask[top : top + source["height"], left : left + source["width"]] += source["value"]
    return Image.fromarray(np.round(255 * mask.clip(0, 1)).astype(np.uint8), "L")


def qwenimage_inpaint(graph: Workflow) -> dict[str, Any]:
    encode, denoise = inputs_of(graph, "_vae_encoder"), inputs_of(graph, "_denoise")
    assert (encode["height"], encode["width"]) == (denoise["height"], denoise["width"])
    return {
        **qwenimage(graph),
        "image": loaded_image(inputs_of(graph, "LoadImage")["image"]),
        "mask_image": composited_mask(graph),
        "strength": denoise["strength"],
    }


def qwenimage_edit(graph: Workflow) -> dict[str, Any]:
    # The image reaches both encoder stages (each resizes it to the 1024x1024 area the blocks hard-code).
    image = case.loaded_image(inputs_of(graph, "LoadImage")["image"], inputs_of(graph, "ImageScale"))
    _guider_left_alone(graph)
    return {**widgets(graph, text_encoder=("prompt", "negative_prompt"), denoise=SIZE), "image": image}


CASES = [
    Case(
        graph="qwenimage_text2image",
        one_node="qwenimage_text2image_one_node",
        model="tiny-qwenimage",
        denoise="3",
        save="5",
        single="2",
        single_save="3",
        reference=qwenimage,
        slow_steps={"height": 256, "width": 256},  # ~60 ms a step
        loop_latents=normalized_latents,
    ),
    Case(
        graph="qwenimage_inpaint",
        one_node="qwenimage_inpaint_one_node",
        model="tiny-qwenimage",
        denoise="8",
        save="10",
        single="6",
        single_save="7",
        reference=qwenimage_inpaint,
        other_seeds=("7",),
        # The image and mask are encoded at the encoder's 64x64: a bigger batch slows the steps instead.
        slow_steps={"num_images_per_prompt": 16},
        non_square_preview=False,  # the size is the encoder's, not the denoise node's
        loop_latents=normalized_latents,
    ),
    Case(
        graph="qwenimage_edit",
        one_node="qwenimage_edit_one_node",
        model="tiny-qwenimage-edit",
        denoise="6",
        save="8",
        single="4",
        single_save="5",
        reference=qwenimage_edit,
        # The VAE encoder's seed is left as shipped: Qwen-Image's encoder takes the posterior's mode (no
        # randomness), so it stays cached between the runs (encoding the 1024x1024 image costs seconds).
        slow_steps={},  # a step attends over the input image's 4096 tokens: ~0.5 s
        non_square_preview=False,
        loop_latents=normalized_latents,
    ),
]
