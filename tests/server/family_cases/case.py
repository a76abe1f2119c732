"""What one family workflow case of tests/server/test_families_server.py is, and the helpers the
per-family modules use to read a workflow's widget values into the plain-diffusers call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from comfy_harness import comfyui_dir
from comfyui_modular_diffusers.adapters.names import AUDIO_OUTPUT_NAMES
from PIL import Image, ImageOps

Workflow = dict[str, dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class Case:
    """One family workflow: a block-by-block API workflow and its one-node variant."""

    graph: str  # workflows/api/<graph>.json
    one_node: str  # workflows/api/<one_node>.json
    model: str  # the tiny model folder under models/diffusers (as the workflows name it)
    # The graph's node with the denoising loop: num_inference_steps, seed (when it has one), progress.
    denoise: str
    save: str  # the graph's SaveImage (SaveAudio for audio)
    single: str  # the one-node workflow's node: num_inference_steps, seed, progress
    single_save: str  # the one-node workflow's SaveImage (SaveAudio)
    # The plain-diffusers call that the graph makes (besides steps, generator and output type),
    # read from the graph's widget values.
    reference: Callable[[Workflow], dict[str, Any]]
    other_seeds: tuple[str, ...] = ()  # more graph nodes with a seed widget, kept equal to the denoise seed
    # Inputs of the graph's `slow_node` (default: the denoise node) that make every step slow enough (tens
    # of ms) to interrupt within one.
    slow_steps: dict[str, Any] = field(default_factory=dict)
    slow_node: str | None = None
    # The plain-diffusers output: "images" [B, H, W, 3], "videos" [B, F, H, W, 3] or an audio output
    # (the pack's AUDIO outputs: waveforms [B, C, T], saved by core Save Audio instead of Save Image).
    output: str = "images"
    video: str | None = None  # the graph's SaveVideo (of the decode node's VIDEO output)
    single_video: str | None = None  # the one-node workflow's SaveVideo
    fps: Fraction | None = None  # the frame rate of the saved videos (the family's)
    non_square_preview: bool = True  # also check previews at 64x128 (not for families sized by an input image)
    # Latent previews at every step; False where ComfyUI has no latent format for the family's latents
    # (the run then sends none, and must not fail for it).
    previews: bool = True
    sample_rate: int | None = None  # the sample rate of the saved audio (the model's)
    # (pipe, plain diffusers' `latents` output) -> the loop's final latents, which the last preview shows,
    # where the family's decoder step leaves other latents in the state (Qwen-Image: the VAE's, denormalized).
    loop_latents: Callable[[Any, torch.Tensor], torch.Tensor] | None = None
    # How often the denoising loop runs the whole schedule per prompt (once per chunk, for a family that
    # denoises a video chunk by chunk): progress and previews count steps x chunks.
    chunks: int = 1

    def __str__(self) -> str:
        return self.graph

    @property
    def is_audio(self) -> bool:
        return self.output in AUDIO_OUTPUT_NAMES


def inputs_of(workflow: Workflow, class_suffix: str) -> dict[str, Any]:
    """The inputs of the first node whose class ends with `class_suffix`."""
    return next(node["inputs"] for node in workflow.values() if node["class_type"].endswith(class_suffix))


def widgets(graph: Workflow, **names: tuple[str, ...]) -> dict[str, Any]:
    """The named widget values of the graph's nodes, by class suffix without its underscore:
    `widgets(graph, text_encoder=("prompt",), denoise=("height", "width"))`."""
    return {name: inputs_of(graph, f"_{suffix}")[name] for suffix, keys in names.items() for name in keys}


TEXT = ("prompt", "negative_prompt", "max_sequence_length")  # a text encoder node's usual widgets
SIZE = ("height", "width")


def loaded_image(name: str, scale: dict[str, Any]) -> Image.Image:
    """What core LoadImage + ImageScale hand to the pack, as the PIL image the pack gives diffusers."""
    from comfy.utils import common_upscale
    from comfyui_modular_diffusers.adapters.convert import image_to_pil

    pixels = np.asarray(ImageOps.exif_transpose(Image.open(comfyui_dir() / "input" / name)).convert("RGB"))
    image = torch.from_numpy(pixels.astype(np.float32) / 255.0)[None]
    method, crop = scale["upscale_method"], scale["crop"]
    image = common_upscale(image.movedim(-1, 1), scale["width"], scale["height"], method, crop).movedim(1, -1)
    return image_to_pil(image, None)
