"""Decoded video and audio as ComfyUI's own VIDEO and AUDIO values.

A decoder's `videos` output (frames, with `output_type="np"`: [B, F, H, W, C]) becomes an IMAGE
batch of all frames (see `convert.to_comfy_image`) plus a VIDEO output (frames, frame rate and, when
the block also made audio, the sound), so core Save Image, Save Video and Save Audio take them
directly. Audio outputs (`audio`, `audios`, `sound`) become ComfyUI AUDIO:
`{"waveform": [B, C, T] float32 on the CPU, "sample_rate": int}`.

Frame rate and sample rate come from the pipeline state when a block put them there (`fps`,
`frame_rate`; `sampling_rate`, `sample_rate`), else from the components' configs (a vocoder's
`output_sampling_rate`, a pipeline's `sampling_rate`), else from the node definition's default.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from comfy_api.latest import InputImpl, Types

FPS_KEYS = ("fps", "frame_rate")
SAMPLE_RATE_KEYS = ("sampling_rate", "sample_rate")
COMPONENT_SAMPLE_RATE_KEYS = ("output_sampling_rate", "sampling_rate", "sample_rate")


@dataclass(frozen=True)
class MediaDefaults:
    """What a node uses when neither the state nor the components say: the video frame rate (a
    family's usual one) and the audio sample rate (None: an audio output without one is an error)."""

    fps: float = 24.0
    sample_rate: int | None = None


def to_comfy_audio(value: Any, sample_rate: int) -> dict[str, Any] | None:
    """A waveform tensor or array ([T], [C, T] or [B, C, T]) -> ComfyUI AUDIO."""
    if value is None or isinstance(value, dict):
        return value
    waveform = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
    waveform = waveform.detach().to("cpu", torch.float32)
    while waveform.ndim < 3:
        waveform = waveform[None]
    return {"waveform": waveform.contiguous(), "sample_rate": int(sample_rate)}


def to_comfy_video(frames: torch.Tensor, fps: float, audio: dict[str, Any] | None = None) -> Any:
    """An IMAGE frame batch [F, H, W, C] -> ComfyUI VIDEO (what core Save Video takes)."""
    components = Types.VideoComponents(
        images=frames.detach().to("cpu", torch.float32),
        frame_rate=Fraction(fps).limit_denominator(1001),
        audio=audio,
    )
    return InputImpl.VideoFromComponents(components)


def find_frame_rate(state: Any, defaults: MediaDefaults) -> float:
    value = _first_positive((state.get(key) for key in FPS_KEYS), numbers.Real)
    return float(value) if value is not None else defaults.fps


def find_sample_rate(state: Any, pipeline: Any, defaults: MediaDefaults) -> int:
    value = _first_positive((state.get(key) for key in SAMPLE_RATE_KEYS), numbers.Integral)
    if value is None:
        configs = [getattr(component, "config", None) for component in getattr(pipeline, "components", {}).values()]
        keys = COMPONENT_SAMPLE_RATE_KEYS
        value = _first_positive((_config_value(config, key) for config in configs for key in keys), numbers.Integral)
    if value is None:
        value = _first_positive([_pipeline_sampling_rate(pipeline)], numbers.Integral)
    if value is None and defaults.sample_rate is None:
        raise ValueError("the block made audio but no sample rate is known (not in the state nor the components)")
    return int(value if value is not None else defaults.sample_rate)


def _first_positive(values: Any, kind: type) -> Any:
    return next((value for value in values if isinstance(value, kind) and value > 0), None)


def _pipeline_sampling_rate(pipeline: Any) -> Any:
    try:
        return getattr(pipeline, "sampling_rate", None)
    except Exception:  # a pipeline property that needs a component the node did not load
        return None


def _config_value(config: Any, key: str) -> Any:
    if isinstance(config, dict):
        return config.get(key)
    return getattr(config, key, None)
