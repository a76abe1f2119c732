"""Socket mapping: which ComfyUI socket or widget stands for a diffusers `InputParam` / `OutputParam`,
and which of a block's parameters a node shows. Every mapping rule is here:

1. the socket type: the parameter's `type_hint` (unions and generics read with `typing.get_origin/
   get_args`), else its name (`NameRule` entries of `names.py`; hundreds of preset inputs carry no
   hint at all), else the type of its default, else a generic namespaced socket;
2. media: a PIL input named `*mask*` is ComfyUI's MASK; an output named like audio is AUDIO (given
   its sample rate where the node runs); decoded video frames also go out as a VIDEO (`gives_video`);
3. widget options (default, min, max, step, ...): from the name rule when it has the same type, else
   from the parameter's own default, so a hinted `int` still gets sensible bounds; then the block
   author's own widget hints (`InputParam.metadata["mellon"]`, see `hints.py`);
4. the show policy (`shows_input`, `shows_output`): what gets a widget or socket and what stays
   reachable through the state socket only.

Code outside this module (for example `nodes/`) extends the name table with `SocketMapping.extended(...)`
instead of editing it. Converters live in `convert.py`. This module does not import ComfyUI, so it can be
unit tested on its own.
"""

from __future__ import annotations

import dataclasses
import decimal
import types
import typing
from collections.abc import Mapping
from typing import Any

import torch
from PIL import Image

from .convert import Converter, image_to_pil, is_list_hint, lines_to_list, mask_to_pil, to_comfy_image
from .hints import apply_hint, mellon_hint
from .names import AUDIO_OUTPUT_NAMES, DEFAULT_NAME_RULES, VIDEO_OUTPUT_NAMES
from .socket_types import AUDIO, DICT, DTYPE, IMAGE, MASK, SOCKET_PREFIX, TENSOR, VALUE, WIDGET_TYPES
from .spec import NameRule, SocketSpec

# The show policies. SHOW_COMMON, the catalog's: widgets for values with a default, sockets for tensors,
# images and masks. SHOW_TYPED, for users' own blocks: every input with a type some node can give.
SHOW_COMMON = "common"
SHOW_TYPED = "typed"
SHOWN_SOCKET_TYPES = (TENSOR, IMAGE, MASK)
HIDDEN_NAMES = ("output_type", "return_dict", "dtype", "device")  # plumbing, never a socket
UNTYPED = (VALUE, DTYPE, DICT)  # no node gives these: reachable through the state only


# ---------------------------------------------------------------------------------------------
# Type-hint reading


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
        spec = self._socket(param.name, param.type_hint, param.default, getattr(param, "description", ""))
        hint = mellon_hint(param)
        return with_hint(spec, hint) if hint else spec

    def output_socket(self, param: Any) -> SocketSpec:
        return self._socket(param.name, param.type_hint, _OUTPUT, getattr(param, "description", ""))

    def _socket(self, name: str, hint: Any, default: Any, description: str | None) -> SocketSpec:
        rule = self.name_rules.get(name)
        io_type = media_type(name, _socket_type(hint, rule, default), is_output=default is _OUTPUT)
        to_block, from_block = TYPE_CONVERTERS.get(io_type, (None, None))
        spec = SocketSpec(io_type, to_block=to_block, from_block=from_block)
        if rule is not None and rule.io_type == io_type:  # a rule for another type (a hint disagrees) is ignored
            spec = rule.over(spec)
        notes = [description or (rule.description if rule else None), spec.tooltip]
        if io_type == "STRING" and is_list_hint(hint):
            notes[1] = "One item per line."
        tooltip = " ".join(note for note in notes if note) or None
        return dataclasses.replace(spec, options=widget_options(spec, default), tooltip=tooltip)


