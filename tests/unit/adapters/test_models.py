"""Diffusers modules under ComfyUI's model management: a holder per module, loaded by ComfyUI."""

from __future__ import annotations

import comfy.model_management as mm
import pytest
import torch
from comfyui_modular_diffusers.adapters.components import ComponentsBundle
from comfyui_modular_diffusers.adapters.models import ModuleHolder, load_models, loaded_models, make_patcher
from comfyui_modular_diffusers.adapters.plan import NodePlan
from comfyui_modular_diffusers.adapters.run import BlockRun, private_copy
from comfyui_modular_diffusers.adapters.sockets import SHOW_COMMON
from diffusers.modular_pipelines import ModularPipeline
from diffusers.modular_pipelines.stable_diffusion_xl import StableDiffusionXLAutoBlocks


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


@pytest.fixture(scope="module")
def sdxl_bundle(tiny_model):
    pipeline = ModularPipeline.from_pretrained(str(tiny_model))
    pipeline.load_components(dtype=torch.float32)
    return ComponentsBundle.from_pipeline(pipeline, "tiny-sdxl", family="stable_diffusion_xl")


def text2image(bundle) -> torch.Tensor:
    block = StableDiffusionXLAutoBlocks().get_workflow("text2image")
    plan = NodePlan.from_block(private_copy(block), fixed={"output_type": "np"}, policy=SHOW_COMMON)
    values = {"components": bundle, "prompt": "a fox", "num_inference_steps": 3, "seed": 7}
    _, *outputs = BlockRun(node_id="T", display_name="T", plan=plan)(values, "1")
    return dict(zip([socket.name for socket in plan.outputs], outputs, strict=True))["images"]


def test_a_partial_load_streams_the_unet_and_gives_the_full_loads_image(sdxl_bundle, monkeypatch):
    full = text2image(sdxl_bundle)  # ComfyUI's normal load: on the CPU always whole
    unet = sdxl_bundle.patchers["unet"]
    assert unet.loaded_size() == unet.model_size()
    mm.unload_all_models()
    try:
        loaded = mm.LoadedModel(unet)
        loaded.model_load(unet.model_size() // 3)  # a budget a third of the UNet: ComfyUI loads it partly
        mm.current_loaded_models.insert(0, loaded)
        # Keep the partial load for the run (on the CPU, ComfyUI's next load would load it whole).
        monkeypatch.setattr(ComponentsBundle, "load", lambda self, names: None)
        assert 0 < unet.loaded_size() < unet.model_size() and unet.model.model_lowvram
        streamed = [m for m in unet.model.modules() if getattr(m, "comfy_cast_weights", False)]
        assert len(streamed) > 10
        (entry,) = [m for m in loaded_models() if m["class"] == "DiffusersUNet2DConditionModel"]
        assert entry["partly_loaded"] and entry["loaded_bytes"] < entry["size_bytes"] == unet.model_size()
        assert sdxl_bundle.get("unet").device == mm.get_torch_device()  # what the pipeline puts tensors on
        partial = text2image(sdxl_bundle)
    finally:
        mm.unload_all_models()
    assert torch.equal(torch.as_tensor(partial), torch.as_tensor(full))


class WithLeftovers(torch.nn.Module):
    """What ComfyUI cannot stream: a buffer, a non-leaf parameter, a leaf parameter of its own kind."""

    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.Sequential(*(torch.nn.Linear(64, 64) for _ in range(4)))
        self.register_buffer("freqs", torch.ones(16))
        self.table = torch.nn.Parameter(torch.zeros(4))
        self.norm = torch.nn.Module()
        self.norm.gamma = torch.nn.Parameter(torch.ones(64))


def test_after_a_partial_load_what_comfyui_cannot_stream_is_on_the_device():
    # "meta" as the compute device makes visible on the CPU what a partial load leaves where.
    module = WithLeftovers()
    holder_patcher = make_patcher(module)
    patcher = type(holder_patcher)(holder_patcher.model, torch.device("meta"), torch.device("cpu"))
    linear = (64 * 64 + 64) * 4
    patcher.load(torch.device("meta"), lowvram_model_memory=3 * linear)  # room for one Linear (and its buffer)
    assert patcher.model.model_lowvram
    assert module.freqs.device.type == module.table.device.type == module.norm.gamma.device.type == "meta"
    devices = {layer.weight.device.type for layer in module.blocks}
    assert devices == {"cpu", "meta"}  # some Linear layers streamed (stay offloaded), some loaded
    assert patcher.loaded_size() < patcher.model_size()


def test_a_module_stored_in_fp8_reports_its_compute_dtype(tiny_model):
    pipeline = ModularPipeline.from_pretrained(str(tiny_model))
    pipeline.load_components(dtype=torch.float32)
    bundle = ComponentsBundle.from_pipeline(pipeline, "tiny-sdxl", weight_dtypes={"unet": "fp8_e4m3fn"})
    unet = bundle.get("unet")
    assert unet.dtype == torch.float32 and pipeline.dtype in (torch.float32,)  # what blocks make latents in
    assert any(p.dtype == torch.float8_e4m3fn for p in unet.parameters())
    assert type(unet).__name__ == "UNet2DConditionModel" and isinstance(unet, type(unet).__mro__[1])
    assert bundle.get("vae").dtype == torch.float32  # untouched components report their own
    assert bundle.patchers["unet"].model_size() < 0.3 * sum(p.nelement() * 4 for p in unet.parameters())
