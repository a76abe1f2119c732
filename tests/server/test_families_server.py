"""Generated model-family nodes end to end through a real ComfyUI server, one table row per family
workflow on its tiny random-weight model: the block-by-block graph equals plain diffusers bit for bit
(every frame, for video), equals the one-node workflow, depends on the seed, reports every denoising
step, shows latent previews, and stops within a step when interrupted without leaving anything behind for
the next prompt. Video workflows also write a video file (core Save Video) of the same frames. Beside
the table: a components bundle of one family is refused by another family's node, and a guider that a
model ships switched off (Z-Image) is switched on by the guidance-scale widget."""

from __future__ import annotations

import io
import itertools
import json
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest
import torch
import websocket
from comfy_harness import load_api_workflow
from diffusers import ModularPipeline
from diffusers.guiders import ClassifierFreeGuidance
from family_cases import CASES
from family_cases.case import Case, Workflow
from helpers import comfy_quantize, flac_quantize, saved_audio, start_server
from PIL import Image, ImageOps

parametrize_cases = pytest.mark.parametrize("case", CASES, ids=str)
_prefixes = itertools.count()


def graph_prompt(case: Case, steps: int, seed: int, **denoise: Any) -> Workflow:
    prompt = load_api_workflow(case.graph)
    prompt[case.denoise]["inputs"].update(num_inference_steps=steps, **denoise)
    # The denoise node's seed, and the other seed widgets' (a denoise node may have none of its own).
    seeded = [node for node in (case.denoise, *case.other_seeds) if "seed" in prompt[node]["inputs"]]
    assert seeded, f"{case}: no seed widget on the denoise node or other_seeds"
    for node in seeded:
        prompt[node]["inputs"]["seed"] = seed
    _name_outputs(prompt, case.graph, case.save, case.video)
    return prompt


def one_node_prompt(case: Case, steps: int, seed: int, **inputs: Any) -> Workflow:
    prompt = load_api_workflow(case.one_node)
    prompt[case.single]["inputs"].update(num_inference_steps=steps, seed=seed, **inputs)
    _name_outputs(prompt, case.one_node, case.single_save, case.single_video)
    return prompt


def _name_outputs(prompt: Workflow, name: str, save: str, video: str | None) -> None:
    prefix = f"{name}_{next(_prefixes)}"
    prompt[save]["inputs"]["filename_prefix"] = prefix
    if video is not None:
        prompt[video]["inputs"]["filename_prefix"] = f"video/{prefix}"


def saved_images(server, run, node_id: str) -> np.ndarray:
    """Every image a SaveImage node wrote (all frames of a video), in order: [N, H, W, 3] uint8."""
    assert run.status == "success", run.error() or run.history.get("status")
    images = run.output(node_id)["images"]
    files = [server.base / "output" / image["subfolder"] / image["filename"] for image in images]
    return np.stack([np.asarray(Image.open(path).convert("RGB")) for path in files])


def saved_output(server, run, case: Case, node_id: str) -> np.ndarray:
    """What the case's save node wrote: SaveImage's frames [N, H, W, 3] uint8, or (audio) SaveAudio's
    samples [B, C, T] int16, checked to be at the model's sample rate."""
    if not case.is_audio:
        return saved_images(server, run, node_id)
    samples, rate = saved_audio(server, run, node_id)
    assert rate == case.sample_rate
    return samples


def saved_video(server, run, node_id: str) -> tuple[np.ndarray, Fraction]:
    """The frames ([F, H, W, 3] uint8) and frame rate of the one file a SaveVideo node wrote."""
    assert run.status == "success", run.error() or run.history.get("status")
    output = run.output(node_id)
    assert output["animated"] == [True]
    (video,) = output["images"]
    with av.open(str(server.base / "output" / video["subfolder"] / video["filename"])) as container:
        stream = container.streams.video[0]
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(stream)])
        return frames, stream.average_rate


def check_video_of_frames(server, run, node_id: str, frames: np.ndarray, fps: Fraction) -> None:
    """The saved video holds the frames SaveImage saved, as many, of the same size, in the same order,
    at the family's frame rate. H.264 in yuv420p is lossy, and the tiny model's frames are noisy
    (consecutive frames differ by ~60 of 255), so each video frame is compared by its correlation with
    its PNG (~0.9; ~0 with any other frame) and its mean colour."""
    video, rate = saved_video(server, run, node_id)
    assert video.shape == frames.shape
    assert rate == fps
    video, frames = video.astype(float), frames.astype(float)
    for got, want in zip(video, frames, strict=True):
        assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.75
        assert np.abs(got.mean((0, 1)) - want.mean((0, 1))).max() < 4


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
    comfy = start_server(tmp_path_factory.mktemp("families-fresh"), tiny_model)
    yield comfy
    comfy.stop()


