"""Inpainting with a painted mask: what ComfyUI's mask editor saves is an image whose painted area is
transparent, and core Load Image gives it as a MASK of 1 there (1 - alpha). The shipped Qwen-Image
inpainting workflow, with Load Image's own MASK wired in instead of its composited one, equals plain
diffusers with a white (repaint) square on black: the pack hands ComfyUI's mask to diffusers the right
way round, whichever core node made it."""

from __future__ import annotations

import numpy as np
import torch
from comfy_harness import comfyui_dir, load_api_workflow
from comfyui_modular_diffusers.adapters.convert import image_to_pil
from diffusers import ModularPipeline
from family_cases.qwenimage import qwenimage
from helpers import saved_image
from PIL import Image

SIZE, SQUARE = 64, slice(16, 48)  # the painted square: rows and columns 16..47


def painted_file(input_dir) -> str:
    """ComfyUI's example image at 64x64 with the square painted out (alpha 0), as input/painted.png."""
    image = Image.open(comfyui_dir() / "input" / "example.png").convert("RGB").resize((SIZE, SIZE))
    alpha = np.full((SIZE, SIZE), 255, dtype=np.uint8)
    alpha[SQUARE, SQUARE] = 0
    image.putalpha(Image.fromarray(alpha, "L"))
    image.save(input_dir / "painted.png")
    return "painted.png"


def test_a_painted_mask_from_load_image_inpaints_its_square(server, client, tiny_models):
    name = painted_file(server.base / "input")
    prompt = load_api_workflow("qwenimage_inpaint")
    prompt["2"]["inputs"]["image"] = name
    prompt["7"]["inputs"]["mask_image"] = ["2", 1]  # Load Image's MASK
    for node in ("3", "4", "5"):  # the composited mask, now unused
        del prompt[node]
    comfy = saved_image(server, client.run(prompt), "10")

    pipe = ModularPipeline.from_pretrained(str(tiny_models["tiny-qwenimage"]))
    pipe.load_components(dtype=torch.float32)
    pixels = np.asarray(Image.open(server.base / "input" / name).convert("RGB"), dtype=np.float32) / 255.0
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    mask[SQUARE, SQUARE] = 255
    images = pipe(
        **qwenimage(prompt),
        image=image_to_pil(torch.from_numpy(pixels)[None], None),
        mask_image=Image.fromarray(mask, "L"),
        strength=prompt["8"]["inputs"]["strength"],
        num_inference_steps=prompt["8"]["inputs"]["num_inference_steps"],
        generator=torch.Generator().manual_seed(prompt["8"]["inputs"]["seed"]),
        output_type="pil",
        output="images",
    )
    assert np.array_equal(comfy, np.asarray(images[0].convert("RGB")))
    # Outside the square the image is kept: closer to the input there than inside.
    outside = np.ones((SIZE, SIZE), dtype=bool)
    outside[SQUARE, SQUARE] = False
    change = np.abs(comfy.astype(float) - 255 * pixels).mean(axis=2)
    assert change[outside].mean() < change[~outside].mean()
