"""Load Diffusers Components: the folders it lists, what it refuses in validation, and the bundle it gives."""

from __future__ import annotations

import logging

import comfy.latent_formats
import folder_paths
import pytest
import torch
from comfyui_modular_diffusers.nodes import loaders


@pytest.fixture
def diffusers_folder(tmp_path, monkeypatch, tiny_model):
    """A diffusers models folder holding the tiny SDXL (linked), a nested model and a folder without an index."""
    root = tmp_path / "diffusers"
    (root / "family").mkdir(parents=True)
    (root / "tiny-sdxl").symlink_to(tiny_model, target_is_directory=True)
    (root / "family" / "nested").mkdir()
    (root / "family" / "nested" / "model_index.json").write_text("{}")
    (root / "not-a-model").mkdir()
    monkeypatch.setattr(folder_paths, "get_folder_paths", lambda name: [str(root)] if name == "diffusers" else [])
    return root


def test_model_folders_are_those_with_a_model_index(diffusers_folder):
    assert list(loaders.model_folders()) == ["family/nested", "tiny-sdxl"]  # a model's own subfolders are not


def test_validation_refuses_unknown_names_and_dtypes(diffusers_folder):
    assert loaders.LoadComponents.validate_inputs(model="tiny-sdxl", dtype="float32") is True
    assert "is not a diffusers folder" in loaders.LoadComponents.validate_inputs(model="../etc", dtype="float32")
    assert "dtype: 'int8'" in loaders.LoadComponents.validate_inputs(model="tiny-sdxl", dtype="int8")
    assert loaders.LoadComponents.validate_inputs(model=None, dtype=None) is True  # ComfyUI names missing ones


def test_pickle_weights_are_found_where_no_safetensors_are(tmp_path):
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"")
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    (tmp_path / "vae" / "diffusion_pytorch_model.bin").write_bytes(b"")
    assert loaders.pickle_weights(tmp_path) == ["unet/diffusion_pytorch_model.bin"]


def test_the_bundle_knows_its_family_and_previews(diffusers_folder, caplog):
    with caplog.at_level(logging.INFO):
        (bundle,) = loaders.LoadComponents.execute(model="tiny-sdxl", dtype="float32").args
    assert bundle.family == "stable_diffusion_xl" and bundle.source == "tiny-sdxl"
    assert isinstance(bundle.latent_format, comfy.latent_formats.SDXL)
    assert {"unet", "vae", "text_encoder", "text_encoder_2"} <= set(bundle.patchers)
    assert bundle.batched_guidance_proven  # SDXL runs its guider batched by default (the family table)
    assert any(
        "loaded" in record.getMessage() and "stable_diffusion_xl" in record.getMessage() for record in caplog.records
    )


def test_weight_dtypes_apply_to_the_denoiser_and_the_text_encoders(diffusers_folder):
    components = {"unet": 1, "transformer_2": 1, "text_encoder": 1, "text_encoder_2": 1, "vae": 1, "scheduler": 1}
    assert loaders.weight_dtypes(components, "fp8_e4m3fn", "default") == {
        "unet": "fp8_e4m3fn",
        "transformer_2": "fp8_e4m3fn",
    }
    assert loaders.weight_dtypes(components, "default", "fp8_e5m2") == {
        "text_encoder": "fp8_e5m2",
        "text_encoder_2": "fp8_e5m2",
    }
    answer = loaders.LoadComponents.validate_inputs(model="tiny-sdxl", dtype="float32", weight_dtype="int4")
    assert "weight_dtype: 'int4' is not one of default, fp8_e4m3fn" in answer
    answer = loaders.LoadComponents.validate_inputs(
        model="tiny-sdxl", dtype="float32", text_encoder_weight_dtype="fp8_e4m3fn_fast"
    )
    assert "text_encoder_weight_dtype" in answer  # the _fast matmuls are the denoiser's option only
    (bundle,) = loaders.LoadComponents.execute(model="tiny-sdxl", dtype="float32", weight_dtype="fp8_e5m2").args
    assert bundle.get("unet").down_blocks[1].attentions[0].proj_in.weight.dtype == torch.float8_e5m2
    assert all(parameter.dtype == torch.float32 for parameter in bundle.get("text_encoder").parameters())


def test_a_model_index_that_diffusers_maps_to_no_modular_class_loads(tiny_models, tmp_path, monkeypatch):
    """A folder with only a model_index.json of a pipeline class missing from diffusers' auto-pipeline tables
    (HunyuanVideo15Pipeline, as the real HunyuanVideo 1.5 folders have) loads as the modular class of that
    name; the tiny folder's modular_model_index.json is left out here."""
    source = tiny_models["tiny-hunyuan-video15"]
    folder = tmp_path / "diffusers" / "hunyuan-index-only"
    folder.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.is_dir():
            (folder / entry.name).symlink_to(entry, target_is_directory=True)
    (folder / "model_index.json").write_text((source / "model_index.json").read_text())
    with pytest.raises(ValueError, match="No pipeline blocks"):  # diffusers 0.42.1 alone
        loaders.ModularPipeline.from_pretrained(str(folder))

    pipeline = loaders.open_pipeline(folder)
    assert type(pipeline).__name__ == "HunyuanVideo15ModularPipeline"
    assert type(pipeline.blocks).__name__ == "HunyuanVideo15AutoBlocks"
    assert pipeline._component_specs["transformer"].pretrained_model_name_or_path == str(folder)
    monkeypatch.setattr(
        folder_paths, "get_folder_paths", lambda name: [str(folder.parent)] if name == "diffusers" else []
    )
    (bundle,) = loaders.LoadComponents.execute(model="hunyuan-index-only", dtype="float32").args
    assert bundle.family == "hunyuan_video1_5" and {"transformer", "vae", "text_encoder_2"} <= set(bundle.patchers)
    assert type(loaders.open_pipeline(source)).__name__ == "HunyuanVideo15ModularPipeline"  # its modular index