def plain_frames(pipe: ModularPipeline, case: Case, graph: Workflow, steps: int, seed: int) -> np.ndarray:
    """What plain diffusers makes for the graph, as the frames SaveImage writes: [N, H, W, 3] uint8
    (an image batch, or every frame of every video: how the pack's IMAGE output flattens them), decoded
    to the family's output type as the pack's decoders are (8-bit PIL images are saved as they are)."""
    from comfyui_modular_diffusers.nodes.families import FAMILIES

    output_type = FAMILIES[type(pipe).__module__.split(".")[2]].output_type
    result = pipe(
        **case.reference(graph),
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(seed),
        output_type=output_type,
        output=case.output,
    )
    if output_type == "pil":
        return np.stack([np.asarray(image.convert("RGB")) for image in result])
    result = np.asarray(result)
    return comfy_quantize(result.reshape(-1, *result.shape[-3:]))


def plain_output(pipe: ModularPipeline, case: Case, graph: Workflow, steps: int, seed: int) -> np.ndarray:
    """What plain diffusers makes for the graph, as the case's save node writes it (`saved_output`)."""
    if not case.is_audio:
        return plain_frames(pipe, case, graph, steps, seed)
    waveforms = pipe(
        **case.reference(graph),
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
        output=case.output,
    )
    return flac_quantize(np.asarray(waveforms))


@parametrize_cases
def test_block_graph_equals_plain_diffusers(server, client, plain_pipelines, case):
    steps, seed = 8, 42
    run = client.run(graph_prompt(case, steps, seed))
    comfy_frames = saved_output(server, run, case, case.save)
    if case.is_audio:
        assert comfy_frames.ndim == 3 and comfy_frames.std() > 1000  # [B, C, T] of int16: not silent
    else:
        assert comfy_frames.shape[1:] == (64, 64, 3)
        assert comfy_frames.std() > 5  # not flat
    pipe = plain_pipelines(case.model)
    reference = plain_output(pipe, case, load_api_workflow(case.graph), steps, seed)
    assert reference.shape == comfy_frames.shape
    assert np.array_equal(reference, comfy_frames)
    if case.output == "videos":  # every frame of the one video: the denoise node's count, else diffusers' default
        num_frames = case.reference(load_api_workflow(case.graph))["num_frames"]
        assert len(comfy_frames) == (num_frames or pipe.default_num_frames)
    if case.video is not None:
        check_video_of_frames(server, run, case.video, comfy_frames, case.fps)


@parametrize_cases
def test_one_node_equals_block_graph_and_seeds_decide(server, client, case):
    # The graph runs with other steps first, so its denoise node then runs again on cached upstream nodes,
    # whose outputs its first run must have left as they were (a generator it drew from, say).
    assert client.run(graph_prompt(case, 7, 42)).status == "success"
    graph = saved_output(server, client.run(graph_prompt(case, 8, 42)), case, case.save)
    single_run = client.run(one_node_prompt(case, 8, 42))
    single = saved_output(server, single_run, case, case.single_save)
    assert np.array_equal(graph, single)
    if case.single_video is not None:
        check_video_of_frames(server, single_run, case.single_video, single, case.fps)
    other_seed = saved_output(server, client.run(one_node_prompt(case, 8, 43)), case, case.single_save)
    assert np.abs(single.astype(int) - other_seed.astype(int)).mean() > 2


@parametrize_cases
def test_progress_messages_count_the_steps(client, case):
    def steps_reported(run, node: str) -> list[int]:
        assert run.status == "success", run.error()
        assert node not in run.cached_nodes
        progress = [m for m in run.events("progress") if m["node"] == node]
        assert {m["max"] for m in progress} == {len(progress)}
        return [m["value"] for m in progress]

    # Every step of every chunk, under one total (the `max` of every message) from the first step on.
    graph_steps, single_steps = 7 * case.chunks, 5 * case.chunks
    assert steps_reported(client.run(graph_prompt(case, 7, 1007)), case.denoise) == list(range(1, graph_steps + 1))
    assert steps_reported(client.run(one_node_prompt(case, 5, 1005)), case.single) == list(range(1, single_steps + 1))