def with_hint(spec: SocketSpec, hint: Mapping[str, Any]) -> SocketSpec:
    """A block author's widget hint applied (`hints.py`), the default kept inside the bounds."""
    spec = apply_hint(spec, hint)
    if spec.io_type in _NUMBER_BOUNDS and "default" in spec.options:
        return dataclasses.replace(spec, options=widget_options(spec, spec.options["default"]))
    return spec


def _socket_type(hint: Any, rule: NameRule | None, default: Any) -> str:
    return socket_type_for_hint(hint) or (rule.io_type if rule else None) or socket_type_for_default(default) or VALUE


def media_type(name: str, io_type: str, is_output: bool) -> str:
    """ComfyUI's own media types where a name says what an image or a tensor holds."""
    if io_type == IMAGE and "mask" in name:  # a PIL mask: ComfyUI's MASK
        return MASK
    if is_output and name in AUDIO_OUTPUT_NAMES and io_type in (TENSOR, VALUE):
        return AUDIO  # converted with the state's sample rate where the node runs
    return io_type


def gives_video(name: str, spec: SocketSpec) -> bool:
    """Decoded video frames: given as IMAGE frames and, beside them, as one ComfyUI VIDEO."""
    return name in VIDEO_OUTPUT_NAMES and spec.io_type == IMAGE


_NUMBER_BOUNDS = {
    "INT": {"min": -0x7FFFFFFF, "max": 0x7FFFFFFF, "step": 1},
    "FLOAT": {"min": -1.0e9, "max": 1.0e9, "step": 0.01},
}


def widget_options(spec: SocketSpec, default: Any) -> dict[str, Any]:
    """The rule's options, the parameter's own default, and bounds around it for numbers."""
    options = dict(spec.options)
    if spec.io_type in WIDGET_TYPES and _fits_widget(spec.io_type, default):
        options["default"] = float(default) if spec.io_type == "FLOAT" else default
    if "default" in options and spec.io_type in _NUMBER_BOUNDS:
        # Without explicit bounds the frontend clamps numbers to its own small range.
        for key, bound in _NUMBER_BOUNDS[spec.io_type].items():
            options.setdefault(key, bound)
        options["min"] = min(options["min"], options["default"])
        options["max"] = max(options["max"], options["default"])
    if spec.io_type == "FLOAT" and "default" in options:
        # The frontend rounds a float widget to its step's decimals (or to `round`'s): a default with more
        # (a sigma of 0.111 under a step of 0.01) would show, and run, as another value (0.11).
        places = _decimals(options["default"])
        for key in ("step", "round"):
            if isinstance(options.get(key), float) and _decimals(options[key]) < places:
                options[key] = 10.0**-places
    return options


def _decimals(value: float) -> int:
    """How many decimals `value` has (3 for 0.111, 0 for 1.0), at most the frontend's finest rounding (6)."""
    exponent = decimal.Decimal(repr(float(value))).normalize().as_tuple().exponent
    return min(6, max(0, -int(exponent)))


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


# ---------------------------------------------------------------------------------------------
# The show policy


def shows_input(name: str, spec: SocketSpec, policy: str = SHOW_TYPED, trigger: bool = False) -> bool:
    """Whether a node that does not list its inputs shows this one (the others stay reachable through
    the state socket). Never plumbing (`*_kwargs`, `output_type`, ...). SHOW_COMMON: widgets, tensors,
    images, masks and a conditional block's branch triggers; SHOW_TYPED: every input a node can feed."""
    if name.endswith("_kwargs") or name in HIDDEN_NAMES:
        return False
    if policy == SHOW_TYPED:
        return trigger or spec.io_type not in UNTYPED
    return trigger or spec.is_widget or spec.io_type in SHOWN_SOCKET_TYPES


def shows_output(name: str, spec: SocketSpec) -> bool:
    """Typed outputs get a socket; untyped values, dtypes, dicts and `*_kwargs` stay in the output state."""
    return spec.io_type not in UNTYPED and not name.endswith("_kwargs")


DEFAULT_MAPPING = SocketMapping()
