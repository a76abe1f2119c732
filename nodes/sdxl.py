"""Stable Diffusion XL as nodes, generated from diffusers' `StableDiffusionXLAutoBlocks`.

Only this table is SDXL-specific: which sub-blocks become nodes, their names, and which parameters
get sockets. Everything else (sockets, state, model management, loop progress) is the generic
adapter. Node ids are stable: saved workflows refer to them.
"""

from __future__ import annotations

from diffusers import StableDiffusionXLAutoBlocks

from ..adapters.factory import BlockNodeDefinition, make_block_node
from ..adapters.sockets import NameRule

CATEGORY = "Modular Diffusers/SDXL"
AUTO_BLOCKS = StableDiffusionXLAutoBlocks()

GUIDER_INPUTS = {
    "guider": {
        "guidance_scale": NameRule(
            "FLOAT",
            {"default": 7.5, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01},
            tooltip="Classifier-free guidance scale; 1 or less turns guidance (and the negative prompt) off. "
            "Set here, it applies to every step downstream.",
        )
    }
}
PROMPTS = ["prompt", "prompt_2", "negative_prompt", "negative_prompt_2"]
SAMPLING = ["num_inference_steps", "generator", "width", "height", "num_images_per_prompt"]
# Decoded images stay float arrays (ComfyUI's IMAGE layout); nothing is quantised before SaveImage.
IMAGE_OUTPUT = {"output_type": "np"}

SDXL_DEFINITIONS = [
    BlockNodeDefinition(
        "MDiff_SDXLTextEncoder",
        AUTO_BLOCKS.sub_blocks["text_encoder"],
        "SDXL Text Encoder",
        CATEGORY,
        inputs=PROMPTS,
        component_inputs=GUIDER_INPUTS,
    ),
    BlockNodeDefinition(
        "MDiff_SDXLVaeEncoder",
        AUTO_BLOCKS.sub_blocks["vae_encoder"],
        "SDXL VAE Encoder (img2img)",
        CATEGORY,
        description="Encodes an image into latents for image-to-image: connect its state to SDXL Denoise.",
        inputs=["image", "width", "height", "generator"],
        outputs=["image_latents"],
    ),
    BlockNodeDefinition(
        "MDiff_SDXLDenoise",
        AUTO_BLOCKS.sub_blocks["denoise"],
        "SDXL Denoise",
        CATEGORY,
        description="Prepares timesteps and latents and runs the denoising loop (text-to-image, or image-to-image "
        "when the state holds image_latents from SDXL VAE Encoder). Shows per-step progress and can be interrupted.",
        inputs=[*SAMPLING, "strength", "latents"],
        outputs=["latents"],
    ),
    BlockNodeDefinition(
        "MDiff_SDXLDecoder",
        AUTO_BLOCKS.sub_blocks["decode"],
        "SDXL VAE Decoder",
        CATEGORY,
        description="Decodes latents into a ComfyUI IMAGE (for Preview Image / Save Image).",
        inputs=["latents"],
        outputs=["images"],
        fixed_inputs=IMAGE_OUTPUT,
    ),
    BlockNodeDefinition(
        "MDiff_SDXLText2Image",
        AUTO_BLOCKS.get_workflow("text2image"),
        "SDXL Text to Image",
        CATEGORY,
        description="The whole SDXL text2image workflow in one node: text encoder, denoise loop, decoder.",
        inputs=[*PROMPTS, *SAMPLING],
        outputs=["images"],
        fixed_inputs=IMAGE_OUTPUT,
        component_inputs=GUIDER_INPUTS,
    ),
    BlockNodeDefinition(
        "MDiff_SDXLImage2Image",
        AUTO_BLOCKS.get_workflow("image2image"),
        "SDXL Image to Image",
        CATEGORY,
        description="The whole SDXL image2image workflow in one node: text encoder, VAE encoder, denoise, decoder.",
        inputs=[*PROMPTS, "image", "strength", *SAMPLING],
        outputs=["images"],
        fixed_inputs=IMAGE_OUTPUT,
        component_inputs=GUIDER_INPUTS,
    ),
]

SDXL_NODES = [make_block_node(definition) for definition in SDXL_DEFINITIONS]
