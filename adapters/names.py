"""The name table: what the pack knows about diffusers parameter names that type hints do not decide.

Hundreds of preset inputs carry no type hint, and many carry no description. The names below are
generic diffusers parameter names (shared by every model family through diffusers' own
INPUT_PARAM_TEMPLATES and conventions), so this table names no model family. A family-specific
rule belongs in `nodes/`, added with `SocketMapping.extended(...)`.
"""

from __future__ import annotations

from .convert import frames_to_pil_list, seed_to_generator
from .socket_types import DTYPE, IMAGE, TENSOR
from .spec import NameRule

VIDEO_OUTPUT_NAMES = ("videos",)  # decoded video frames (also given as a VIDEO output)
AUDIO_OUTPUT_NAMES = ("audio", "audios", "sound")  # decoded waveforms

# Largest value ComfyUI's INT widget handles for seeds (the core KSampler uses the same bound).
MAX_SEED = 0xFFFFFFFFFFFFFFFF

_INT = {"min": 0, "max": 0x7FFFFFFF, "step": 1}
_TEXT = {"default": "", "multiline": True}
_SIZE = {"default": 0, "min": 0, "max": 16384, "step": 8}
# A guidance scale's widget (the catalog gives each guider one, with the guider's own default).
GUIDANCE_OPTIONS = {"default": 5.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}

DEFAULT_NAME_RULES: dict[str, NameRule] = {
    "prompt": NameRule("STRING", _TEXT, description="The prompt to guide generation."),
    "prompt_2": NameRule("STRING", _TEXT, unset="", tooltip="Empty: not set (the model uses `prompt`)."),
    "negative_prompt": NameRule("STRING", _TEXT, unset="", tooltip="Empty: no negative prompt."),
    "negative_prompt_2": NameRule("STRING", _TEXT, unset="", tooltip="Empty: not set."),
    "prompt_3": NameRule("STRING", _TEXT, unset="", tooltip="Empty: not set (the model uses `prompt`)."),
    "negative_prompt_3": NameRule("STRING", _TEXT, unset="", tooltip="Empty: not set."),
    "height": NameRule("INT", _SIZE, unset=0, tooltip="0: the model's default size."),
    "width": NameRule("INT", _SIZE, unset=0, tooltip="0: the model's default size."),
    "num_inference_steps": NameRule(
        "INT", {"default": 50, "min": 1, "max": 10000, "step": 1}, description="Number of denoising steps."
    ),
    "num_images_per_prompt": NameRule(
        "INT", {"default": 1, "min": 1, "max": 4096, "step": 1}, description="Number of images to make per prompt."
    ),
    "guidance_scale": NameRule("FLOAT", GUIDANCE_OPTIONS, description="Classifier-free guidance scale."),
    "strength": NameRule(
        "FLOAT",
        {"default": 0.3, "min": 0.0, "max": 1.0, "step": 0.01},
        description="Image-to-image: how much to change the input image (0 keeps it, 1 replaces it).",
    ),
    "eta": NameRule(
        "FLOAT",
        {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01},
        description="DDIM eta: the amount of fresh noise per step (0 is deterministic).",
    ),
    "generator": NameRule(
        "INT",
        {"default": 0, "min": 0, "max": MAX_SEED, "step": 1, "control_after_generate": True},
        name="seed",
        to_block=seed_to_generator,
        tooltip="Seed of the random noise; a fresh torch.Generator is made from it on every run.",
    ),
    "image": NameRule(IMAGE, description="The input image."),
    "mask_image": NameRule(IMAGE, description="The mask image."),
    "control_image": NameRule(IMAGE, description="The control image."),
    "images": NameRule(IMAGE, description="The generated images."),
    "videos": NameRule(IMAGE, description="The generated video frames."),
    "video": NameRule(IMAGE, to_block=frames_to_pil_list, description="The input video (frames)."),
    "output_type": NameRule("STRING", {"default": "pil"}),
    "batch_size": NameRule("INT", _INT, description="Number of samples in the batch."),
    "latents": NameRule(TENSOR, description="Latents."),
    "image_latents": NameRule(TENSOR, description="Latents of the input image."),
    "timesteps": NameRule(TENSOR, description="Denoising timesteps."),
    "sigmas": NameRule(TENSOR, description="Noise levels of the denoising schedule."),
    "dtype": NameRule(DTYPE, description="Data type of the model's tensors."),
    "prompt_embeds": NameRule(TENSOR, description="Text embeddings of the prompt."),
    "negative_prompt_embeds": NameRule(TENSOR, description="Text embeddings of the negative prompt."),
    "pooled_prompt_embeds": NameRule(TENSOR, description="Pooled text embeddings of the prompt."),
    "negative_pooled_prompt_embeds": NameRule(TENSOR, description="Pooled text embeddings of the negative prompt."),
    "max_sequence_length": NameRule(
        "INT", {"min": 1, "max": 65536, "step": 1}, description="Longest prompt, in tokens, the text encoder reads."
    ),
    "num_frames": NameRule(
        "INT",
        {"default": 0, "min": 0, "max": 4096, "step": 1},
        unset=0,
        tooltip="0: the model's default length.",
        description="Number of video frames to generate.",
    ),
    "num_videos_per_prompt": NameRule(
        "INT", {"min": 1, "max": 4096, "step": 1}, description="Number of videos to make per prompt."
    ),
    "frame_rate": NameRule("FLOAT", description="Frames per second of the video."),
    "fps": NameRule("INT", description="Frames per second of the video."),
    "max_area": NameRule(
        "INT",
        {"min": 1, "max": 16384 * 16384, "step": 1},
        description="Largest image area (height x width, in pixels) to work at.",
    ),
    "decode_timestep": NameRule("FLOAT", description="Timestep the VAE decoder is conditioned on."),
    "controlnet_conditioning_scale": NameRule("FLOAT", description="How strongly the ControlNet steers generation."),
    "control_guidance_start": NameRule("FLOAT", description="Fraction of the steps after which ControlNet starts."),
    "control_guidance_end": NameRule("FLOAT", description="Fraction of the steps after which ControlNet stops."),
    "guess_mode": NameRule("BOOLEAN", description="ControlNet guess mode: follow the control image without a prompt."),
    "aesthetic_score": NameRule("FLOAT", description="Aesthetic-score micro-conditioning of the prompt."),
    "negative_aesthetic_score": NameRule("FLOAT", description="Aesthetic-score micro-conditioning of the negative."),
    "denoising_start": NameRule("FLOAT", description="Fraction of the schedule at which denoising starts."),
    "denoising_end": NameRule("FLOAT", description="Fraction of the schedule at which denoising stops."),
    "decode_noise_scale": NameRule("FLOAT", description="Noise mixed into the latents at the decode timestep."),
    "image_embeds": NameRule(TENSOR, description="Image-encoder embeddings of the conditioning image."),
}
