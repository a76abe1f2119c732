"""Wan 2.2 text-to-video in one node through a real ComfyUI server, on the tiny random-weight Wan 2.2
folder (scripts/build_tiny.py tiny-wan22: two transformers, `boundary_ratio` 0.875). diffusers' Wan 2.2
loop denoises the high-noise steps with `transformer` and the rest with `transformer_2`; the one node
(MDiff_wan_Wan22Blocks) must do the same under ComfyUI's model management: its frames equal plain
diffusers bit for bit, both transformers are loaded and managed by the pack, and progress counts every
step of the loop across the swap."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import ModularPipeline
from PIL import Image
from tiny_models import build_tiny
from tiny_recipes.wan import BOUNDARY_RATIO

MODEL = "tiny-wan22"
NODE = "MDiff_wan_Wan22Blocks"
TRANSFORMER = "DiffusersWanTransformer3DModel"  # the pack's holder class of a WanTransformer3DModel
LOADED_MODELS = "/api/modular_diffusers/loaded_models"
PROMPT = "a red fox running through the snow"
NEGATIVE = "blurry, low quality, still"
SIZE = 64
FRAMES = 5  # 2 latent frames, when the node has a num_frames widget (else diffusers' default, 81)

_prefixes = itertools.count()


@pytest.fixture(scope="module")
def wan22(server, tiny_models, tiny_model) -> Path:
    """The tiny Wan 2.2 folder, where the session's server finds it (models/diffusers/tiny-wan22).

    Listed in the tiny-model registry (scripts/tiny_models.py), it is built with the others and linked
    into every test server at start; until then it is built beside them here (idempotent) and linked
    into the running server, whose loader looks its folders up on every run."""
    folder = tiny_models.get(MODEL) or build_tiny(MODEL, tiny_model.parent / MODEL)
    link = server.base / "models" / "diffusers" / MODEL
    if not link.exists():
        link.symlink_to(folder, target_is_directory=True)
    return folder


@pytest.fixture(scope="module")
def node_info(server) -> dict[str, Any]:
    return server.client().object_info(NODE)


@pytest.fixture(scope="module")
def num_frames(node_info) -> int | None:
    """5 frames when the node lets the user choose; None (diffusers' default) when it does not."""
    inputs = {**node_info["input"].get("required", {}), **node_info["input"].get("optional", {})}
    return FRAMES if "num_frames" in inputs else None


@pytest.fixture(scope="module")
def plain(wan22) -> ModularPipeline:
    pipe = ModularPipeline.from_pretrained(str(wan22))
    pipe.load_components(dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def one_node_prompt(node_info: dict[str, Any], steps: int, seed: int, num_frames: int | None, model: str = MODEL):
    """Load Diffusers Components -> Wan 2.2 › Text to Video -> Save Image (every frame)."""
    inputs = {
        "components": ["1", 0],
        "guidance_scale": 5.0,  # the widget's default, as the UI sends it: the shipped guider's scale
        "prompt": PROMPT,
        "negative_prompt": NEGATIVE,
        "num_inference_steps": steps,
        "height": SIZE,
        "width": SIZE,
        "seed": seed,
    }
    if num_frames is not None:
        inputs["num_frames"] = num_frames
    videos = node_info["output_name"].index("videos")
    return {
        "1": {"class_type": "MDiff_LoadComponents", "inputs": {"model": model, "dtype": "float32"}},
        "2": {"class_type": NODE, "inputs": inputs, "_meta": {"title": "Wan 2.2 › Text to Video"}},
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", videos], "filename_prefix": f"wan22_{next(_prefixes)}"},
        },
    }


def saved_frames(server, run) -> np.ndarray:
    """Every frame the SaveImage node wrote, in order: [F, H, W, 3] uint8."""
    assert run.status == "success", run.error() or run.history.get("status")
    images = run.output("3")["images"]
    files = [server.base / "output" / image["subfolder"] / image["filename"] for image in images]
    return np.stack([np.asarray(Image.open(path).convert("RGB")) for path in files])


def plain_frames(pipe: ModularPipeline, steps: int, seed: int, num_frames: int | None) -> np.ndarray:
    """What plain diffusers makes, as the frames SaveImage writes: [F, H, W, 3] uint8."""
    video = pipe(
        prompt=PROMPT,
        negative_prompt=NEGATIVE,
        height=SIZE,
        width=SIZE,
        num_frames=num_frames,
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
        output="videos",
    )
    assert video.shape[0] == 1
    return np.clip(255.0 * video[0], 0, 255).astype(np.uint8)  # what SaveImage does before writing the PNG


def test_one_node_equals_plain_diffusers(server, client, node_info, plain, num_frames):
    steps, seed = 6, 42  # t = 999, 937 on transformer; 857, 750, 600, 376 on transformer_2
    comfy = saved_frames(server, client.run(one_node_prompt(node_info, steps, seed, num_frames)))
    frames = num_frames or plain.default_num_frames
    assert comfy.shape == (frames, SIZE, SIZE, 3)
    assert comfy.std() > 5  # not flat
    reference = plain_frames(plain, steps, seed, num_frames)
    assert np.array_equal(comfy, reference)

    # The low-noise transformer matters: with transformer in its place, the frames differ.
    low_noise = plain.transformer_2
    plain.update_components(transformer_2=plain.transformer)
    try:
        one_transformer = plain_frames(plain, steps, seed, num_frames)
    finally:
        plain.update_components(transformer_2=low_noise)
    assert np.abs(comfy.astype(int) - one_transformer.astype(int)).mean() > 2


def our_models(client) -> list[dict[str, Any]]:
    return [model for model in client.get(LOADED_MODELS)["models"] if model["managed_by_pack"]]


def test_both_transformers_are_loaded_and_managed_by_the_pack(server, client, node_info, wan22, num_frames):
    # Start from nothing loaded, so every model listed below was loaded by this prompt.
    client.free()
    deadline = time.monotonic() + 20
    while our_models(client) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert our_models(client) == []

    during: list[dict[str, Any]] = []

    def look_at_first_step(message, prompt_id):
        if message["type"] == "progress" and message["data"]["node"] == "2" and not during:
            during.extend(client.get(LOADED_MODELS)["models"])

    run = client.run(one_node_prompt(node_info, 4, 2024, num_frames), on_message=look_at_first_step)
    assert run.status == "success", run.error()
    after = client.get(LOADED_MODELS)["models"]
    for models in (during, after):
        transformers = [model for model in models if model["class"] == TRANSFORMER]
        assert len(transformers) == 2, models
        assert all(model["managed_by_pack"] for model in transformers)
        assert transformers[0]["size_bytes"] == transformers[1]["size_bytes"] > 0  # same shapes
    loaded = {model["class"] for model in after if model["managed_by_pack"]}
    assert {TRANSFORMER, "DiffusersAutoencoderKLWan", "DiffusersUMT5EncoderModel"} <= loaded


def test_progress_counts_every_step_across_the_swap(client, node_info, num_frames):
    steps = 7  # t = 999, 947, 882 on transformer; 800, 692, 546, 334 on transformer_2
    run = client.run(one_node_prompt(node_info, steps, 1007, num_frames))
    assert run.status == "success", run.error()
    assert "2" not in run.cached_nodes
    progress = [message for message in run.events("progress") if message["node"] == "2"]
    assert [message["value"] for message in progress] == list(range(1, steps + 1))
    assert {message["max"] for message in progress} == {steps}


@pytest.fixture(scope="module")
def other_boundary(server, wan22, tmp_path_factory) -> tuple[str, Path]:
    """tiny-wan22 with boundary_ratio 0.5 in its model_index.json (the components are the same folders),
    linked into the server as tiny-wan22-boundary-0.5."""
    name = f"{MODEL}-boundary-0.5"
    folder = tmp_path_factory.mktemp("wan22-boundary") / name
    folder.mkdir()
    index = json.loads((wan22 / "model_index.json").read_text())
    index["boundary_ratio"] = 0.5
    (folder / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    for component in (path for path in wan22.iterdir() if path.is_dir()):
        (folder / component.name).symlink_to(component, target_is_directory=True)
    link = server.base / "models" / "diffusers" / name
    link.symlink_to(folder, target_is_directory=True)
    yield name, folder
    link.unlink()


def test_one_node_uses_the_folders_boundary_ratio(server, client, node_info, other_boundary, num_frames):
    name, folder = other_boundary
    steps, seed = 6, 42  # with 0.5: t = 999, 937, 857, 750, 600 on transformer, 376 on transformer_2
    pipe = ModularPipeline.from_pretrained(str(folder))
    pipe.load_components(dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.config.boundary_ratio == 0.5 != BOUNDARY_RATIO
    reference = plain_frames(pipe, steps, seed, num_frames)
    comfy = saved_frames(server, client.run(one_node_prompt(node_info, steps, seed, num_frames, model=name)))
    assert np.array_equal(comfy, reference)


def test_the_second_guider_has_its_own_scale(server, client, node_info, wan22, num_frames):
    """Wan 2.2's low-noise transformer has its own guider (`guider_2`, shipped at 3.0): its scale is the
    node's `guidance_scale_2`, and setting it gives what plain diffusers gives with that guider."""
    from diffusers.guiders import ClassifierFreeGuidance

    assert node_info["input"]["optional"]["guidance_scale_2"][1]["default"] == 3.0
    steps, seed = 7, 5
    prompt = one_node_prompt(node_info, steps, seed, num_frames)
    prompt["2"]["inputs"]["guidance_scale_2"] = 1.5
    comfy = saved_frames(server, client.run(prompt))
    pipe = ModularPipeline.from_pretrained(str(wan22))
    pipe.load_components(dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    default = plain_frames(pipe, steps, seed, num_frames)
    pipe.update_components(guider_2=ClassifierFreeGuidance(guidance_scale=1.5))
    assert np.array_equal(comfy, plain_frames(pipe, steps, seed, num_frames))
    assert not np.array_equal(comfy, default)