@parametrize_cases
def test_interrupt_stops_the_loop_and_the_next_prompt_is_clean(server, client, fresh_server, case):
    seen = []

    def interrupt_at_first_step(message, prompt_id):
        if message["type"] == "progress" and message["data"]["node"] == case.denoise:
            seen.append(message["data"]["value"])
            if len(seen) == 1:
                client.interrupt(prompt_id)

    long_prompt = graph_prompt(case, 1000, 5)
    long_prompt[case.slow_node or case.denoise]["inputs"].update(case.slow_steps)
    long_run = client.run(long_prompt, on_message=interrupt_at_first_step)
    interrupted = long_run.events("execution_interrupted")
    assert interrupted and interrupted[0]["node_id"] == case.denoise
    assert long_run.status == "error"
    assert 1 <= len(seen) <= 3  # stopped within a step or two of the request, not after 1000
    after = saved_output(server, client.run(graph_prompt(case, 6, 5)), case, case.save)
    fresh = saved_output(fresh_server, fresh_server.client().run(graph_prompt(case, 6, 5)), case, case.save)
    assert np.array_equal(after, fresh)


# -- latent previews ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def preview_server(tmp_path_factory, tiny_model):
    """A server with ComfyUI's latent2rgb previews on (the default is none)."""
    base = tmp_path_factory.mktemp("families-previews")
    comfy = start_server(base, tiny_model, extra_args=["--preview-method", "latent2rgb"])
    yield comfy
    comfy.stop()


def preview_images(server, prompt: Workflow) -> tuple[str, list[Image.Image]]:
    """Run `prompt` and collect the preview images the server sends while it runs (binary websocket
    messages: event type, image type, then the JPEG). Returns the run's status and the images."""
    client = server.client()
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws?clientId={client.client_id}", timeout=120)
    images = []
    try:
        prompt_id = client.submit(prompt)
        while True:
            raw = ws.recv()
            if isinstance(raw, bytes):
                images.append(Image.open(io.BytesIO(raw[raw.index(b"\xff\xd8\xff") :])))
                continue
            message = json.loads(raw)
            data = message.get("data", {})
            if message["type"] == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                break
    finally:
        ws.close()
    status = client.get(f"/api/history/{prompt_id}")[prompt_id]["status"]["status_str"]
    return status, images


def latent2rgb_preview(pipe: ModularPipeline, case: Case, graph: Workflow, steps: int, seed: int) -> Image.Image:
    """What ComfyUI's latent2rgb preview of plain diffusers' final latents looks like, scaled to the
    preview size the way the server scales it: the preview of the last denoising step."""
    import comfy.latent_formats
    import latent_preview
    from comfy.cli_args import args
    from comfyui_modular_diffusers.nodes.families import FAMILIES

    family = type(pipe).__module__.split(".")[2]
    latent_format = getattr(comfy.latent_formats, FAMILIES[family].latent_format)()
    latents = pipe(
        **case.reference(graph),
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(seed),
        output="latents",
    )
    if case.loop_latents is not None:
        latents = case.loop_latents(pipe, latents)
    factors = ("latent_rgb_factors", "latent_rgb_factors_bias", "latent_rgb_factors_reshape")
    previewer = latent_preview.Latent2RGBPreviewer(*(getattr(latent_format, name) for name in factors))
    image = previewer.decode_latent_to_preview(latents.float())
    return ImageOps.contain(image, (args.preview_size, args.preview_size), Image.Resampling.BILINEAR)


PREVIEW_CASES = [pytest.param(case, False, id=str(case)) for case in CASES] + [
    pytest.param(case, True, id=f"{case}-64x128") for case in CASES if case.non_square_preview
]


@pytest.mark.parametrize(("case", "non_square"), PREVIEW_CASES)
def test_latent_previews_at_every_step(preview_server, plain_pipelines, case, non_square):
    """One latent2rgb preview per denoising step; the last one is the preview of the final latents.
    Flux packs its loop latents as 2x2-patch tokens ([B, tokens, 64]): the preview shows the latent
    grid only when the family's unpacking (nodes/previews.py) finds it, which a non-square image
    (64x128 pixels: 4x8 tokens) tells apart from a guess."""
    steps, seed = 5, 3
    prompt = graph_prompt(case, steps, seed, **({"height": 64, "width": 128} if non_square else {}))
    status, images = preview_images(preview_server, prompt)
    assert status == "success"
    if not case.previews:  # ComfyUI has no latent format for the family's latents: none, and no failure
        assert images == []
        return
    assert len(images) == steps * case.chunks
    last = np.asarray(images[-1].convert("RGB")).astype(int)
    expected = np.asarray(latent2rgb_preview(plain_pipelines(case.model), case, prompt, steps, seed)).astype(int)
    assert last.shape == expected.shape
    assert np.abs(last - expected).mean() < 3  # JPEG


