"""Block authors' widget hints: `InputParam.metadata["mellon"]`, the hints diffusers' own node UI (Mellon)
reads, honoured where they have a ComfyUI meaning, so a Hub block written for Mellon looks right here too.

A hint is a type name (`metadata={"mellon": "slider"}`) or a `MellonParam`
(`MellonParam.Input.slider("scale", default=1.0, min=0.0, max=2.0, step=0.05)`, from
`diffusers.modular_pipelines.mellon_node_utils`; a plain dict with the same fields works too):

- `display="slider"` -> a number slider; `min`, `max`, `step` -> the widget's bounds (a hint whose min
  equals its max, what `MellonParam.Input.slider` gives without bounds, sets none);
- `options` -> a dropdown (ComfyUI COMBO) of those values; `display="textarea"` (`textbox`) -> a
  multiline text; `display="random"` (`seed`) -> a seed widget with ComfyUI's control-after-generate;
- `type` (int, float, string, boolean, image) types a parameter that has no type hint of its own;
- `default` / `value` -> the widget's default.

The type-name form carries no bounds or options (diffusers' own form gives min = max = default): only
the kind of widget. Labels, `onChange` and `onSignal` have no ComfyUI meaning and are ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .socket_types import COMBO, IMAGE, VALUE, WIDGET_TYPES
from .spec import SocketSpec

MELLON = "mellon"
TYPES = {"int": "INT", "float": "FLOAT", "string": "STRING", "boolean": "BOOLEAN", "image": IMAGE}
NAMED_HINTS: dict[str, dict[str, Any]] = {
    "slider": {"display": "slider"},
    "textbox": {"type": "string", "display": "textarea"},
    "seed": {"type": "int", "display": "random"},
    "checkbox": {"type": "boolean"},
    "image": {"type": "image"},
}


def mellon_hint(param: Any) -> dict[str, Any] | None:
    """The parameter's hint as a dict of MellonParam fields, or None."""
    metadata = getattr(param, "metadata", None)
    hint = metadata.get(MELLON) if isinstance(metadata, Mapping) else None
    if isinstance(hint, str):
        return dict(NAMED_HINTS.get(hint, {}))
    if callable(getattr(hint, "to_dict", None)):
        return dict(hint.to_dict())
    return dict(hint) if isinstance(hint, Mapping) else None


def apply_hint(spec: SocketSpec, hint: Mapping[str, Any]) -> SocketSpec:
    """`spec` as the hint asks (see the module docstring); what does not fit the spec's type is ignored."""
    io_type = TYPES.get(hint.get("type"), spec.io_type) if spec.io_type == VALUE else spec.io_type
    options = dict(spec.options)
    default = hint.get("value", hint.get("default"))
    choices = hint.get("options")
    widget_type = io_type in WIDGET_TYPES  # a dropdown stands for a plain value, never for a tensor or image
    if (
        widget_type
        and isinstance(choices, (list, tuple))
        and choices
        and all(isinstance(c, (str, int)) for c in choices)
    ):
        pick = default if default in choices else options.get("default")
        return dataclasses.replace(
            spec, io_type=COMBO, options={"options": list(choices), "default": pick if pick in choices else choices[0]}
        )
    if io_type in ("INT", "FLOAT"):
        options.update(_number_options(io_type, hint, default))
    elif io_type == "STRING":
        options.update({"multiline": True} if hint.get("display") == "textarea" else {})
        options.update({"default": default} if isinstance(default, str) else {})
    elif io_type == "BOOLEAN" and isinstance(default, bool):
        options["default"] = default
    return dataclasses.replace(spec, io_type=io_type, options=options)


def _number_options(io_type: str, hint: Mapping[str, Any], default: Any) -> dict[str, Any]:
    options: dict[str, Any] = {}
    number = (int,) if io_type == "INT" else (int, float)
    low, high, step = hint.get("min"), hint.get("max"), hint.get("step")
    if isinstance(low, number) and isinstance(high, number) and low < high:
        options.update(min=low, max=high)
    if isinstance(step, number) and step > 0:
        options["step"] = step
    if hint.get("display") == "slider":
        options["display_mode"] = "slider"
    if hint.get("display") == "random":
        options["control_after_generate"] = True
    if isinstance(default, number) and not isinstance(default, bool):
        options["default"] = float(default) if io_type == "FLOAT" else default
    return options
