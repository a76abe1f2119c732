"""Replace Component (Diffusers) and configs-only folders: a model made of a diffusers folder's configs plus
weights from ComfyUI's model folders (here files in the diffusers and transformers layouts, fp8 storage, and a
GGUF transformer under ComfyUI's partial loading; the original layouts through the server are in
tests/server/test_single_files_server.py)."""

from __future__ import annotations

import shutil

import comfy.model_management as mm
import folder_paths
import pytest
import torch
from comfyui_modular_diffusers.adapters.components import ComponentsBundle
from comfyui_modular_diffusers.adapters.plan import NodePlan
from comfyui_modular_diffusers.adapters.run import BlockRun, private_copy
from comfyui_modular_diffusers.adapters.sockets import SHOW_COMMON
from comfyui_modular_diffusers.nodes import loaders
from comfyui_modular_diffusers.nodes.replace import ReplaceComponent
from diffusers.modular_pipelines.z_image import ZImageAutoBlocks

MODELS = ("unet", "vae", "text_encoder", "text_encoder_2")


@pytest.fixture
def models(tmp_path, monkeypatch, tiny_models):
    """ComfyUI model folders: tiny-sdxl, a configs-only copy of it, tiny-flux, and component files."""
    sdxl = tiny_models["tiny-sdxl"]
    root = tmp_path / "models"
    (root / "diffusers").mkdir(parents=True)
    (root / "diffusers" / "tiny-sdxl").symlink_to(sdxl, target_is_directory=True)
    (root / "diffusers" / "tiny-flux").symlink_to(tiny_models["tiny-flux"], target_is_directory=True)
    shutil.copytree(sdxl, root / "diffusers" / "configs", ignore=shutil.ignore_patterns("*.safetensors"))
    for kind, name, file in (
        ("diffusion_models", "unet.safetensors", "unet/diffusion_pytorch_model.safetensors"),
        ("text_encoders", "clip-l.safetensors", "text_encoder/model.safetensors"),
        ("text_encoders", "nested/clip-g.safetensors", "text_encoder_2/model.safetensors"),
    ):
        (root / kind / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sdxl / file, root / kind / name)
    monkeypatch.setattr(folder_paths, "get_folder_paths", lambda kind: [str(root / kind)])
    return root


def load(model: str):
    return loaders.LoadComponents.execute(model=model, dtype="float32").args[0]


def replace(bundle, source: str, component: str = "auto", weight_dtype: str = "default"):
    return ReplaceComponent.execute(
        components=bundle, source=source, component=component, weight_dtype=weight_dtype
    ).args[0]


def test_a_configs_only_folder_loads_without_weights_and_names_what_it_lacks(models):
    bundle = load("configs")
    assert sorted(bundle.missing) == sorted(MODELS)
    assert all(bundle.get(name) is None for name in MODELS) and not bundle.patchers
    assert bundle.get("tokenizer") is not None and bundle.get("scheduler") is not None


def test_replacing_every_model_makes_the_folder_exactly_and_leaves_each_input_unchanged(models):
    configs = load("configs")
    bundle = replace(configs, "diffusion_models/unet.safetensors")
    bundle = replace(bundle, "text_encoders/clip-l.safetensors")  # auto: the keys and shapes fit only one
    bundle = replace(bundle, "text_encoders/nested/clip-g.safetensors")
    bundle = replace(bundle, "diffusers/tiny-sdxl", "vae")
    assert bundle.missing == () and set(MODELS) <= set(bundle.patchers)
    assert configs.get("unet") is None and configs.missing  # the input bundle is as it was
    reference = load("tiny-sdxl")
    for name in MODELS:
        ours, theirs = bundle.get(name).state_dict(), reference.get(name).state_dict()
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in theirs), name
    again = replace(reference, "diffusion_models/unet.safetensors")
    assert again.get("unet") is not reference.get("unet") and reference.patchers["unet"] is not again.patchers["unet"]
    assert reference.pipeline.unet is reference.get("unet")  # the input's pipeline keeps its own module


def test_what_cannot_be_replaced_is_refused_by_name(models):
    bundle = load("configs")
    with pytest.raises(ValueError, match="choose the component to take from a diffusers folder"):
        replace(bundle, "diffusers/tiny-sdxl")
    with pytest.raises(ValueError, match="tiny-flux: the folder has no weights for unet"):
        replace(bundle, "diffusers/tiny-flux", "unet")
    with pytest.raises(ValueError, match="the components have no transformer"):
        replace(bundle, "diffusion_models/unet.safetensors", "transformer")
    assert "cannot replace vae" in ReplaceComponent.validate_inputs(
        source="diffusion_models/unet.safetensors", component="vae"
    )
    assert "is not a file" in ReplaceComponent.validate_inputs(source="diffusion_models/../../etc/passwd")


def test_a_replaced_denoiser_can_be_stored_in_fp8(models):
    bundle = replace(load("tiny-sdxl"), "diffusion_models/unet.safetensors", weight_dtype="fp8_e4m3fn")
    unet = bundle.get("unet")
    assert unet.down_blocks[1].attentions[0].proj_in.weight.dtype == torch.float8_e4m3fn
    assert unet.dtype == torch.float32  # what it computes in


@pytest.fixture
def z_image_files(tmp_path, monkeypatch, tiny_models, single_files):
    roots = {"diffusers": tiny_models["tiny-z-image"].parent, "diffusion_models": single_files / "diffusion_models"}
    monkeypatch.setattr(folder_paths, "get_folder_paths", lambda kind: [str(roots[kind])] if kind in roots else [])


def z_image_text2image(bundle) -> torch.Tensor:
    block = ZImageAutoBlocks().get_workflow("text2image")
    plan = NodePlan.from_block(private_copy(block), fixed={"output_type": "pt"}, policy=SHOW_COMMON)
    values = {"components": bundle, "prompt": "a fox", "num_inference_steps": 2, "seed": 7, "height": 64, "width": 64}
    _, *outputs = BlockRun(node_id="T", display_name="T", plan=plan)(values, "1")
    return dict(zip([socket.name for socket in plan.outputs], outputs, strict=True))["images"]


def test_a_gguf_transformer_keeps_its_quantized_layers_and_runs_partly_loaded(z_image_files, monkeypatch):
    bundle = replace(load("tiny-z-image"), "diffusion_models/tiny-z-image-Q8_0.gguf")
    transformer, patcher = bundle.get("transformer"), bundle.patchers["transformer"]
    quantized = [m for m in transformer.modules() if type(m).__name__ == "GGUFLinear"]
    assert quantized and not any(hasattr(m, "comfy_cast_weights") for m in quantized)  # diffusers unpacks them
    assert any(hasattr(m, "comfy_cast_weights") for m in transformer.modules())  # the float layers stream
    full = z_image_text2image(bundle)
    mm.unload_all_models()
    try:
        loaded = mm.LoadedModel(patcher)
        loaded.model_load(patcher.model_size() // 3)  # a third of the model: ComfyUI loads it partly
        mm.current_loaded_models.insert(0, loaded)
        monkeypatch.setattr(ComponentsBundle, "load", lambda self, names: None)  # keep the partial load
        assert 0 < patcher.loaded_size() < patcher.model_size()
        partial = z_image_text2image(bundle)
    finally:
        mm.unload_all_models()
    assert torch.equal(partial, full)
