"""Stable Diffusion XL: the released node ids and widget lists of the SDXL nodes.

SDXL was shipped before the catalog: its text encoder, VAE encoder, denoise, decode and the two
one-node workflows keep the ids, widgets and order they were released with (saved workflows refer
to them). Every other SDXL node (inpainting, ControlNet and IP-Adapter workflows, the IP-Adapter
stage) is generated like any other family's.
"""

from __future__ import annotations

from .family_spec import NodeOverride

PROMPTS = ["prompt", "prompt_2", "negative_prompt", "negative_prompt_2"]
SAMPLING = ["num_inference_steps", "generator", "width", "height", "num_images_per_prompt"]
CLASS = "StableDiffusionXLAutoBlocks"


def sdxl_nodes() -> dict[tuple[str, str], NodeOverride]:
    return {
        (CLASS, "text_encoder"): NodeOverride(
            node_id="MDiff_SDXLTextEncoder", display_name="SDXL Text Encoder", inputs=PROMPTS
        ),
        (CLASS, "vae_encoder"): NodeOverride(
            node_id="MDiff_SDXLVaeEncoder",
            display_name="SDXL VAE Encoder (img2img)",
            description="Encodes an image into latents for image-to-image: connect its state to SDXL Denoise.",
            inputs=["image", "width", "height", "generator"],
            outputs=["image_latents"],
        ),
        (CLASS, "denoise"): NodeOverride(
            node_id="MDiff_SDXLDenoise",
            display_name="SDXL Denoise",
            description="Prepares timesteps and latents and runs the denoising loop (text-to-image, or image-to-image "
            "when the state holds image_latents from SDXL VAE Encoder). Shows per-step progress and can be "
            "interrupted.",
            inputs=[*SAMPLING, "strength", "latents"],
            outputs=["latents"],
        ),
        (CLASS, "decode"): NodeOverride(
            node_id="MDiff_SDXLDecoder",
            display_name="SDXL VAE Decoder",
            description="Decodes latents into a ComfyUI IMAGE (for Preview Image / Save Image).",
            inputs=["latents"],
            outputs=["images"],
        ),
        (CLASS, "text2image"): NodeOverride(
            node_id="MDiff_SDXLText2Image",
            display_name="SDXL Text to Image",
            description="The whole SDXL text2image workflow in one node: text encoder, denoise loop, decoder.",
            inputs=[*PROMPTS, *SAMPLING],
            outputs=["images"],
        ),
        (CLASS, "image2image"): NodeOverride(
            node_id="MDiff_SDXLImage2Image",
            display_name="SDXL Image to Image",
            description="The whole SDXL image2image workflow in one node: text encoder, VAE encoder, denoise, "
            "decoder.",
            inputs=[*PROMPTS, "image", "strength", *SAMPLING],
            outputs=["images"],
        ),
    }
