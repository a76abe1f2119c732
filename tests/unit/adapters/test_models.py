"""Diffusers modules under ComfyUI's model management: a holder per module, loaded by ComfyUI."""

from __future__ import annotations

import comfy.model_management as mm
import torch
from comfyui_modular_diffusers.adapters.models import ModuleHolder, load_models, loaded_models, make_patcher


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(32, 16)


def test_a_holder_is_named_after_its_module_and_shares_its_weights():
    module = TinyNet()
    patcher = make_patcher(module)
    assert type(patcher.model).__name__ == "DiffusersTinyNet" and isinstance(patcher.model, ModuleHolder)
    assert patcher.model.module is module
    assert type(make_patcher(TinyNet()).model) is type(patcher.model)  # one holder class per module class
    assert patcher.model_size() == (32 * 16 + 16) * 4


def test_comfyui_loads_it_and_the_route_reports_it():
    module = TinyNet()
    patcher = make_patcher(module)
    load_models([patcher])
    try:
        (entry,) = [m for m in loaded_models() if m["class"] == "DiffusersTinyNet"]
        assert entry["managed_by_pack"] and entry["size_bytes"] == (32 * 16 + 16) * 4
        assert entry["loaded_bytes"] == entry["size_bytes"]  # loaded whole
        assert module.linear.weight.device == mm.get_torch_device()
    finally:
        mm.unload_all_models()
    assert not [m for m in loaded_models() if m["class"] == "DiffusersTinyNet"]
    load_models([])  # nothing to load: no call into ComfyUI
