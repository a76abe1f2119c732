"""Socket mapping: which ComfyUI socket or widget stands for a diffusers `InputParam` / `OutputParam`.

The mapping is a table of rules tried in a fixed order (see `SocketMapping.input_socket`):

1. the parameter's `type_hint` (unions and generics read with `typing.get_origin/get_args`);
2. the parameter's name (`NameRule` entries; hundreds of preset inputs carry no hint at all);
3. the type of the parameter's default;
4. a generic namespaced socket.

Widget options (default, min, max, step, ...) come from the name table when it has an entry, then
from the parameter's own default, so a hinted `int` still gets sensible bounds. Code outside this
module (for example `nodes/`) extends the table with `SocketMapping.extended(...)` instead of
editing it.

This module is pure Python: it does not import ComfyUI, so it can be unit tested on its own.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

# Every custom socket type of this pack starts with this prefix, so they never collide with core
# types (LATENT, IMAGE, ...) or with other packs.
SOCKET_PREFIX = "MDIFF_"
STATE = SOCKET_PREFIX + "STATE"
COMPONENTS = SOCKET_PREFIX + "COMPONENTS"
TENSOR = SOCKET_PREFIX + "TENSOR"
DTYPE = SOCKET_PREFIX + "DTYPE"
VALUE = SOCKET_PREFIX + "VALUE"  # anything the table cannot type more precisely

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")
IMAGE = "IMAGE"  # ComfyUI's own image batch: float tensor [B, H, W, C] in [0, 1]

# Largest value ComfyUI's INT widget handles for seeds (the core KSampler uses the same bound).
MAX_SEED = 0xFFFFFFFFFFFFFFFF

Converter = Callable[[Any, Any], Any]  # (value, param) -> value


@dataclass(frozen=True)
class SocketSpec:
    """How one parameter appears on a node.

    `io_type` is a ComfyUI type name. For the widget types (INT, FLOAT, STRING, BOOLEAN) `options`
    holds the widget's keyword arguments (V3 names: default, min, max, step, multiline, ...); a
    widget without a default becomes an input-only socket of that type. `name` renames the socket
    (e.g. `generator` is shown as a `seed` widget). `to_block` turns the socket's value into the
    value the block expects; `from_block` does the reverse for outputs. `unset` is the widget value
    that means "not given" (for example an empty prompt): the node then takes the value from the
    incoming state, else the block's default.
    """

    io_type: str
    options: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    to_block: Converter | None = None
    from_block: Converter | None = None
    unset: Any = None
    tooltip: str | None = None

    @property
    def is_widget(self) -> bool:
        return self.io_type in WIDGET_TYPES and "default" in self.options


# ---------------------------------------------------------------------------------------------
# Converters


def lines_to_list(value: Any, param: Any) -> Any:
    """A STRING widget feeding a list-typed parameter: one item per non-empty line."""
    if isinstance(value, str) and _is_list_hint(getattr(param, "type_hint", None)):
        return [line for line in value.splitlines() if line.strip()]
    return value


def image_to_pil(value: Any, param: Any) -> Any:
    """ComfyUI IMAGE [B, H, W, C] -> one PIL image, or a list when the batch has several or the
    parameter is list-typed."""
    if not isinstance(value, torch.Tensor):
        return value
    batch = value.detach().to("cpu", torch.float32).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    images = [Image.fromarray(frame[..., :3] if frame.shape[-1] >= 3 else frame[..., 0]) for frame in batch]
    if len(images) == 1 and not _is_list_hint(getattr(param, "type_hint", None)):
        return images[0]
    return images


def to_comfy_image(value: Any, param: Any = None) -> Any:
    """PIL image(s), numpy arrays [B, H, W, C] in [0, 1] or tensors [B, C, H, W] -> ComfyUI IMAGE."""
    if value is None:
        return None
    if isinstance(value, Image.Image):
        value = [value]
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], Image.Image):
        arrays = [np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0 for img in value]
        return torch.from_numpy(np.stack(arrays))
    if isinstance(value, np.ndarray):
        array = value if value.ndim == 4 else value[None]
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if isinstance(value, torch.Tensor):
        tensor = value if value.ndim == 4 else value[None]
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


# ---------------------------------------------------------------------------------------------
# Type-hint reading


def _is_list_hint(hint: Any) -> bool:
    if hint in (list, tuple):
        return True
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_list_hint(arg) for arg in typing.get_args(hint))
    return False


def _is_pil_hint(hint: Any) -> bool:
    if isinstance(hint, str):  # the docs' seed examples write type_hint="PIL.Image"
        return hint in ("PIL.Image", "PIL.Image.Image", "Image.Image")
    return isinstance(hint, type) and issubclass(hint, Image.Image)


def _union_members(hint: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return tuple(arg for arg in typing.get_args(hint) if arg is not type(None))
    return None


def socket_type_for_hint(hint: Any) -> str | None:
    """The ComfyUI type for a type hint, or None when the hint does not decide it (None, `Any`,
    a bare `list`, ...)."""
    if hint is None or hint is Any:
        return None
    members = _union_members(hint)
    if members is not None:
        types_ = [socket_type_for_hint(member) for member in members]
        if IMAGE in types_:  # "PIL.Image | list[PIL.Image] | Tensor": an image input
            return IMAGE
        return next((t for t in types_ if t is not None), None)
    if _is_pil_hint(hint):
        return IMAGE
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        args = [arg for arg in typing.get_args(hint) if arg is not Ellipsis]
        if not args:
            return None
        inner = socket_type_for_hint(args[0])
        if inner == IMAGE:
            return IMAGE
        if inner is None or inner in WIDGET_TYPES:
            return None  # list[int], list[str]: decided by name or default
        return f"{inner}_LIST"
    if origin is not None:  # dict[str, Any] and other generics
        hint = origin
    if not isinstance(hint, type):
        return None
    if hint is bool:
        return "BOOLEAN"
    if hint is int:
        return "INT"
    if hint is float:
        return "FLOAT"
    if hint is str:
        return "STRING"
    if hint in (list, tuple):
        return None
    if issubclass(hint, torch.Tensor):
        return TENSOR
    if issubclass(hint, torch.Generator):
        return "INT"  # shown as a seed widget; see the `generator` name rule
    if hint is torch.dtype:
        return DTYPE
    return SOCKET_PREFIX + hint.__name__.upper()


def socket_type_for_default(default: Any) -> str | None:
    if isinstance(default, bool):
        return "BOOLEAN"
    if isinstance(default, int):
        return "INT"
    if isinstance(default, float):
        return "FLOAT"
    if isinstance(default, str):
        return "STRING"
    if isinstance(default, torch.dtype):
        return DTYPE
    return None


# ---------------------------------------------------------------------------------------------
# The name table


@dataclass(frozen=True)
class NameRule:
    """What the table knows about a parameter name: its socket type (used when the hint does not
    decide it), widget options, converters, a `description` for parameters that carry none, and a
    `tooltip` note always added (e.g. what an unset value means)."""

    io_type: str
    options: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    to_block: Converter | None = None
    from_block: Converter | None = None
    unset: Any = None
    tooltip: str | None = None
    description: str | None = None


_INT = {"min": 0, "max": 0x7FFFFFFF, "step": 1}
_TEXT = {"default": "", "multiline": True}
_SIZE = {"default": 0, "min": 0, "max": 16384, "step": 8}

# Generic diffusers parameter names (shared by every model family in diffusers' own
# INPUT_PARAM_TEMPLATES), so this table knows no model family.
DEFAULT_NAME_RULES: dict[str, NameRule] = {
    "prompt": NameRule("STRING", _TEXT, description="The prompt to guide generation."),
    "prompt_2": NameRule("STRING", _TEXT, unset="", tooltip="Empty: not set (the model uses `prompt`)."),
    "negative_prompt": NameRule("STRING", _TEXT, unset="", tooltip="Empty: no negative prompt."),
    "negative_prompt_2": NameRule("STRING", _TEXT, unset="", tooltip="Empty: not set."),
    "height": NameRule("INT", _SIZE, unset=0, tooltip="0: the model's default size."),
    "width": NameRule("INT", _SIZE, unset=0, tooltip="0: the model's default size."),
    "num_inference_steps": NameRule(
        "INT", {"default": 50, "min": 1, "max": 10000, "step": 1}, description="Number of denoising steps."
    ),
    "num_images_per_prompt": NameRule(
        "INT", {"default": 1, "min": 1, "max": 4096, "step": 1}, description="Number of images to make per prompt."
    ),
    "guidance_scale": NameRule(
        "FLOAT",
        {"default": 5.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01},
        description="Classifier-free guidance scale.",
    ),
    "strength": NameRule(
        "FLOAT",
        {"default": 0.3, "min": 0.0, "max": 1.0, "step": 0.01},
        description="Image-to-image: how much to change the input image (0 keeps it, 1 replaces it).",
    ),
    "eta": NameRule("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01}),
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
}

# Converters that follow from the socket type alone.
TYPE_CONVERTERS: dict[str, tuple[Converter | None, Converter | None]] = {
    IMAGE: (image_to_pil, to_comfy_image),
    "STRING": (lines_to_list, None),
}


class SocketMapping:
    """The rule table. Immutable: `extended()` returns a new mapping with more name rules."""

    def __init__(self, name_rules: Mapping[str, NameRule] | None = None):
        self.name_rules: dict[str, NameRule] = dict(DEFAULT_NAME_RULES if name_rules is None else name_rules)

    def extended(self, name_rules: Mapping[str, NameRule]) -> SocketMapping:
        return SocketMapping({**self.name_rules, **name_rules})

    def input_socket(self, param: Any) -> SocketSpec:
        return self._socket(param.name, param.type_hint, param.default, getattr(param, "description", ""))

    def output_socket(self, param: Any) -> SocketSpec:
        return self._socket(param.name, param.type_hint, None, getattr(param, "description", ""))

    def _socket(self, name: str, hint: Any, default: Any, description: str | None) -> SocketSpec:
        rule = self.name_rules.get(name)
        io_type = (
            socket_type_for_hint(hint) or (rule.io_type if rule else None) or socket_type_for_default(default) or VALUE
        )
        options: dict[str, Any] = {}
        to_block, from_block = TYPE_CONVERTERS.get(io_type, (None, None))
        unset = None
        socket_name = None
        tooltip_extra = None
        if rule is not None and not description:
            description = rule.description
        if rule is not None and rule.io_type == io_type:
            options.update(rule.options)
            to_block = rule.to_block or to_block
            from_block = rule.from_block or from_block
            unset = rule.unset
            socket_name = rule.name
            tooltip_extra = rule.tooltip
        if io_type in WIDGET_TYPES and _fits_widget(io_type, default):
            options["default"] = float(default) if io_type == "FLOAT" else default
        if "default" in options and io_type in _NUMBER_BOUNDS:
            # Without explicit bounds the frontend clamps numbers to its own small range.
            for key, bound in _NUMBER_BOUNDS[io_type].items():
                options.setdefault(key, bound)
            options["min"] = min(options["min"], options["default"])
            options["max"] = max(options["max"], options["default"])
        if io_type == "STRING" and _is_list_hint(hint):
            tooltip_extra = "One item per line."
        tooltip = " ".join(part for part in (description, tooltip_extra) if part) or None
        return SocketSpec(io_type, options, socket_name, to_block, from_block, unset, tooltip)


_NUMBER_BOUNDS = {
    "INT": {"min": -0x7FFFFFFF, "max": 0x7FFFFFFF, "step": 1},
    "FLOAT": {"min": -1.0e9, "max": 1.0e9, "step": 0.01},
}


def _fits_widget(io_type: str, default: Any) -> bool:
    if default is None:
        return False
    if io_type == "BOOLEAN":
        return isinstance(default, bool)
    if io_type == "INT":
        return isinstance(default, int) and not isinstance(default, bool)
    if io_type == "FLOAT":
        return isinstance(default, (int, float)) and not isinstance(default, bool)
    return isinstance(default, str)


DEFAULT_MAPPING = SocketMapping()

__all__ = [
    "COMPONENTS",
    "DEFAULT_MAPPING",
    "DTYPE",
    "IMAGE",
    "NameRule",
    "STATE",
    "SocketMapping",
    "SocketSpec",
    "TENSOR",
    "VALUE",
]
