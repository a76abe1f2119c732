"""Stable Diffusion XL: the released node ids and widget lists of the SDXL nodes.

SDXL was shipped before the catalog: its text encoder, VAE encoder, denoise, decode and the two
one-node workflows keep the ids, widgets and order they were released with (saved workflows refer
to them). Every other SDXL node (inpainting, ControlNet and IP-Adapter workflows, the IP-Adapter
stage) is generated like any other family's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .families import NodeOverride

PROMPTS = ["prompt", "prompt_2", "negative_prompt", "negative_prompt_2"]
SAMPLING = ["num_inference_steps", "generator", "width", "height", "num_images_per_prompt"]
CLASS = "StableDiffusionXLAutoBlocks"


def sdxl_nodes() -> dict[tuple[str, str], NodeOverride]:
    from .families import NodeOverride

    return {
        (CLASS, "text_encoder"): NodeOverride("MDiff_SDXLTextEncoder", "SDXL Text Encoder", inputs=PROMPTS),
        (CLASS, "vae_encoder"): NodeOverride(
            "MDiff_SDXLVaeEncoder",
            "SDXL VAE Encoder (img2img)",
            "Encodes an image into latents for image-to-image: connect its state to SDXL Denoise.",
            inputs=["image", "width", "height", "generator"],
            outputs=["image_latents"],
        ),
        (CLASS, "denoise"): NodeOverride(
            "MDiff_SDXLDenoise",
            "SDXL Denoise",
            "Prepares timesteps and latents and runs the denoising loop (text-to-image, or image-to-image "
            "when the state holds image_latents from SDXL VAE Encoder). Shows per-step progress and can be "
            "interrupted.",
            inputs=[*SAMPLING, "strength", "latents"],
            outputs=["latents"],
        ),
        (CLASS, "decode"): NodeOverride(
            "MDiff_SDXLDecoder",
            "SDXL VAE Decoder",
            "Decodes latents into a ComfyUI IMAGE (for Preview Image / Save Image).",
            inputs=["latents"],
            outputs=["images"],
        ),
        (CLASS, "text2image"): NodeOverride(
            "MDiff_SDXLText2Image",
            "SDXL Text to Image",
            "The whole SDXL text2image workflow in one node: text encoder, denoise loop, decoder.",
            inputs=[*PROMPTS, *SAMPLING],
            outputs=["images"],
        ),
        (CLASS, "image2image"): NodeOverride(
            "MDiff_SDXLImage2Image",
            "SDXL Image to Image",
            "The whole SDXL image2image workflow in one node: text encoder, VAE encoder, denoise, decoder.",
            inputs=[*PROMPTS, "image", "strength", *SAMPLING],
            outputs=["images"],
        ),
    }
