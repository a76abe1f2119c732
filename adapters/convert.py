"""Value conversions between ComfyUI's own types and what diffusers blocks take and give.

ComfyUI types: IMAGE is a float tensor [B, H, W, C] in [0, 1]; MASK a float tensor [B, H, W] (or
[H, W]) in [0, 1]. Diffusers blocks take PIL images (or lists of them) and give PIL images, numpy
arrays or tensors, depending on `output_type`. Every converter has the signature
`(value, param) -> value`, where `param` is the diffusers `InputParam`/`OutputParam`.

Pure Python and torch: no ComfyUI import.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

Converter = Callable[[Any, Any], Any]  # (value, param) -> value


def is_list_hint(hint: Any) -> bool:
    if hint in (list, tuple):
        return True
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(is_list_hint(arg) for arg in typing.get_args(hint))
    return False


def _wants_list(param: Any) -> bool:
    return is_list_hint(getattr(param, "type_hint", None))


def lines_to_list(value: Any, param: Any) -> Any:
    """A STRING widget feeding a list-typed parameter: one item per non-empty line."""
    if isinstance(value, str) and _wants_list(param):
        return [line for line in value.splitlines() if line.strip()]
    return value


def _one_or_list(images: list[Image.Image], param: Any) -> Any:
    if len(images) == 1 and not _wants_list(param):
        return images[0]
    return images


def image_to_pil(value: Any, param: Any) -> Any:
    """ComfyUI IMAGE [B, H, W, C] -> one PIL image, or a list when the batch has several or the
    parameter is list-typed."""
    if not isinstance(value, torch.Tensor):
        return value
    batch = value.detach().to("cpu", torch.float32).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    images = [Image.fromarray(frame[..., :3] if frame.shape[-1] >= 3 else frame[..., 0]) for frame in batch]
    return _one_or_list(images, param)


def frames_to_pil_list(value: Any, param: Any) -> Any:
    """ComfyUI IMAGE frames [F, H, W, C] -> a list of PIL frames (a video input, even of one frame)."""
    images = image_to_pil(value, param)
    return [images] if isinstance(images, Image.Image) else images


def mask_to_pil(value: Any, param: Any) -> Any:
    """ComfyUI MASK [B, H, W] or [H, W] (1 = the area to change) -> a grayscale PIL image (or a list),
    the form diffusers' mask processors take."""
    if not isinstance(value, torch.Tensor):
        return value
    batch = value if value.ndim == 3 else value[None]
    pixels = batch.detach().to("cpu", torch.float32).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    return _one_or_list([Image.fromarray(frame, mode="L") for frame in pixels], param)


def to_comfy_image(value: Any, param: Any = None) -> Any:
    """PIL image(s), numpy arrays [B, H, W, C] in [0, 1] or tensors [B, C, H, W] -> ComfyUI IMAGE.

    Video frames (numpy [B, F, H, W, C], tensors [B, C, F, H, W], or lists of frame lists) become one
    IMAGE batch of all frames, the way ComfyUI's video nodes pass frames."""
    if value is None:
        return None
    if isinstance(value, Image.Image):
        value = [value]
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple, np.ndarray, torch.Tensor)):
        frames = [to_comfy_image(item) for item in value]  # one entry per video of a batch
        return torch.cat([f for f in frames if isinstance(f, torch.Tensor)]) if frames else value
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], Image.Image):
        arrays = [np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0 for img in value]
        return torch.from_numpy(np.stack(arrays))
    if isinstance(value, np.ndarray):
        array = value.reshape(-1, *value.shape[-3:]) if value.ndim >= 4 else value[None]
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if isinstance(value, torch.Tensor):
        tensor = value
        if tensor.ndim == 5:  # [B, C, F, H, W] video -> [B * F, C, H, W]
            tensor = tensor.permute(0, 2, 1, 3, 4).reshape(-1, *tensor.shape[1:2], *tensor.shape[3:])
        tensor = tensor if tensor.ndim == 4 else tensor[None]
        if tensor.shape[-1] not in (1, 3, 4) and tensor.shape[1] in (1, 3, 4):
            tensor = tensor.permute(0, 2, 3, 1)  # channels-first (diffusers "pt") -> channels-last
        return tensor.to(torch.float32).contiguous()
    return value


def seed_to_generator(value: Any, param: Any) -> Any:
    """A seed widget becomes a fresh CPU `torch.Generator` on every execution, so a cached upstream
    node can never hand a half-consumed generator to the next run."""
    if isinstance(value, torch.Generator):
        return value
    return torch.Generator(device="cpu").manual_seed(int(value))
