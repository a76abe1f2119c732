"""Decoded video and audio as ComfyUI's own IMAGE, VIDEO and AUDIO values."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from comfyui_modular_diffusers.adapters import media
from comfyui_modular_diffusers.adapters.convert import to_comfy_image
from comfyui_modular_diffusers.adapters.sockets import DEFAULT_MAPPING
from diffusers.modular_pipelines import OutputParam, PipelineState


def test_video_frames_become_one_image_batch():
    video = np.random.default_rng(0).random((2, 5, 16, 24, 3), dtype=np.float32)  # [B, F, H, W, C]
    frames = to_comfy_image(video)
    assert frames.shape == (10, 16, 24, 3)
    assert torch.equal(frames[5], torch.from_numpy(video[1, 0]))
    channels_first = torch.from_numpy(video[:1]).permute(0, 4, 1, 2, 3)  # [B, C, F, H, W]
    assert torch.equal(to_comfy_image(channels_first), torch.from_numpy(video[0]))


def test_audio_outputs_are_typed_and_shaped():
    assert DEFAULT_MAPPING.output_socket(OutputParam("audio", type_hint=torch.Tensor)).io_type == "AUDIO"
    assert DEFAULT_MAPPING.output_socket(OutputParam("sound")).io_type == "AUDIO"
    assert DEFAULT_MAPPING.output_socket(OutputParam("videos")).io_type == "IMAGE"
    for shape in [(100,), (2, 100), (1, 2, 100)]:
        audio = media.to_comfy_audio(torch.zeros(shape, dtype=torch.bfloat16), 24000)
        assert audio["waveform"].shape[-1] == 100 and audio["waveform"].ndim == 3
        assert audio["waveform"].dtype == torch.float32 and audio["sample_rate"] == 24000


def test_rates_come_from_the_state_then_the_components_then_the_default():
    state = PipelineState()
    defaults = media.MediaDefaults(fps=16.0)
    assert media.find_frame_rate(state, defaults) == 16.0
    state.set("frame_rate", 25)
    assert media.find_frame_rate(state, defaults) == 25.0
    vocoder = SimpleNamespace(config={"output_sampling_rate": 48000})
    pipeline = SimpleNamespace(components={"vocoder": vocoder})
    assert media.find_sample_rate(PipelineState(), pipeline, defaults) == 48000
    state.set("sampling_rate", 32000)
    assert media.find_sample_rate(state, pipeline, defaults) == 32000
    with pytest.raises(ValueError, match="no sample rate"):
        media.find_sample_rate(PipelineState(), SimpleNamespace(components={}), defaults)


def test_video_value_for_save_video():
    frames = torch.rand(5, 16, 24, 3)
    video = media.to_comfy_video(frames, 16.0, media.to_comfy_audio(torch.zeros(2, 800), 8000))
    assert video.get_dimensions() == (24, 16)
    components = video.get_components()
    assert components.frame_rate == Fraction(16) and torch.equal(components.images, frames)
