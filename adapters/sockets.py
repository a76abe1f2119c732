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

Converters live in `convert.py`, the name table in `names.py`.

This module is pure Python: it does not import ComfyUI, so it can be unit tested on its own.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from .convert import (
    Converter,
    image_to_pil,
    is_list_hint,
    lines_to_list,
    mask_to_pil,
    seed_to_generator,
    to_comfy_image,
)
from .names import (
    AUDIO,
    AUDIO_OUTPUT_NAMES,
    COMPONENTS,
    DEFAULT_NAME_RULES,
    DTYPE,
    IMAGE,
    MASK,
    MAX_SEED,
    SOCKET_PREFIX,
    STATE,
    TENSOR,
    VALUE,
    WIDGET_TYPES,
    NameRule,
)


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
# Type-hint reading


_is_list_hint = is_list_hint


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


# Converters that follow from the socket type alone.
TYPE_CONVERTERS: dict[str, tuple[Converter | None, Converter | None]] = {
    IMAGE: (image_to_pil, to_comfy_image),
    MASK: (mask_to_pil, None),
    "STRING": (lines_to_list, None),
}


_OUTPUT = object()  # stands for the default of an output parameter (outputs have none)


class SocketMapping:
    """The rule table. Immutable: `extended()` returns a new mapping with more name rules."""

    def __init__(self, name_rules: Mapping[str, NameRule] | None = None):
        self.name_rules: dict[str, NameRule] = dict(DEFAULT_NAME_RULES if name_rules is None else name_rules)

    def extended(self, name_rules: Mapping[str, NameRule]) -> SocketMapping:
        return SocketMapping({**self.name_rules, **name_rules})

    def input_socket(self, param: Any) -> SocketSpec:
        return self._socket(param.name, param.type_hint, param.default, getattr(param, "description", ""))

    def output_socket(self, param: Any) -> SocketSpec:
        return self._socket(param.name, param.type_hint, _OUTPUT, getattr(param, "description", ""))

    def _socket(self, name: str, hint: Any, default: Any, description: str | None) -> SocketSpec:
        rule = self.name_rules.get(name)
        io_type = (
            socket_type_for_hint(hint) or (rule.io_type if rule else None) or socket_type_for_default(default) or VALUE
        )
        if io_type == IMAGE and "mask" in name:  # a PIL mask: ComfyUI's own MASK type
            io_type = MASK
        if default is _OUTPUT and name in AUDIO_OUTPUT_NAMES and io_type in (TENSOR, VALUE):
            io_type = AUDIO  # converted with the state's sample rate where the node runs
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
    "MASK",
    "MAX_SEED",
    "SOCKET_PREFIX",
    "WIDGET_TYPES",
    "seed_to_generator",
    "to_comfy_image",
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
