"""ComfyUI's own layer behaviour inside diffusers and transformers modules, given in place.

ComfyUI streams, casts and patches weights only through its own layer classes (`comfy.ops`: a layer with
`comfy_cast_weights`, `weight_function` and `bias_function`); partial (low-VRAM) loading keeps the other
layers whole or leaves them behind. `make_castable(module)` gives every leaf layer of a loaded module that
behaviour without copying a weight: the layer's class is swapped, its parameters stay the same objects, so
the diffusers pipeline that holds the module keeps working with it.

- a layer of exactly a torch class ComfyUI has an op for (Linear, Conv1d/2d/3d, ConvTranspose1d/2d,
  GroupNorm, LayerNorm, Embedding, RMSNorm where the running ComfyUI has one) becomes ComfyUI's class;
- a subclass of one, or any other leaf whose parameters are `weight` (and `bias`), keeps its own forward
  behind `CastOwnForward`: when ComfyUI casts, the cast weight and bias are put in place for the call;
- a leaf with other parameters (e.g. a `gamma`), or with quantized weights (GGUF's packed bytes), is left
  as it is; `models.DiffusersPatcher` keeps it, and every buffer and non-leaf parameter, on the compute
  device (so a GGUF model loads whole: its quantized layers are never streamed).

With casting off (a full load at the stored dtype) every converted layer runs torch's own forward, so
results stay bit-identical; each call also checks ComfyUI's interrupt flag (`comfy.ops.run_every_op`).

`store_weights(module, option)` stores the weights of the converted layers in fp8, the way ComfyUI's own
UNet loader's weight dtypes do: ComfyUI's casting computes each layer in its input's dtype (the dtype
the model was loaded in). Layers diffusers itself keeps in higher precision when it stores weights in
fp8 (`enable_layerwise_casting`: its default skip patterns, the model's `_keep_in_fp32_modules` and
`_skip_layerwise_casting_patterns`) and embeddings (whose output would come out in fp8) stay as they are.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import comfy.model_management as mm
import comfy.ops
import torch
from diffusers.hooks.layerwise_casting import DEFAULT_SKIP_MODULES_PATTERN

logger = logging.getLogger(__name__)

OPS = comfy.ops.disable_weight_init  # casting off until ComfyUI switches it on per layer
TORCH_TO_COMFY: dict[type, type] = {
    torch.nn.Linear: OPS.Linear,
    torch.nn.Conv1d: OPS.Conv1d,
    torch.nn.Conv2d: OPS.Conv2d,
    torch.nn.Conv3d: OPS.Conv3d,
    torch.nn.ConvTranspose1d: OPS.ConvTranspose1d,
    torch.nn.ConvTranspose2d: OPS.ConvTranspose2d,
    torch.nn.GroupNorm: OPS.GroupNorm,
    torch.nn.LayerNorm: OPS.LayerNorm,
    torch.nn.Embedding: OPS.Embedding,
}
if hasattr(torch.nn, "RMSNorm") and hasattr(OPS, "RMSNorm"):
    TORCH_TO_COMFY[torch.nn.RMSNorm] = OPS.RMSNorm

_CASTABLE: dict[type, type] = {}
_run_every_op = getattr(comfy.ops, "run_every_op", lambda: None)  # ComfyUI's per-op interrupt check


class CastOwnForward(comfy.ops.CastWeightBiasOp):
    """A leaf that keeps its own forward: while ComfyUI casts it (streamed, stored in another dtype,
    patched), the call sees the cast `weight` and `bias` in place of the stored ones."""

    comfy_compute_dtype: torch.dtype | None = None  # what weights stored in fp8 are cast to (None: the input's)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        _run_every_op()
        first = args[0] if args else next(iter(kwargs.values()), None)
        casting = self.comfy_cast_weights or self.weight_function or self.bias_function
        if not casting or not isinstance(first, torch.Tensor):
            return super().forward(*args, **kwargs)
        dtype = self._parameters["weight"].dtype
        if dtype.itemsize == 1 or self.weight_function:  # fp8 storage, or a patch: compute in the compute dtype
            dtype = self.comfy_compute_dtype or first.dtype
        weight, bias, stream = comfy.ops.cast_bias_weight(self, first, dtype=dtype, bias_dtype=dtype, offloadable=True)
        stored = dict(self._parameters)
        try:
            self._parameters["weight"] = weight
            if stored.get("bias") is not None:
                self._parameters["bias"] = bias
            return super().forward(*args, **kwargs)
        finally:
            self._parameters.update(stored)
            comfy.ops.uncast_bias_weight(self, weight, bias, stream)


def castable_class(cls: type) -> type:
    """ComfyUI's class for an exact torch layer class, else `cls` behind `CastOwnForward` (made once)."""
    if cls in TORCH_TO_COMFY:
        return TORCH_TO_COMFY[cls]
    if issubclass(cls, comfy.ops.CastWeightBiasOp):
        return cls
    if cls not in _CASTABLE:
        name = f"Comfy{cls.__name__}"
        _CASTABLE[cls] = type(name, (CastOwnForward, cls), {"__module__": __name__, "__qualname__": name})
    return _CASTABLE[cls]