# -- a components bundle of another family -----------------------------------------------------------

MISMATCHES = [
    # (loader model, its family, node of another family, that node's family, the node's image output)
    pytest.param(*row, id=f"{row[0]}-into-{row[3]}")
    for row in [
        ("tiny-sdxl", "stable_diffusion_xl", "MDiff_flux_FluxAutoBlocks_text2image", "flux", 8),
        ("tiny-flux", "flux", "MDiff_wan_WanBlocks", "wan", 5),
        ("tiny-wan", "wan", "MDiff_z_image_ZImageAutoBlocks_text2image", "z_image", 6),
    ]
]
# The loader model's own one-node workflow (API file, node with the steps widget).
OWN_WORKFLOW = {
    "tiny-sdxl": ("sdxl_text2image_one_node", "2"),
    "tiny-flux": ("flux_text2image_one_node", "2"),
    "tiny-wan": ("wan_text2video_one_node", "2"),
}


@pytest.mark.parametrize(("model", "family", "node_class", "node_family", "output"), MISMATCHES)
def test_components_of_another_family_are_refused(server, client, model, family, node_class, node_family, output):
    """Refused before the node runs anything, with a message that names the node and both families,
    never a tensor-shape error from deep inside the wrong model."""
    prompt = {
        "1": {"class_type": "MDiff_LoadComponents", "inputs": {"model": model, "dtype": "float32"}},
        "2": {
            "class_type": node_class,
            "inputs": {"components": ["1", 0], "prompt": "a fox", "num_inference_steps": 2, "height": 64, "width": 64},
        },
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", output], "filename_prefix": "mismatch"}},
    }
    run = client.run(prompt)
    assert run.status == "error"
    error = run.error()
    assert error["node_id"] == "2" and error["node_type"] == node_class
    assert error["exception_type"].endswith("NodeInputError")
    message = error["exception_message"]
    display_name = client.object_info(node_class)["display_name"]
    assert f"node 2 '{display_name}' ({node_class})" in message
    assert f"'{family}'" in message and f"'{node_family}'" in message and model in message
    assert not any(word in message.lower() for word in ("shape", "size", "mat1", "dimension"))
    # The server, and the same loaded model with its own family's node, still work.
    name, node = OWN_WORKFLOW[model]
    good = load_api_workflow(name)
    good[node]["inputs"]["num_inference_steps"] = 2
    assert client.run(good).status == "success"


# -- Z-Image guidance --------------------------------------------------------------------------------


def test_z_image_guidance_scale_switches_the_shipped_off_guider_on(server, client, plain_pipelines):
    """Z-Image's guider ships switched off (the widget's default 1 keeps it off); a scale of 4 with a
    negative prompt runs CFG, as plain diffusers does with a ClassifierFreeGuidance(guidance_scale=4)."""
    case = next(case for case in CASES if case.graph == "z_image_text2image")
    steps, seed = 6, 42

    def graph(scale: float) -> np.ndarray:
        prompt = graph_prompt(case, steps, seed)
        prompt["2"]["inputs"]["guidance_scale"] = scale
        assert prompt["2"]["inputs"]["negative_prompt"]
        return saved_images(server, client.run(prompt), case.save)

    off, on = graph(1.0), graph(4.0)
    assert np.abs(off.astype(int) - on.astype(int)).mean() > 2
    single = saved_images(server, client.run(one_node_prompt(case, steps, seed, guidance_scale=4.0)), case.single_save)
    assert np.array_equal(single, on)

    pipe = plain_pipelines(case.model)
    shipped = pipe.guider
    assert shipped.config.enabled is False
    assert np.array_equal(plain_frames(pipe, case, load_api_workflow(case.graph), steps, seed), off)
    pipe.update_components(guider=ClassifierFreeGuidance(guidance_scale=4.0))
    try:
        reference = plain_frames(pipe, case, load_api_workflow(case.graph), steps, seed)
    finally:
        pipe.update_components(guider=shipped)
    assert np.array_equal(reference, on)
