"""Load LoRA (Diffusers) through a real server: the shipped workflow, a LoRA branch beside a plain one of the
same loader, a new strength that loads nothing from disk again, another family's LoRA refused by name, DoRA
files in both formats (their values against ComfyUI's own DoRA: tests/unit/nodes/test_lora_dora.py)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import safetensors.torch
from comfy_harness import PromptRejected, load_api_workflow
from helpers import saved_image


def plain() -> dict:
    return load_api_workflow("sdxl_text2image")


def lora_branch() -> dict:
    """sdxl_lora's nodes but the loader, under ids "1<id>", on the plain workflow's loader "1"."""
    renamed = {}
    for node_id, node in load_api_workflow("sdxl_lora").items():
        if node_id == "1":
            continue
        node = copy.deepcopy(node)
        for key, value in node["inputs"].items():
            if isinstance(value, list) and value[0] != "1":
                node["inputs"][key] = [f"1{value[0]}", value[1]]
        renamed[f"1{node_id}"] = node
    return renamed


def test_the_lora_changes_the_image_and_unloading_restores_the_model(server, client):
    before = saved_image(server, client.run(plain()), "5")
    with_lora = saved_image(server, client.run(load_api_workflow("sdxl_lora")), "5")
    assert np.abs(with_lora.astype(int) - before.astype(int)).mean() > 2
    client.free()
    assert np.array_equal(saved_image(server, client.run(plain()), "5"), before)


def test_a_plain_branch_beside_a_lora_branch_is_untouched(server, client):
    alone = saved_image(server, client.run(plain()), "5")
    lora_alone = saved_image(server, client.run(load_api_workflow("sdxl_lora")), "5")
    branches = {**plain(), **lora_branch()}
    branches["15"]["inputs"]["filename_prefix"] = "branch_lora"
    run = client.run(branches)
    assert np.array_equal(saved_image(server, run, "5"), alone)
    assert np.array_equal(saved_image(server, run, "15"), lora_alone)
    assert np.array_equal(saved_image(server, client.run(plain()), "5"), alone)  # after the LoRA branch


def test_a_new_strength_loads_nothing_from_disk_again(server, client):
    prompt = load_api_workflow("sdxl_lora")
    first = saved_image(server, client.run(prompt), "5")
    prompt["6"]["inputs"]["strength_model"] = 0.5
    run = client.run(prompt)
    assert "1" in run.cached_nodes and "6" not in run.cached_nodes  # the loader's models are reused
    assert not np.array_equal(saved_image(server, run, "5"), first)


def test_another_familys_lora_is_refused_and_the_server_keeps_serving(server, client):
    prompt = load_api_workflow("sdxl_lora")
    prompt["6"]["inputs"]["lora_name"] = "tiny-flux-lora-peft.safetensors"
    run = client.run(prompt)
    assert run.status == "error"
    message = run.error()["exception_message"]
    assert "tiny-flux-lora-peft.safetensors has no weights for this 'stable_diffusion_xl' model" in message
    assert "a LoRA for Flux" in message
    assert client.run(plain()).status == "success"
    refused = load_api_workflow("sdxl_lora")
    refused["6"]["inputs"]["lora_name"] = "../../etc/passwd"
    try:
        client.submit(refused)
    except PromptRejected as rejected:
        assert "lora_name" in str(rejected.body)
    else:
        raise AssertionError("a path outside the loras folders was queued")


@pytest.mark.parametrize(
    ("name", "magnitude"),
    [("tiny-sdxl-lycoris-dora", ".dora_scale"), ("tiny-sdxl-peft-dora", ".lora_magnitude_vector")],
)
def test_a_doras_magnitudes_reach_the_image(server, client, name, magnitude):
    loras = server.base / "models" / "loras"
    tensors = safetensors.torch.load_file(str(loras / f"{name}.safetensors"))
    without = {key: value for key, value in tensors.items() if not key.endswith(magnitude)}
    assert len(without) < len(tensors)
    safetensors.torch.save_file(without, str(loras / f"{name}-no-magnitudes.safetensors"))
    images = []
    for file in (name, f"{name}-no-magnitudes"):
        prompt = load_api_workflow("sdxl_lora")
        prompt["6"]["inputs"]["lora_name"] = f"{file}.safetensors"
        images.append(saved_image(server, client.run(prompt), "5").astype(int))
    assert np.abs(images[0] - images[1]).mean() > 1  # the magnitudes change the image
