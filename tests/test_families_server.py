"""Generated model-family nodes end to end through a real ComfyUI server, one table row per family
workflow on its tiny random-weight model: the block-by-block graph equals plain diffusers bit for bit,
equals the one-node workflow, depends on the seed, reports every denoising step, and stops within a step
when interrupted without leaving anything behind for the next prompt."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from comfy_harness import comfyui_dir, load_api_workflow
from diffusers import ModularPipeline
from PIL import Image, ImageOps

Workflow = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """One family workflow: a block-by-block API workflow and its one-node variant."""

    graph: str  # workflows/api/<graph>.json
    one_node: str  # workflows/api/<one_node>.json
    model: str  # the tiny model folder under models/diffusers (as the workflows name it)
    denoise: str  # the graph's node with the denoising loop: num_inference_steps, seed, progress
    save: str  # the graph's SaveImage
    single: str  # the one-node workflow's node: num_inference_steps, seed, progress
    single_save: str  # the one-node workflow's SaveImage
    # The plain-diffusers call that the graph makes (besides steps, generator and output type),
    # read from the graph's widget values.
    reference: Callable[[Workflow], dict[str, Any]]
    other_seeds: tuple[str, ...] = ()  # more graph nodes with a seed widget, kept equal to the denoise seed
    # Denoise-node inputs that make every step slow enough (tens of ms) to interrupt within one.
    slow_steps: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.graph


def _inputs(workflow: Workflow, class_suffix: str) -> dict[str, Any]:
    return next(node["inputs"] for node in workflow.values() if node["class_type"].endswith(class_suffix))


def _z_image(graph: Workflow) -> dict[str, Any]:
    # The guidance_scale widget keeps the guider's default (5.0 with CFG disabled in diffusers' Z-Image
    # blocks), so the plain call leaves the guider alone.
    text, denoise = _inputs(graph, "_text_encoder"), _inputs(graph, "_denoise")
    return {
        "prompt": text["prompt"],
        "negative_prompt": text["negative_prompt"],
        "max_sequence_length": text["max_sequence_length"],
        "height": denoise["height"],
        "width": denoise["width"],
    }


def _flux(graph: Workflow) -> dict[str, Any]:
    text, denoise = _inputs(graph, "_text_encoder"), _inputs(graph, "_denoise")
    return {
        "prompt": text["prompt"],
        "max_sequence_length": text["max_sequence_length"],
        "height": denoise["height"],
        "width": denoise["width"],
        "guidance_scale": denoise["guidance_scale"],
    }


def _loaded_image(name: str, scale: dict[str, Any]) -> Image.Image:
    """What core LoadImage + ImageScale hand to the pack, as the PIL image the pack gives diffusers."""
    from comfy.utils import common_upscale
    from comfyui_modular_diffusers.adapters.convert import image_to_pil

    pixels = np.asarray(ImageOps.exif_transpose(Image.open(comfyui_dir() / "input" / name)).convert("RGB"))
    image = torch.from_numpy(pixels.astype(np.float32) / 255.0)[None]
    method, crop = scale["upscale_method"], scale["crop"]
    image = common_upscale(image.movedim(-1, 1), scale["width"], scale["height"], method, crop).movedim(1, -1)
    return image_to_pil(image, None)


def _flux_kontext(graph: Workflow) -> dict[str, Any]:
    text, encode, denoise = (_inputs(graph, suffix) for suffix in ("_text_encoder", "_vae_encoder", "_denoise"))
    return {
        "prompt": text["prompt"],
        "max_sequence_length": text["max_sequence_length"],
        "image": _loaded_image(_inputs(graph, "LoadImage")["image"], _inputs(graph, "ImageScale")),
        "_auto_resize": encode["_auto_resize"],
        "max_area": denoise["max_area"],
        "guidance_scale": denoise["guidance_scale"],
    }


CASES = [
    Case(
        "z_image_text2image",
        "z_image_text2image_one_node",
        "tiny-z-image",
        denoise="3",
        save="5",
        single="2",
        single_save="3",
        reference=_z_image,
        slow_steps={"height": 1024, "width": 1024},
    ),
    Case(
        "flux_text2image",
        "flux_text2image_one_node",
        "tiny-flux",
        denoise="3",
        save="5",
        single="2",
        single_save="3",
        reference=_flux,
        slow_steps={"height": 1024, "width": 1024},
    ),
    Case(
        "flux_kontext_edit",
        "flux_kontext_edit_one_node",
        "tiny-flux-kontext",
        denoise="6",
        save="8",
        single="4",
        single_save="5",
        reference=_flux_kontext,
        other_seeds=("5",),
        slow_steps={"max_area": 1024 * 1024},
    ),
]
parametrize_cases = pytest.mark.parametrize("case", CASES, ids=str)
_prefixes = itertools.count()


def graph_prompt(case: Case, steps: int, seed: int, **denoise: Any) -> Workflow:
    prompt = load_api_workflow(case.graph)
    prompt[case.denoise]["inputs"].update(num_inference_steps=steps, seed=seed, **denoise)
    for node in case.other_seeds:
        prompt[node]["inputs"]["seed"] = seed
    prompt[case.save]["inputs"]["filename_prefix"] = f"{case.graph}_{next(_prefixes)}"
    return prompt


def one_node_prompt(case: Case, steps: int, seed: int) -> Workflow:
    prompt = load_api_workflow(case.one_node)
    prompt[case.single]["inputs"].update(num_inference_steps=steps, seed=seed)
    prompt[case.single_save]["inputs"]["filename_prefix"] = f"{case.one_node}_{next(_prefixes)}"
    return prompt


def saved_image(server, run, node_id: str) -> np.ndarray:
    assert run.status == "success", run.error() or run.history.get("status")
    image = run.output(node_id)["images"][0]
    return np.asarray(Image.open(server.base / "output" / image["subfolder"] / image["filename"]).convert("RGB"))


def comfy_quantize(image: np.ndarray) -> np.ndarray:
    """What SaveImage does to a float image before writing the PNG."""
    return np.clip(255.0 * image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def plain_pipelines(tiny_models):
    """Plain diffusers pipelines, one per tiny model folder, loaded on first use."""
    pipelines: dict[str, ModularPipeline] = {}

    def get(model: str) -> ModularPipeline:
        if model not in pipelines:
            pipe = ModularPipeline.from_pretrained(str(tiny_models[model]))
            pipe.load_components(dtype=torch.float32)
            pipelines[model] = pipe
        return pipelines[model]

    return get


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory, tiny_model):
    """A second server that never sees an interrupted prompt (module-scoped: one start for every case)."""
    from conftest import start_server

    comfy = start_server(tmp_path_factory.mktemp("families-fresh"), tiny_model)
    yield comfy
    comfy.stop()


@parametrize_cases
def test_block_graph_equals_plain_diffusers(server, client, plain_pipelines, case):
    steps, seed = 8, 42
    comfy_image = saved_image(server, client.run(graph_prompt(case, steps, seed)), case.save)
    assert comfy_image.shape == (64, 64, 3)
    assert comfy_image.std() > 5  # not a flat image
    reference = plain_pipelines(case.model)(
        **case.reference(load_api_workflow(case.graph)),
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
        output="images",
    )
    assert np.array_equal(comfy_quantize(reference[0]), comfy_image)


@parametrize_cases
def test_one_node_equals_block_graph_and_seeds_decide(server, client, case):
    graph = saved_image(server, client.run(graph_prompt(case, 8, 42)), case.save)
    single = saved_image(server, client.run(one_node_prompt(case, 8, 42)), case.single_save)
    assert np.array_equal(graph, single)
    other_seed = saved_image(server, client.run(one_node_prompt(case, 8, 43)), case.single_save)
    assert np.abs(single.astype(int) - other_seed.astype(int)).mean() > 2


@parametrize_cases
def test_progress_messages_count_the_steps(client, case):
    def steps_reported(run, node: str) -> list[int]:
        assert run.status == "success", run.error()
        assert node not in run.cached_nodes
        progress = [m for m in run.events("progress") if m["node"] == node]
        assert {m["max"] for m in progress} == {len(progress)}
        return [m["value"] for m in progress]

    assert steps_reported(client.run(graph_prompt(case, 7, 1007)), case.denoise) == list(range(1, 8))
    assert steps_reported(client.run(one_node_prompt(case, 5, 1005)), case.single) == [1, 2, 3, 4, 5]


@parametrize_cases
def test_interrupt_stops_the_loop_and_the_next_prompt_is_clean(server, client, fresh_server, case):
    seen = []

    def interrupt_at_first_step(message, prompt_id):
        if message["type"] == "progress" and message["data"]["node"] == case.denoise:
            seen.append(message["data"]["value"])
            if len(seen) == 1:
                client.interrupt(prompt_id)

    long_run = client.run(graph_prompt(case, 1000, 5, **case.slow_steps), on_message=interrupt_at_first_step)
    interrupted = long_run.events("execution_interrupted")
    assert interrupted and interrupted[0]["node_id"] == case.denoise
    assert long_run.status == "error"
    assert 1 <= len(seen) <= 3  # stopped within a step or two of the request, not after 1000
    after = saved_image(server, client.run(graph_prompt(case, 6, 5)), case.save)
    fresh = saved_image(fresh_server, fresh_server.client().run(graph_prompt(case, 6, 5)), case.save)
    assert np.array_equal(after, fresh)
