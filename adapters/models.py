"""Diffusers modules under ComfyUI's model management, as first-class ComfyUI models.

ComfyUI's `ModelPatcher` sets `.device` on the model it manages, and every diffusers / transformers
model has a read-only `device` property, so a raw diffusers model cannot be managed directly. Each
module is therefore owned by a thin `ModuleHolder` that ComfyUI manages; weights are moved in place,
so the diffusers pipeline that holds the same module sees them where ComfyUI put them.

The module's leaf layers get ComfyUI's cast support (`comfy_layers.make_castable`), so ComfyUI loads it
with its normal budget: whole when it fits, else partly, streaming the layers that do not fit from the
offload device. `DiffusersPatcher` keeps what ComfyUI cannot stream (buffers, parameters of non-leaf
modules and of leaves without cast support; all small) on the compute device after a partial load, and
the module reports the holder's device as its own, so a pipeline puts its tensors on the compute device
even when the module's first weight is still offloaded.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import comfy.model_management as mm
import comfy.model_patcher
import torch

from .comfy_layers import make_castable, store_weights

logger = logging.getLogger(__name__)

_holder_classes: dict[str, type] = {}
_managed_classes: dict[type, type] = {}


class ModuleHolder(torch.nn.Module):
    """What ComfyUI manages in place of a diffusers module (see the module docstring)."""

    def __init__(self, module: torch.nn.Module, device: torch.device, latent_format: Any = None):
        super().__init__()
        self.module = module
        self.device = device
        self.latent_format = latent_format  # read by ComfyUI's latent previews


def holder_class(module: torch.nn.Module) -> type[ModuleHolder]:
    """A holder subclass named after the module's class, so ComfyUI's log says what it loads
    ("Requested to load DiffusersUNet2DConditionModel")."""
    name = "Diffusers" + type(module).__name__
    if name not in _holder_classes:
        _holder_classes[name] = type(name, (ModuleHolder,), {"__doc__": ModuleHolder.__doc__})
    return _holder_classes[name]


class DiffusersPatcher(comfy.model_patcher.ModelPatcher):
    """ComfyUI's patcher, plus: after a partial load, what ComfyUI cannot stream goes to the device too."""

    def load(self, device_to=None, lowvram_model_memory=0, force_patch_weights=False, full_load=False):
        super().load(device_to, lowvram_model_memory, force_patch_weights, full_load)
        if device_to is not None and self.model.model_lowvram:
            self.model.model_loaded_weight_memory += keep_on_device(self.model, device_to)


def keep_on_device(model: torch.nn.Module, device: torch.device) -> int:
    """Move the tensors ComfyUI's partial load leaves behind to `device`; returns their bytes."""
    moved = 0
    with torch.no_grad():
        for layer, name, tensor, is_parameter in unstreamable(model):
            moved += tensor.nelement() * tensor.element_size()
            if tensor.device == device:
                continue
            if is_parameter:
                moved_data = tensor.data.to(device)
                if torch._has_compatible_shallow_copy_type(tensor, moved_data):  # what nn.Module._apply checks
                    tensor.data = moved_data  # the same Parameter object, as `module.to()` keeps it
                else:
                    layer._parameters[name] = torch.nn.Parameter(moved_data, requires_grad=tensor.requires_grad)
            else:
                layer._buffers[name] = tensor.to(device)
    return moved


def unstreamable(model: torch.nn.Module) -> Iterator[tuple[torch.nn.Module, str, torch.Tensor, bool]]:
    """(layer, name, tensor, is a parameter) for every buffer, and every parameter of a layer that ComfyUI
    neither streams nor loaded whole (no cast support, or a non-leaf)."""
    for layer in model.modules():
        whole = getattr(layer, "comfy_patched_weights", False)
        streamed = hasattr(layer, "comfy_cast_weights") and not any(True for _ in layer.children())
        for name, parameter in layer.named_parameters(recurse=False):
            if not streamed and not whole:
                yield layer, name, parameter, True
        for name, buffer in layer.named_buffers(recurse=False):
            if buffer is not None and not whole:
                yield layer, name, buffer, False


def managed_class(cls: type) -> type:
    """`cls` with `device` read from the holder ComfyUI manages and `dtype` the compute dtype (see the
    module docstring); pipelines read both to make their tensors."""
    if cls in _managed_classes.values():  # managed already (a module handed over twice)
        return cls
    if cls not in _managed_classes:
        names = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}  # what logs and configs show
        members = {"device": property(_holder_device), "dtype": property(_compute_dtype), **names}
        _managed_classes[cls] = type(cls.__name__, (cls,), members)
    return _managed_classes[cls]


def original_class(cls: type) -> type:
    """The diffusers / transformers class of a managed module's class (the one to load a new module with)."""
    return cls.__bases__[0] if cls in _managed_classes.values() else cls


def _compute_dtype(module: torch.nn.Module) -> torch.dtype:
    """The dtype a module stored in fp8 computes in, else its parameters' dtype (as diffusers reports it)."""
    return module.__dict__.get("_mdiff_compute_dtype") or super(type(module), module).dtype


def _holder_device(module: torch.nn.Module) -> torch.device:
    holder = module.__dict__.get("_mdiff_holder")
    holder = holder() if holder is not None else None
    if holder is None:
        return next(module.parameters()).device
    return holder.device


def make_patcher(
    module: torch.nn.Module, latent_format: Any = None, weight_dtype: str | None = None
) -> DiffusersPatcher:
    """The module with ComfyUI's layers (in place; weights stored as `weight_dtype`, one of
    `comfy_layers.WEIGHT_DTYPES`, when given), in a holder under a `DiffusersPatcher`."""
    load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
    # The first float parameter: a GGUF model's quantized weights are packed bytes.
    compute_dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)
    converted, left = make_castable(module)
    logger.debug("%s: %d layers cast-capable, %d kept on the device", type(module).__name__, converted, left)
    if weight_dtype is not None:
        stored = store_weights(module, weight_dtype, load_device)
        module.__dict__["_mdiff_compute_dtype"] = compute_dtype  # what `module.dtype` says from now on
        logger.info(
            "%s: %d layers stored as %s, computed in %s", type(module).__name__, stored, weight_dtype, compute_dtype
        )
    holder = holder_class(module)(module, offload_device, latent_format)
    module.__class__ = managed_class(type(module))
    module.__dict__["_mdiff_holder"] = weakref.ref(holder)
    return DiffusersPatcher(holder, load_device, offload_device)


def load_models(patchers: Iterable[comfy.model_patcher.ModelPatcher]) -> None:
    """Ask ComfyUI to put these modules on its compute device with its normal budget (whole when they
    fit, else partly), evicting other models if it needs room."""
    patchers = list(patchers)
    if patchers:
        mm.load_models_gpu(patchers)


def loaded_models() -> list[dict[str, Any]]:
    """ComfyUI's loaded-model list, for the pack's status route and for tests."""
    models = []
    for loaded in list(mm.current_loaded_models):
        patcher = loaded.model  # a weak reference: read it once, it may go away meanwhile
        model = patcher.model if patcher is not None else None
        models.append(
            {
                "class": type(model).__name__ if model is not None else None,
                "managed_by_pack": isinstance(model, ModuleHolder),
                "device": str(loaded.device),
                "size_bytes": int(patcher.model_size()) if patcher is not None else 0,
                # What is on the device now: less than the size for a partly loaded model.
                "loaded_bytes": int(patcher.loaded_size()) if patcher is not None else 0,
                "partly_loaded": bool(getattr(model, "model_lowvram", False)),
            }
        )
    return models
