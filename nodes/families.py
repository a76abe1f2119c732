"""The per-family table: only what cannot be derived from diffusers (the fields: `family_spec.FamilySpec`).

One entry per family folder of `diffusers.modular_pipelines`. A family missing here still gets nodes,
with the generic policy (`family_spec()`); `tests/unit/nodes/test_catalog.py` names such families so
they get an entry.
"""

from __future__ import annotations

from ..adapters.sockets import DEFAULT_MAPPING
from ..adapters.spec import NameRule
from . import previews
from .family_spec import FamilySpec, NodeOverride
from .naming import readable
from .sdxl import sdxl_nodes

FAMILIES: dict[str, FamilySpec] = {
    "anima": FamilySpec(label="Anima", class_labels={"AnimaAutoBlocks": "Anima"}),
    "cosmos": FamilySpec(
        label="Cosmos",
        class_labels={"Cosmos3OmniBlocks": "Cosmos 3 Omni", "Cosmos3DistilledBlocks": "Cosmos 3 Distilled"},
    ),
    "echo": FamilySpec(label="Echo", class_labels={"EchoBlocks": "Echo"}, class_node_names={"EchoBlocks": "Generate"}),
    "ernie_image": FamilySpec(label="ERNIE-Image", class_labels={"ErnieImageAutoBlocks": "ERNIE-Image"}),
    "flux": FamilySpec(
        label="Flux",
        class_labels={"FluxAutoBlocks": "Flux", "FluxKontextAutoBlocks": "Flux Kontext"},
        latent_format="Flux",
        lora_signs=("double_blocks", "single_blocks", "single_transformer_blocks"),
        checkpoint_types=("flux-dev", "flux-fill", "flux-depth", "flux-schnell"),
        proven="Flux text2image (tiny-flux); Flux Kontext image_conditioned (tiny-flux-kontext)",
        preview_latents=previews.unpack_2x2_patches,
    ),
    "flux2": FamilySpec(
        label="Flux.2",
        class_labels={
            "Flux2AutoBlocks": "Flux.2",
            "Flux2KleinAutoBlocks": "Flux.2 Klein",
            "Flux2KleinBaseAutoBlocks": "Flux.2 Klein Base",
        },
        latent_format="Flux2",
        checkpoint_types=("flux-2-dev",),
        proven="Flux.2 Klein text2image (tiny-flux2-klein)",
        preview_latents=previews.tokens_to_grid,
    ),
    "flux3": FamilySpec(
        label="Flux.3",
        class_labels={"Flux3AutoBlocks": "Flux.3", "Flux3DistilledAutoBlocks": "Flux.3 Distilled"},
        checkpoint_types=("flux-3-image", "flux-3-image-distilled"),
    ),
    "helios": FamilySpec(
        label="Helios",
        class_labels={
            "HeliosAutoBlocks": "Helios",
            "HeliosPyramidAutoBlocks": "Helios Pyramid",
            "HeliosPyramidDistilledAutoBlocks": "Helios Pyramid Distilled",
        },
        latent_format="Wan21",
        fps=24.0,
        proven="Helios text-to-video, chunk by chunk (tiny-helios)",
    ),
    "hunyuan_video1_5": FamilySpec(
        label="HunyuanVideo 1.5",
        class_labels={"HunyuanVideo15AutoBlocks": "HunyuanVideo 1.5"},
        latent_format="HunyuanVideo15",
        fps=24.0,  # the rate HunyuanVideo 1.5 is trained and sampled at (its 121-frame default is 5 s)
        proven="HunyuanVideo 1.5 text-to-video (tiny-hunyuan-video15)",
    ),
    "ideogram4": FamilySpec(label="Ideogram 4", class_labels={"Ideogram4AutoBlocks": "Ideogram 4"}),
    "krea2": FamilySpec(
        label="Krea 2", class_labels={"Krea2AutoBlocks": "Krea 2", "Krea2TurboAutoBlocks": "Krea 2 Turbo"}
    ),
    "ltx": FamilySpec(
        label="LTX-Video",
        class_labels={"LTXAutoBlocks": "LTX-Video"},
        latent_format="LTXV",
        fps=25.0,
        checkpoint_types=("ltx-video", "ltx-video-0.9.1", "ltx-video-0.9.5", "ltx-video-0.9.7"),
        proven="LTX-Video text-to-video (tiny-ltx)",
        preview_latents=previews.unpack_video_tokens,
    ),
    "ltx2": FamilySpec(label="LTX-2", class_labels={"LTX2AutoBlocks": "LTX-2", "LTX25AutoBlocks": "LTX-2.5"}),
    "minimax_h3": FamilySpec(
        label="MiniMax H3",
        class_labels={"MiniMaxH3Blocks": "MiniMax H3"},
        words={
            "t2va": "Text to Video+Audio",
            "fl2va": "First/Last Frame to Video+Audio",
            "ref2va": "Reference to Video+Audio",
        },
    ),
    "minimax_music3": FamilySpec(
        label="MiniMax Music 3",
        class_labels={"MiniMaxMusic3Blocks": "MiniMax Music 3"},
        class_node_names={"MiniMaxMusic3Blocks": "Text to Music"},
        # The lyrics are a required string without a default, which the generic policy would not show.
        mapping=DEFAULT_MAPPING.extended({"lyrics": NameRule("STRING", {"default": "", "multiline": True})}),
        # One generator runs through the pipeline, as in diffusers' one call: the semantic generator samples the
        # codes from it and the denoise step draws its noise from what is left. So the seed is the Semantic
        # Generator node's; a seed widget of its own on Denoise would start a second stream, and the block
        # graph would no longer equal the one-node workflow. No previews: ComfyUI has no latent format for its
        # 1D Flow-VAE latents. The AUDIO's sample rate is the vocoder's.
        nodes={("MiniMaxMusic3Blocks", "denoise"): NodeOverride(inputs=["frame_hiddens", "num_inference_steps"])},
        proven="text2music (tiny-minimax-music3)",
    ),
    "qwenimage": FamilySpec(
        label="Qwen-Image",
        class_labels={
            "QwenImageAutoBlocks": "Qwen-Image",
            "QwenImageEditAutoBlocks": "Qwen-Image Edit",
            "QwenImageEditPlusAutoBlocks": "Qwen-Image Edit Plus",
            "QwenImageLayeredAutoBlocks": "Qwen-Image Layered",
        },
        class_node_names={"QwenImageEditPlusAutoBlocks": "Image Edit", "QwenImageLayeredAutoBlocks": "Layered Image"},
        latent_format="Wan21",
        preview_latents=previews.unpack_2x2_patches,
        # The inpainting decoders refuse any output_type but "pil" whenever the encoder's mask-overlay kwargs
        # are in the state (diffusers 0.42.1 checks the dict, not its crops_coords): all of them decode to PIL.
        output_type="pil",
        proven="text2image, inpainting (tiny-qwenimage); Qwen-Image Edit image_conditioned (tiny-qwenimage-edit)",
    ),
    "qwenimage21": FamilySpec(
        label="Qwen-Image 2.1",
        class_labels={"QwenImage21AutoBlocks": "Qwen-Image 2.1", "QwenImage21TurboAutoBlocks": "Qwen-Image 2.1 Turbo"},
    ),
    "stable_diffusion_3": FamilySpec(
        label="SD3",
        class_labels={"StableDiffusion3AutoBlocks": "SD3"},
        latent_format="SD3",
        checkpoint_types=("sd3", "sd35_large", "sd35_medium"),
        proven="text2image (tiny-sd3)",
    ),
    "stable_diffusion_xl": FamilySpec(
        label="SDXL",
        class_labels={"StableDiffusionXLAutoBlocks": "SDXL"},
        latent_format="SDXL",
        lora_signs=("lora_unet_", "unet.", "lora_te1_", "lora_te2_"),
        checkpoint_types=("xl_base", "xl_refiner", "xl_inpaint", "playground-v2-5"),
        denoiser_file_prefix="model.diffusion_model.",
        batched_guidance=True,
        nodes=sdxl_nodes(),
        proven="text2image, image2image (tiny-sdxl)",
    ),
    "wan": FamilySpec(
        label="Wan",
        class_labels={
            "WanBlocks": "Wan 2.1",
            "WanImage2VideoAutoBlocks": "Wan 2.1 I2V",
            "Wan22Blocks": "Wan 2.2",
            "Wan22Image2VideoBlocks": "Wan 2.2 I2V",
            "Wan22VaceBlocks": "Wan 2.2 VACE",
        },
        class_node_names={
            "WanBlocks": "Text to Video",
            "Wan22Blocks": "Text to Video",
            "Wan22Image2VideoBlocks": "Image to Video",
            "Wan22VaceBlocks": "Video Edit (VACE)",
        },
        latent_format="Wan21",
        fps=16.0,
        lora_signs=("blocks.0.cross_attn", "blocks.0.self_attn", "blocks.0.ffn"),
        words={"flf2v": "First/Last Frame to Video"},
        proven="Wan 2.1 text-to-video (tiny-wan); Wan 2.2 text-to-video, two transformers (tiny-wan22)",
    ),
    "wan_animate_2": FamilySpec(
        label="Wan-Animate 2",
        class_labels={"WanAnimate2Blocks": "Wan-Animate 2", "WanAnimate2DistilledBlocks": "Wan-Animate 2 Distilled"},
        class_node_names={"WanAnimate2Blocks": "Animate", "WanAnimate2DistilledBlocks": "Animate"},
    ),
    "z_image": FamilySpec(
        label="Z-Image",
        class_labels={"ZImageAutoBlocks": "Z-Image"},
        latent_format="Flux",
        proven="text2image (tiny-z-image)",
        checkpoint_types=("z-image-turbo",),
        batched_guidance=True,
    ),
}


def family_spec(family: str) -> FamilySpec:
    """The family's table entry, or the generic one (its label made from the folder name)."""
    return FAMILIES.get(family) or FamilySpec(label=readable(family))


def lora_family(keys: list[str]) -> str | None:
    """The family a LoRA's keys look made for (its label), by the table's `lora_signs`."""
    for spec in FAMILIES.values():
        if any(sign in key for sign in spec.lora_signs for key in keys):
            return spec.label
    return None


def checkpoint_family(model_type: str) -> str | None:
    """The family folder whose single files diffusers infers as `model_type`, if the table says."""
    return next((family for family, spec in FAMILIES.items() if model_type in spec.checkpoint_types), None)
