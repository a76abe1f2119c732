"""Weights stored in fp8 (Load Diffusers Components' weight dtypes) through a real server: SDXL and Flux
images close to float32, the models' resident size reported smaller, the pack's parity tests untouched.

Metric: the mean absolute difference of the saved images' pixels (0..1) from the default (float32) run,
bounded at a fraction of what another seed changes (random tiny weights: fp8's error here says nothing about
a real model's quality, only that fp8 storage computes the same model)."""

from __future__ import annotations

import numpy as np
import pytest
from comfy_harness import load_api_workflow
from helpers import saved_image, start_server

LOADED_MODELS = "/api/modular_diffusers/loaded_models"
# workflow, the loader's fp8 options, the bound on the mean absolute difference (0..1)
CASES = {
    "sdxl": ("sdxl_text2image", {"weight_dtype": "fp8_e4m3fn"}, 0.03),
    "sdxl_e5m2": (
        "sdxl_text2image",
        {"weight_dtype": "fp8_e5m2", "text_encoder_weight_dtype": "fp8_e5m2"},
        0.06,
    ),
    "flux": (
        "flux_text2image",
        {"weight_dtype": "fp8_e4m3fn", "text_encoder_weight_dtype": "fp8_e4m3fn"},
        0.04,
    ),
}


def loader_of(prompt: dict) -> dict:
    return next(node for node in prompt.values() if node["class_type"] == "MDiff_LoadComponents")["inputs"]


def save_node(prompt: dict) -> str:
    return next(key for key, node in prompt.items() if node["class_type"] == "SaveImage")


def seed_node(prompt: dict) -> str:
    return next(key for key, node in prompt.items() if "seed" in node["inputs"])


def image(server, client, name: str, options: dict, seed: int | None = None, steps: int | None = None) -> np.ndarray:
    prompt = load_api_workflow(name)
    loader_of(prompt).update(options)
    if seed is not None:
        prompt[seed_node(prompt)]["inputs"]["seed"] = seed
    if steps is not None:
        prompt[seed_node(prompt)]["inputs"]["num_inference_steps"] = steps
    return saved_image(server, client.run(prompt), save_node(prompt)).astype(np.float32) / 255.0


@pytest.mark.parametrize("case", list(CASES))
def test_fp8_images_are_close_to_float32(server, client, case):
    name, options, bound = CASES[case]
    default = image(server, client, name, {})
    fp8 = image(server, client, name, options)
    other_seed = image(server, client, name, {}, seed=1234)
    difference = np.abs(fp8 - default).mean()
    assert 0 < difference < bound, difference  # computed in fp8, close to float32
    assert difference < 0.5 * np.abs(other_seed - default).mean()


def test_the_shipped_fp8_workflow_runs_and_its_unet_is_smaller(server, client):
    client.free()
    prompt = load_api_workflow("sdxl_text2image_fp8")
    assert saved_image(server, client.run(prompt), "5").std() > 5
    sizes = {m["class"]: m["size_bytes"] for m in client.get(LOADED_MODELS)["models"] if m["managed_by_pack"]}
    client.free()
    assert saved_image(server, client.run(load_api_workflow("sdxl_text2image")), "5").std() > 5
    default = {m["class"]: m["size_bytes"] for m in client.get(LOADED_MODELS)["models"] if m["managed_by_pack"]}
    unet = "DiffusersUNet2DConditionModel"
    assert sizes[unet] < 0.35 * default[unet]  # float32 -> fp8 but the norms: about a quarter
    assert sizes["DiffusersAutoencoderKL"] == default["DiffusersAutoencoderKL"]  # only the denoiser


@pytest.fixture(scope="module")
def fp8_compute_server(tmp_path_factory, tiny_model):
    """A server started with ComfyUI's --supports-fp8-compute: this CPU then takes the fp8 matmul path
    (ComfyUI's fp8_ops through torch._scaled_mm) that fp8_e4m3fn_fast uses on GPUs with fp8 compute."""
    comfy = start_server(tmp_path_factory.mktemp("fp8-compute"), tiny_model, extra_args=["--supports-fp8-compute"])
    yield comfy
    comfy.stop()


def test_fp8_e4m3fn_fast_computes_fp8_matmuls_where_the_device_has_them(server, client, fp8_compute_server):
    def run(options: dict, seed: int | None = None) -> np.ndarray:
        # 3 steps: torch's fp8 matmul on a CPU is slow (about 6 s a step for the tiny UNet)
        return image(fp8_compute_server, fast_client, "sdxl_text2image", options, seed=seed, steps=3)

    fast_client = fp8_compute_server.client()
    default, fast = run({}), run({"weight_dtype": "fp8_e4m3fn_fast"})
    stored, other_seed = run({"weight_dtype": "fp8_e4m3fn"}), run({}, seed=1234)
    difference = np.abs(fast - default).mean()
    assert 0 < difference < 0.03, difference  # fp8 weights and fp8 inputs, close to float32
    assert difference < 0.5 * np.abs(other_seed - default).mean()
    assert not np.array_equal(fast, stored)  # the inputs are fp8 too: other numbers than fp8 storage alone
    # Without fp8 compute (the shared server: this CPU), _fast is fp8_e4m3fn, pixel for pixel.
    fallback = image(server, client, "sdxl_text2image", {"weight_dtype": "fp8_e4m3fn_fast"})
    assert np.array_equal(fallback, image(server, client, "sdxl_text2image", {"weight_dtype": "fp8_e4m3fn"}))
    assert "fp8_e4m3fn_fast without fp8 matmuls" in server.log()
