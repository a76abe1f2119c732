"""Single weight files read from their headers (nothing loaded) and text encoders loaded with a strict key check."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch
from comfyui_modular_diffusers.adapters.weight_files import (
    WeightsFileError,
    key_prefix,
    load_transformers_model,
    read_header,
)
from safetensors.torch import save_file
from transformers import CLIPTextModel


def write_safetensors(path, tensors):
    save_file(tensors, str(path))
    return path


def test_a_header_gives_names_shapes_and_dtypes_without_the_weights(tmp_path):
    path = write_safetensors(
        tmp_path / "a.safetensors", {"w": torch.ones(3, 4, dtype=torch.float16), "b": torch.ones(2)}
    )
    header = read_header(path)
    assert {name: (tuple(t.shape), t.dtype, t.device.type) for name, t in header.items()} == {
        "w": ((3, 4), torch.float16, "meta"),
        "b": ((2,), torch.float32, "meta"),
    }


def test_truncated_and_foreign_files_are_refused_naming_the_file(tmp_path):
    whole = write_safetensors(tmp_path / "whole.safetensors", {"w": torch.ones(64, 64)})
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(WeightsFileError, match=r"cut.safetensors: the file is truncated"):
        read_header(cut)
    noise = tmp_path / "noise.safetensors"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(WeightsFileError, match=r"noise.safetensors: not a safetensors file"):
        read_header(noise)
    with pytest.raises(WeightsFileError, match=r"model.ckpt: only .safetensors and .gguf"):
        read_header(tmp_path / "model.ckpt")


def write_gguf(path, kind):
    writer = gguf.GGUFWriter(str(path), "test")
    data = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    if kind == gguf.GGMLQuantizationType.F32:
        writer.add_tensor("w", data)
    else:
        block, size = gguf.GGML_QUANT_SIZES[kind]
        raw = np.zeros((4, 64 // block * size), dtype=np.uint8)
        writer.add_tensor("w", raw, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_gguf_header_gives_the_logical_shape_and_refuses_unsupported_quant_types(tmp_path):
    assert tuple(read_header(write_gguf(tmp_path / "f.gguf", gguf.GGMLQuantizationType.F32))["w"].shape) == (4, 64)
    assert tuple(read_header(write_gguf(tmp_path / "q.gguf", gguf.GGMLQuantizationType.Q8_0))["w"].shape) == (4, 64)
    with pytest.raises(WeightsFileError, match=r"iq.gguf: quant type IQ2_XXS cannot be read by diffusers"):
        read_header(write_gguf(tmp_path / "iq.gguf", gguf.GGMLQuantizationType.IQ2_XXS))


def test_the_key_prefix_is_the_one_most_keys_sit_under(tmp_path):
    expected = {"embeddings.weight": None, "encoder.layers.0.weight": None}
    header = {f"clip_l.transformer.{key}": None for key in expected} | {"logit_scale": None}
    assert key_prefix(tmp_path / "f.safetensors", header, expected) == "clip_l.transformer."
    assert key_prefix(tmp_path / "f.safetensors", dict.fromkeys(expected), expected) == ""
    with pytest.raises(WeightsFileError, match="no key matches the model"):
        key_prefix(tmp_path / "f.safetensors", {"other": None}, expected)


def test_a_text_encoder_file_under_a_prefix_loads_exactly_and_a_partial_one_is_refused(tiny_model, tmp_path):
    folder_model = CLIPTextModel.from_pretrained(tiny_model / "text_encoder")
    weights = {f"te.transformer.text_model.{k}": v.contiguous() for k, v in folder_model.state_dict().items()}
    path = write_safetensors(tmp_path / "clip.safetensors", weights)
    model = load_transformers_model(CLIPTextModel, path, tiny_model, "text_encoder", torch.float32)
    loaded = model.state_dict()
    assert loaded.keys() == folder_model.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in folder_model.state_dict().items())
    partial = write_safetensors(tmp_path / "partial.safetensors", dict(list(weights.items())[:-3]))
    with pytest.raises(WeightsFileError, match=r"partial.safetensors: does not match the CLIPTextModel.*missing keys"):
        load_transformers_model(CLIPTextModel, partial, tiny_model, "text_encoder", torch.float32)
    stray = write_safetensors(tmp_path / "stray.safetensors", {**weights, "other.weight": torch.ones(1)})
    with pytest.raises(WeightsFileError, match=r"unexpected keys: other.weight"):
        load_transformers_model(CLIPTextModel, stray, tiny_model, "text_encoder", torch.float32)
