"""The per-family table: only what cannot be derived from diffusers.

For each family folder of `diffusers.modular_pipelines`: its label (category `Modular Diffusers/<label>`),
readable names for its top-level blocks classes, the ComfyUI latent format for previews, how to
turn its in-loop latents into an image-shaped preview tensor, extra name rules, and node overrides
(released ids and widget lists that must not change). A family missing here still gets nodes, with
the generic policy; `tests/unit/test_catalog.py` names such families so they get an entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..adapters.sockets import DEFAULT_MAPPING, NameRule, SocketMapping
from . import previews
from .sdxl import sdxl_nodes


@dataclass(frozen=True)
class NodeOverride:
    """Changes to one generated node (a released id, its widget list, ...). None: generated."""

    node_id: str | None = None
    display_name: str | None = None
    description: str | None = None
    inputs: Sequence[str] | None = None
    outputs: Sequence[str] | None = None
    fixed_inputs: Mapping[str, Any] = field(default_factory=dict)
    component_inputs: Mapping[str, Mapping[str, NameRule]] | None = None


@dataclass(frozen=True)
class FamilySpec:
    label: str
    class_labels: Mapping[str, str] = field(default_factory=dict)
    class_node_names: Mapping[str, str] = field(default_factory=dict)  # the node of a class without workflows
    latent_format: str | None = None  # a class name in comfy.latent_formats
    preview_latents: Callable[[Any, Any], Any] | None = None  # (latents, block_state) -> [B, C, (F,) H, W]
    mapping: SocketMapping = DEFAULT_MAPPING
    fps: float = 24.0  # frame rate of the VIDEO output when the state does not give one
    proven: str = ""  # what runs end to end in the tests on a tiny fixture ("" = schema-tested only)
    nodes: Mapping[tuple[str, str | None], NodeOverride] = field(default_factory=dict)


FAMILIES: dict[str, FamilySpec] = {
    "anima": FamilySpec("Anima", {"AnimaAutoBlocks": "Anima"}),
    "cosmos": FamilySpec(
        "Cosmos",
        {"Cosmos3OmniBlocks": "Cosmos 3 Omni", "Cosmos3DistilledBlocks": "Cosmos 3 Distilled"},
    ),
    "echo": FamilySpec("Echo", {"EchoBlocks": "Echo"}, {"EchoBlocks": "Generate"}),
    "ernie_image": FamilySpec("ERNIE-Image", {"ErnieImageAutoBlocks": "ERNIE-Image"}),
    "flux": FamilySpec(
        "Flux",
        {"FluxAutoBlocks": "Flux", "FluxKontextAutoBlocks": "Flux Kontext"},
        latent_format="Flux",
        proven="Flux text2image (tiny-flux); Flux Kontext image_conditioned (tiny-flux-kontext)",
        preview_latents=previews.unpack_2x2_patches,
    ),
    "flux2": FamilySpec(
        "Flux.2",
        {
            "Flux2AutoBlocks": "Flux.2",
            "Flux2KleinAutoBlocks": "Flux.2 Klein",
            "Flux2KleinBaseAutoBlocks": "Flux.2 Klein Base",
        },
        latent_format="Flux2",
    ),
    "flux3": FamilySpec("Flux.3", {"Flux3AutoBlocks": "Flux.3", "Flux3DistilledAutoBlocks": "Flux.3 Distilled"}),
    "helios": FamilySpec(
        "Helios",
        {
            "HeliosAutoBlocks": "Helios",
            "HeliosPyramidAutoBlocks": "Helios Pyramid",
            "HeliosPyramidDistilledAutoBlocks": "Helios Pyramid Distilled",
        },
    ),
    "hunyuan_video1_5": FamilySpec(
        "HunyuanVideo 1.5", {"HunyuanVideo15AutoBlocks": "HunyuanVideo 1.5"}, latent_format="HunyuanVideo15"
    ),
    "ideogram4": FamilySpec("Ideogram 4", {"Ideogram4AutoBlocks": "Ideogram 4"}),
    "krea2": FamilySpec("Krea 2", {"Krea2AutoBlocks": "Krea 2", "Krea2TurboAutoBlocks": "Krea 2 Turbo"}),
    "ltx": FamilySpec("LTX-Video", {"LTXAutoBlocks": "LTX-Video"}, latent_format="LTXV", fps=25.0),
    "ltx2": FamilySpec("LTX-2", {"LTX2AutoBlocks": "LTX-2", "LTX25AutoBlocks": "LTX-2.5"}),
    "minimax_h3": FamilySpec("MiniMax H3", {"MiniMaxH3Blocks": "MiniMax H3"}),
    "minimax_music3": FamilySpec(
        "MiniMax Music 3", {"MiniMaxMusic3Blocks": "MiniMax Music 3"}, {"MiniMaxMusic3Blocks": "Text to Music"}
    ),
    "qwenimage": FamilySpec(
        "Qwen-Image",
        {
            "QwenImageAutoBlocks": "Qwen-Image",
            "QwenImageEditAutoBlocks": "Qwen-Image Edit",
            "QwenImageEditPlusAutoBlocks": "Qwen-Image Edit Plus",
            "QwenImageLayeredAutoBlocks": "Qwen-Image Layered",
        },
        {"QwenImageEditPlusAutoBlocks": "Image Edit", "QwenImageLayeredAutoBlocks": "Layered Image"},
    ),
    "qwenimage21": FamilySpec(
        "Qwen-Image 2.1",
        {"QwenImage21AutoBlocks": "Qwen-Image 2.1", "QwenImage21TurboAutoBlocks": "Qwen-Image 2.1 Turbo"},
    ),
    "stable_diffusion_3": FamilySpec("SD3", {"StableDiffusion3AutoBlocks": "SD3"}, latent_format="SD3"),
    "stable_diffusion_xl": FamilySpec(
        "SDXL",
        {"StableDiffusionXLAutoBlocks": "SDXL"},
        latent_format="SDXL",
        nodes=sdxl_nodes(),
        proven="text2image, image2image (tiny-sdxl)",
    ),
    "wan": FamilySpec(
        "Wan",
        {
            "WanBlocks": "Wan 2.1",
            "WanImage2VideoAutoBlocks": "Wan 2.1 I2V",
            "Wan22Blocks": "Wan 2.2",
            "Wan22Image2VideoBlocks": "Wan 2.2 I2V",
            "Wan22VaceBlocks": "Wan 2.2 VACE",
        },
        {
            "WanBlocks": "Text to Video",
            "Wan22Blocks": "Text to Video",
            "Wan22Image2VideoBlocks": "Image to Video",
            "Wan22VaceBlocks": "Video Edit (VACE)",
        },
        latent_format="Wan21",
        fps=16.0,
        proven="Wan 2.1 text-to-video (tiny-wan); Wan 2.2 text-to-video, two transformers (tiny-wan22)",
    ),
    "wan_animate_2": FamilySpec(
        "Wan-Animate 2",
        {"WanAnimate2Blocks": "Wan-Animate 2", "WanAnimate2DistilledBlocks": "Wan-Animate 2 Distilled"},
        {"WanAnimate2Blocks": "Animate", "WanAnimate2DistilledBlocks": "Animate"},
    ),
    "z_image": FamilySpec(
        "Z-Image", {"ZImageAutoBlocks": "Z-Image"}, latent_format="Flux", proven="text2image (tiny-z-image)"
    ),
}
