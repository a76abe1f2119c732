"""Diffusers modules under ComfyUI's model management.

ComfyUI's `ModelPatcher` sets `.device` on the model it manages, and every diffusers / transformers
model has a read-only `device` property, so a raw diffusers model cannot be managed directly. Each
module is therefore owned by a thin `ModuleHolder` that ComfyUI manages; weights are moved in place,
so the diffusers pipeline that holds the same module sees them where ComfyUI put them.

Modules are always loaded whole (`force_full_load=True`): ComfyUI's partial (low-VRAM) loading only
knows how to stream its own `comfy.ops` layers and would silently leave plain torch layers behind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import comfy.model_management as mm
import comfy.model_patcher
import torch

logger = logging.getLogger(__name__)

_holder_classes: dict[str, type] = {}


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


def make_patcher(module: torch.nn.Module, latent_format: Any = None) -> comfy.model_patcher.ModelPatcher:
    load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
    holder = holder_class(module)(module, offload_device, latent_format)
    return comfy.model_patcher.ModelPatcher(holder, load_device, offload_device)


def load_models(patchers: Iterable[comfy.model_patcher.ModelPatcher]) -> None:
    """Ask ComfyUI to put these modules on its compute device, evicting others if it needs room."""
    patchers = list(patchers)
    if patchers:
        mm.load_models_gpu(patchers, force_full_load=True)


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
            }
        )
    return models
