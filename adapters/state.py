"""The pipeline-state socket: forking a `PipelineState` and describing one for people and tests.

ComfyUI passes node outputs by reference and keeps them in its cache, so a node must never edit the
state it receives. Every node works on a fork: a new `values` dict and new `kwargs_mapping` lists,
with the values themselves (tensors, images) shared. That is O(number of keys), independent of the
tensors' size, unlike `copy.deepcopy` (diffusers' own `pipe(state=...)` deep-copies). Random generators
are the exception: a block draws from a generator in place, so the fork gets its own copy (same device,
same state); otherwise a node that takes the generator an upstream node left in the state (a step
that continues the random stream an earlier step drew from) would advance the generator of the upstream
node's cached output, and its next run, with that node cached, would draw other noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from diffusers.modular_pipelines import PipelineState
from PIL import Image


def fork_state(state: PipelineState | None) -> PipelineState:
    """A new state that can be edited freely without touching `state` (values are shared)."""
    if state is None:
        return PipelineState()
    return PipelineState(
        values={key: _own_generators(value) for key, value in state.values.items()},
        kwargs_mapping={kind: list(keys) for kind, keys in state.kwargs_mapping.items()},
    )


def _own_generators(value: Any) -> Any:
    """A copy of a generator (or of a list of them, one per batch item); any other value as it is."""
    if isinstance(value, torch.Generator):
        copy = torch.Generator(device=value.device)
        copy.set_state(value.get_state())
        return copy
    if isinstance(value, (list, tuple)) and value and all(isinstance(item, torch.Generator) for item in value):
        return type(value)(_own_generators(item) for item in value)
    return value


def describe_value(value: Any) -> dict[str, Any]:
    """A JSON-friendly description: tensors by shape and dtype, images by size, scalars by value."""
    if isinstance(value, torch.Tensor):
        return {
            "type": "Tensor",
            "shape": list(value.shape),
            "dtype": str(value.dtype).removeprefix("torch."),
            "device": str(value.device),
        }
    if isinstance(value, np.ndarray):
        return {"type": "ndarray", "shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, Image.Image):
        return {"type": "PIL.Image", "size": list(value.size), "mode": value.mode}
    if isinstance(value, torch.Generator):
        return {"type": "Generator", "device": str(value.device)}
    if isinstance(value, torch.dtype):
        return {"type": "dtype", "value": str(value).removeprefix("torch.")}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"type": type(value).__name__, "value": value}
    if isinstance(value, (list, tuple)):
        items = [describe_value(item) for item in value[:8]]
        return {"type": type(value).__name__, "length": len(value), "items": items}
    if isinstance(value, dict):
        return {"type": "dict", "keys": sorted(str(key) for key in value)[:32]}
    return {"type": type(value).__name__, "repr": repr(value)[:200]}


def describe_state(state: PipelineState) -> dict[str, dict[str, Any]]:
    return {key: describe_value(value) for key, value in state.values.items()}


def format_description(description: dict[str, dict[str, Any]]) -> str:
    """The text a state preview shows on the canvas, one line per value."""
    lines = []
    for key, info in description.items():
        kind = info["type"]
        if kind in ("Tensor", "ndarray"):
            detail = f"{kind} {tuple(info['shape'])} {info['dtype']}"
        elif "value" in info:
            detail = f"{kind} = {info['value']!r}"
        elif "length" in info:
            detail = f"{kind}[{info['length']}]"
        elif "size" in info:
            detail = f"{kind} {info['size'][0]}x{info['size'][1]} {info['mode']}"
        else:
            detail = kind
        lines.append(f"{key}: {detail}")
    return "\n".join(lines) if lines else "(empty state)"