def castable(layer: torch.nn.Module) -> bool:
    """A leaf whose own parameters are `weight` and maybe `bias` (what ComfyUI's ops cast), stored as floats:
    quantized storage (GGUF's packed bytes) is the layer's own to unpack, never ComfyUI's to cast."""
    parameters = dict(layer.named_parameters(recurse=False))
    if "weight" not in parameters or set(parameters) - {"weight", "bias"} or any(True for _ in layer.children()):
        return False
    return all(parameter.is_floating_point() for parameter in parameters.values())


def make_castable(module: torch.nn.Module) -> tuple[int, int]:
    """Give every castable leaf of `module` ComfyUI's cast support, in place. Returns (converted, left as
    they are) counts of leaves with parameters."""
    converted = left = 0
    for layer in module.modules():
        if not any(True for _ in layer.parameters(recurse=False)):
            continue
        if not castable(layer):
            left += 1
            continue
        new_class = castable_class(type(layer))
        if type(layer) is not new_class:
            layer.__class__ = new_class
        # Instance lists: the class-level ones are shared by every layer of the class.
        layer.comfy_cast_weights = False
        layer.weight_function, layer.bias_function = [], []
        if not hasattr(layer, "bias"):
            layer.bias = None
        converted += 1
    return converted, left


# ComfyUI's UNet-loader weight dtypes (`fast` computes fp8 matmuls where the device supports them).
WEIGHT_DTYPES = {
    "fp8_e4m3fn": torch.float8_e4m3fn,
    "fp8_e4m3fn_fast": torch.float8_e4m3fn,
    "fp8_e5m2": torch.float8_e5m2,
}


def skip_patterns(module: torch.nn.Module) -> tuple[str, ...]:
    """The layer-name patterns diffusers keeps out of low-precision storage for this model."""
    patterns = [*DEFAULT_SKIP_MODULES_PATTERN]
    patterns += getattr(module, "_keep_in_fp32_modules", None) or []
    patterns += getattr(module, "_skip_layerwise_casting_patterns", None) or []
    return tuple(dict.fromkeys(patterns))


def store_weights(module: torch.nn.Module, option: str, device: torch.device | None = None) -> int:
    """Store the converted layers' weights in the `WEIGHT_DTYPES[option]` dtype (see the module docstring);
    returns how many layers are stored so. Call `make_castable` first."""
    dtype = WEIGHT_DTYPES[option]
    fast = option.endswith("_fast") and mm.supports_fp8_compute(device) and hasattr(comfy.ops, "fp8_ops")
    if option.endswith("_fast") and not fast:
        logger.info("%s: %s without fp8 matmuls (the device has none): as fp8_e4m3fn", type(module).__name__, option)
    skip = skip_patterns(module)
    stored = 0
    with torch.no_grad():
        for name, layer in module.named_modules():
            if not isinstance(layer, comfy.ops.CastWeightBiasOp) or isinstance(layer, torch.nn.Embedding):
                continue
            if any(re.search(pattern, name) for pattern in skip):
                continue
            for parameter in layer.parameters(recurse=False):
                parameter.data = parameter.data.to(dtype)
            layer.comfy_cast_weights = True  # ComfyUI casts it on every call, like its manual_cast ops
            if fast and type(layer) is OPS.Linear:
                layer.__class__ = comfy.ops.fp8_ops.Linear
                layer.scale_weight = layer.scale_input = None
            stored += 1
    return stored
