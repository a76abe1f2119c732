"""The pack's SDXL block workflow against plain diffusers and ComfyUI's native SDXL nodes, same weights.

    .venv/bin/python bench/bench_native.py [--runs 5] [--steps 8] [--size 256] [--threads 2]
                                           [--skip-startup] [--no-batched] [--plot PATH]

Not part of CI: one run takes about 20 minutes on a 2-core CPU. Builds (once) a random-weight SDXL
folder that ComfyUI's own loader detects (scripts/build_vega_sdxl.py: Segmind-Vega-shaped UNet,
full-size CLIP-L and bigG text encoders, the SDXL VAE; float16 safetensors under bench/results/) and
runs the same prompt, size, steps, Euler sampling, CFG 7.5 and seeds through

  (a) plain diffusers: `ModularPipeline` in a process of its own;
  (b) the pack: workflows/api/sdxl_text2image.json (Load Diffusers Components -> SDXL Text Encoder ->
      SDXL Denoise -> SDXL VAE Decoder -> Save Image) through POST /prompt on a warm ComfyUI server;
  (c) ComfyUI native: DiffusersLoader -> CLIPTextEncode x2 -> EmptyLatentImage -> KSampler (euler,
      ddim_uniform: the timesteps of diffusers' Euler with "leading" spacing and steps_offset 1 when
      the step count divides 1000) -> VAEDecode -> Save Image, on a second server.

Every path computes in float32 (ComfyUI gets --fp32-text-enc; its CPU default would keep the text
encoders in float16) with the same torch thread count, one process at a time. Measured per path:
cold first prompt (load from disk), warm prompt latency (prompt and negative prompt changed each run,
so everything but the loader runs), seconds per denoising step (websocket progress timestamps for
(b)/(c), scheduler.step() timestamps for (a)), seed-only re-queue, unchanged re-queue, peak RSS
(VmHWM of the process). Unless --no-batched, (a) and (b) run again with diffusers' SDXL loop denoiser
patched to run CFG's conditional and unconditional passes as one UNet batch (as ComfyUI does); the
patch reaches the ComfyUI server through a sitecustomize.py in a temporary folder, not the pack.
Also: `adapters.state.fork_state` cost against state size (1 MiB .. 1 GiB), and the pack's import
time (bench/bench_startup.py, or its last result with --skip-startup).

Writes bench/results/native.json (raw; --results NAME for another file), the first warm image of each
path (bench/results/native_images/) and a plot (--plot, default bench/results/native.png), and prints a
summary table. `--env KEY=VALUE` sets the environment of every process the bench starts (docs/benchmarks.md
compares MALLOC_ARENA_MAX=1).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

RESULTS = REPO / "bench" / "results"
MODEL_NAME = "vega-sdxl"
PROMPT = "a photo of a red fox in the snow"
NEGATIVE = "blurry, low quality"
SEED = 42
GUIDANCE = 7.5
UNCHANGED_RUNS = 20
FORK_SIZES_MIB = [1, 4, 16, 64, 256, 1024]

# The fix this bench suggests, applied from outside the pack: diffusers' SDXL loop denoiser runs one
# UNet call per guidance batch (conditional, then unconditional); this runs them as one batch of two.
BATCHED_CFG_PATCH = """
import sys


def _patch_sdxl_loop_denoiser(module):
    import torch

    cls = module.StableDiffusionXLLoopDenoiser
    original = cls.__call__
    names = {
        "prompt_embeds": ("prompt_embeds", "negative_prompt_embeds"),
        "time_ids": ("add_time_ids", "negative_add_time_ids"),
        "text_embeds": ("pooled_prompt_embeds", "negative_pooled_prompt_embeds"),
        "image_embeds": ("ip_adapter_embeds", "negative_ip_adapter_embeds"),
    }

    @torch.no_grad()
    def batched_call(self, components, block_state, i, t):
        guider = components.guider
        if type(guider).__name__ != "ClassifierFreeGuidance":
            return original(self, components, block_state, i, t)
        inputs = {key: (getattr(block_state, a, None), getattr(block_state, b, None)) for key, (a, b) in names.items()}
        guider.set_state(step=i, num_inference_steps=block_state.num_inference_steps, timestep=t)
        batches = guider.prepare_inputs(inputs)
        merged = {}
        for key in inputs:
            values = [getattr(batch, key) for batch in batches]
            merged[key] = None if values[0] is None else torch.cat(values)
        for _ in batches:
            guider.prepare_models(components.unet)
        prediction = components.unet(
            torch.cat([block_state.scaled_latents] * len(batches)),
            t,
            encoder_hidden_states=merged.pop("prompt_embeds"),
            timestep_cond=block_state.timestep_cond,
            cross_attention_kwargs=block_state.cross_attention_kwargs,
            added_cond_kwargs=merged,
            return_dict=False,
        )[0]
        for _ in batches:
            guider.cleanup_models(components.unet)
        for batch, part in zip(batches, prediction.chunk(len(batches))):
            batch.noise_pred = part
        block_state.noise_pred = guider(batches)[0]
        return components, block_state

    cls.__call__ = batched_call
    print("mdiff-bench: batched CFG patch applied to StableDiffusionXLLoopDenoiser", file=sys.stderr, flush=True)
"""

# Applies the patch when diffusers' SDXL denoise module is first imported (a post-import hook), so
# nothing is imported early in the ComfyUI process.
SITECUSTOMIZE = (
    BATCHED_CFG_PATCH
    + """
import importlib.abc
import importlib.util

_TARGET = "diffusers.modular_pipelines.stable_diffusion_xl.denoise"


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def patched_exec(module):
            exec_module(module)
            _patch_sdxl_loop_denoiser(module)

        spec.loader.exec_module = patched_exec
        return spec


sys.meta_path.insert(0, _PatchOnImport())
"""
)


# ----------------------------------------------------------------------------------------------- utils


def proc_status(pid: int | str = "self") -> dict[str, float]:
    """VmRSS / VmHWM of a process in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def counters(pid: int | str = "self") -> dict[str, float]:
    """Minor page faults and user / system CPU seconds of a whole process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return {"minflt": int(fields[7]), "user_s": int(fields[11]) / tick, "sys_s": int(fields[12]) / tick}


def counter_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {key: after[key] - before[key] for key in before}


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def extra_env(args: argparse.Namespace) -> dict[str, str]:
    """--env KEY=VALUE settings, given to every process the bench starts (e.g. MALLOC_ARENA_MAX=1)."""
    return dict(item.split("=", 1) for item in args.env)


def evict_page_cache(folder: Path) -> None:
    """Drop the model's files from the page cache (posix_fadvise, these files only), so that every
    path's first prompt reads its weights from disk. `folder` may also be a single file."""
    for path in [folder] if folder.is_file() else folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def step_intervals(stamps: list[float]) -> list[float]:
    """Seconds between consecutive step completions (the first step is not timed: it has no start)."""
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


def variant(index: int) -> tuple[str, str]:
    """Prompt and negative prompt of warm run `index` (both change, so every text encoder runs)."""
    return f"{PROMPT}, variant {index}", f"{NEGATIVE}, variant {index}"


# ------------------------------------------------------------------------------- (a) plain diffusers


def plain_worker(args: argparse.Namespace) -> None:
    """Runs in a process of its own: plain diffusers, cold then warm runs. Writes JSON to args.out."""
    import numpy as np
    import torch
    from diffusers import EulerDiscreteScheduler, ModularPipeline
    from PIL import Image

    torch.set_num_threads(args.threads)
    if args.batched:
        namespace: dict[str, Any] = {}
        exec(BATCHED_CFG_PATCH, namespace)  # noqa: S102 - the bench's own patch text
        import diffusers.modular_pipelines.stable_diffusion_xl.denoise as denoise

        namespace["_patch_sdxl_loop_denoiser"](denoise)

    stamps: list[float] = []
    original_step = EulerDiscreteScheduler.step

    def timed_step(self, *a, **k):
        result = original_step(self, *a, **k)
        stamps.append(time.perf_counter())
        return result

    EulerDiscreteScheduler.step = timed_step
    rss_start = proc_status()

    def run(pipe: Any, prompt: str, negative: str, seed: int) -> dict[str, Any]:
        stamps.clear()
        before = counters()
        first_unet: list[float] = []
        hook = pipe.unet.register_forward_pre_hook(lambda *_: first_unet.append(time.perf_counter()))
        started = time.perf_counter()
        image = pipe(
            prompt=prompt,
            negative_prompt=negative,
            num_inference_steps=args.steps,
            height=args.size,
            width=args.size,
            generator=torch.Generator().manual_seed(seed),
            output_type="np",
            output="images",
        )
        ended = time.perf_counter()
        hook.remove()
        return {
            "latency_s": ended - started,
            "before_denoise_s": first_unet[0] - started,  # text encoders and preparation
            "denoise_s": stamps[-1] - first_unet[0],
            "after_denoise_s": ended - stamps[-1],  # VAE decode and conversion
            "step_s": step_intervals(stamps),
            "process": counter_delta(before, counters()),
            "image": image,
        }

    def load_and_run() -> dict[str, Any]:
        started = time.perf_counter()
        pipe = ModularPipeline.from_pretrained(str(args.model))
        pipe.load_components(dtype=torch.float32)
        load_s = time.perf_counter() - started
        assert pipe.guider.guidance_scale == GUIDANCE, pipe.guider
        cold = run(pipe, PROMPT, NEGATIVE, SEED)
        rss_loaded = proc_status()
        warm = [run(pipe, *variant(i), SEED + i) for i in range(args.runs)]
        images = Path(args.images)
        images.mkdir(parents=True, exist_ok=True)
        pixels = (np.clip(warm[0]["image"][0], 0, 1) * 255).round().astype("uint8")
        Image.fromarray(pixels).save(images / f"{args.name}_warm0.png")
        for result in [cold, *warm]:
            result.pop("image")
        return {
            "name": args.name,
            "in_thread": args.in_thread,
            "load_s": load_s,
            "cold_first_prompt_s": load_s + cold["latency_s"],
            "cold": cold,
            "warm": warm,
            "rss_mib": {"start": rss_start, "after_first_prompt": rss_loaded, "end": proc_status()},
            "torch_threads": torch.get_num_threads(),
        }

    outcome: list[Any] = []
    if args.in_thread:
        # As ComfyUI runs prompts: on a worker thread (which glibc gives a malloc arena of its own).
        def target() -> None:
            try:
                outcome.append(load_and_run())
            except BaseException as error:  # re-raised on the main thread
                outcome.append(error)

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
    else:
        outcome.append(load_and_run())
    Path(args.out).write_text(json.dumps(outcome[0], indent=2))


def run_plain(
    args: argparse.Namespace, model: Path, name: str, batched: bool, runs: int, in_thread: bool = False
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    command = [sys.executable, __file__, "--worker", "--model", str(model), "--out", str(out), "--name", name,
               "--runs", str(runs), "--steps", str(args.steps), "--size", str(args.size),
               "--threads", str(args.threads), "--images", str(RESULTS / "native_images")]  # fmt: skip
    if batched:
        command.append("--batched")
    if in_thread:
        command.append("--in-thread")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", **extra_env(args)}
    load = load_average()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise RuntimeError(f"plain diffusers worker failed:\n{done.stderr[-5000:]}")
    result = json.loads(out.read_text())
    out.unlink()
    result["load_average_before"] = load
    return result


# ------------------------------------------------------------------------------ (b), (c) over the API


class Runner:
    """Queues prompts on one websocket and timestamps every message (perf_counter, on receipt)."""

    def __init__(self, url: str):
        import websocket
        from comfy_harness import ComfyClient

        self.client = ComfyClient(url)
        port = url.rsplit(":", 1)[1]
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}/ws?clientId={self.client.client_id}", timeout=900
        )

    def run(self, prompt: dict[str, Any], pid: int) -> dict[str, Any]:
        before = counters(pid)
        started = time.perf_counter()
        prompt_id = self.client.submit(prompt)
        messages = []
        while True:
            raw = self.ws.recv()
            stamp = time.perf_counter()
            if isinstance(raw, bytes):
                continue
            message = json.loads(raw)
            data = message.get("data", {})
            if data.get("prompt_id") != prompt_id:
                continue
            messages.append((stamp, message["type"], data))
            if message["type"] == "execution_error":
                raise RuntimeError(f"prompt failed: {json.dumps(data)[:3000]}")
            if message["type"] == "executing" and data.get("node") is None:
                break
        process = counter_delta(before, counters(pid))
        return {"started": started, "ended": messages[-1][0], "messages": messages, "process": process}

    def close(self) -> None:
        self.ws.close()


def summarize_run(run: dict[str, Any], sampler_node: str) -> dict[str, Any]:
    """Latency, per-node seconds (from `executing` messages) and step intervals of the sampler node."""
    node_s: dict[str, float] = {}
    current, since = None, None
    for stamp, kind, data in run["messages"]:
        if kind == "executing":
            if current is not None:
                node_s[current] = node_s.get(current, 0.0) + stamp - since
            current, since = data.get("node"), stamp
    progress = [
        stamp for stamp, kind, data in run["messages"] if kind == "progress" and data.get("node") == sampler_node
    ]
    cached = sorted(
        {node for _, kind, data in run["messages"] if kind == "execution_cached" for node in data["nodes"]}
    )
    return {
        "latency_s": run["ended"] - run["started"],
        # Submit to execution_start: the prompt waits while ComfyUI's worker finishes the previous one
        # (it runs gc.collect() after a prompt when the last collection is over 10 s old).
        "queue_wait_s": run["messages"][0][0] - run["started"],
        "node_s": node_s,
        "step_s": step_intervals(progress),
        "process": run["process"],
        "progress_messages": len(progress),
        "cached": cached,
    }


def pack_prompt(steps: int, size: int, prompt: str, negative: str, seed: int) -> dict[str, Any]:
    from comfy_harness import load_api_workflow

    workflow = load_api_workflow("sdxl_text2image")
    workflow["1"]["inputs"].update(model=MODEL_NAME, dtype="float32")
    workflow["2"]["inputs"].update(guidance_scale=GUIDANCE, prompt=prompt, negative_prompt=negative)
    workflow["3"]["inputs"].update(num_inference_steps=steps, seed=seed, height=size, width=size)
    workflow["5"]["inputs"]["filename_prefix"] = "pack"
    return workflow


def native_prompt(steps: int, size: int, prompt: str, negative: str, seed: int) -> dict[str, Any]:
    def node(class_type: str, **inputs: Any) -> dict[str, Any]:
        return {"class_type": class_type, "inputs": inputs}

    return {
        "1": node("DiffusersLoader", model_path=MODEL_NAME),
        "2": node("CLIPTextEncode", text=prompt, clip=["1", 1]),
        "3": node("CLIPTextEncode", text=negative, clip=["1", 1]),
        "4": node("EmptyLatentImage", width=size, height=size, batch_size=1),
        "5": node(
            "KSampler",
            model=["1", 0],
            seed=seed,
            steps=steps,
            cfg=GUIDANCE,
            sampler_name="euler",
            scheduler="ddim_uniform",
            positive=["2", 0],
            negative=["3", 0],
            latent_image=["4", 0],
            denoise=1.0,
        ),
        "6": node("VAEDecode", samples=["5", 0], vae=["1", 2]),
        "7": node("SaveImage", images=["6", 0], filename_prefix="native"),
    }


PATHS = {
    # name: (prompt builder, sampler node, text-encoder nodes, extra server args)
    "pack": (pack_prompt, "3", ["2"], []),
    "native": (native_prompt, "5", ["2", "3"], ["--fp32-text-enc"]),
}


def server_class(kind: str) -> type:
    """The harness's server for the pack's paths; for native, one that does not check for the pack."""
    from comfy_harness import ComfyServer

    class NativeServer(ComfyServer):
        """ComfyUI without this pack: its custom_nodes folder is left empty."""

        def check_pack_loaded(self) -> None:
            if "Traceback (most recent call last)" in self.log():
                self.stop()
                raise RuntimeError(f"ComfyUI logged an error at start-up:\n{self.log()}")

    return NativeServer if kind == "native" else ComfyServer


def run_server(args: argparse.Namespace, base: Path, name: str, kind: str, runs: int, patch: bool) -> dict[str, Any]:
    from comfy_harness import PACK_DIR_NAME

    build, sampler, _, extra = PATHS[kind]
    env = {"OMP_NUM_THREADS": str(args.threads), **extra_env(args)}
    patch_dir = None
    if patch:
        patch_dir = Path(tempfile.mkdtemp(prefix="mdiff-bench-patch-"))
        (patch_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(patch_dir), os.environ.get("PYTHONPATH")]))
    output = base / "output"
    load = load_average()
    server = server_class(kind)(base, extra_args=["--output-directory", str(output), *extra], env=env,
                          log_path=base.parent / f"{name}.log")  # fmt: skip
    if kind == "native":
        (base / "custom_nodes" / PACK_DIR_NAME).unlink()
    server.start(timeout=300)
    pid = server.process.pid
    result: dict[str, Any] = {"name": name, "server_start_s": server.start_seconds, "load_average_before": load}
    try:
        rss_idle = proc_status(pid)
        runner = Runner(server.url)
        cold = summarize_run(runner.run(build(args.steps, args.size, PROMPT, NEGATIVE, SEED), pid), sampler)
        rss_loaded = proc_status(pid)
        warm, saved = [], None
        for i in range(runs):
            before = set(output.glob("*.png"))
            warm.append(summarize_run(runner.run(build(args.steps, args.size, *variant(i), SEED + i), pid), sampler))
            if saved is None:
                saved = sorted(set(output.glob("*.png")) - before)
        seed_only = [
            summarize_run(runner.run(build(args.steps, args.size, *variant(runs - 1), SEED + 1000 + i), pid), sampler)
            for i in range(runs)
        ]
        unchanged_prompt = build(args.steps, args.size, *variant(runs - 1), SEED + 1000 + runs - 1)
        unchanged = [summarize_run(runner.run(unchanged_prompt, pid), sampler) for _ in range(UNCHANGED_RUNS)]
        runner.close()
        result.update(
            cold_first_prompt_s=cold["latency_s"],
            cold=cold,
            warm=warm,
            seed_only=seed_only,
            unchanged=unchanged,
            rss_mib={"idle": rss_idle, "after_first_prompt": rss_loaded, "end": proc_status(pid)},
        )
        if saved:
            target = RESULTS / "native_images" / f"{name}_warm0.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(saved[0].read_bytes())
        if patch:
            result["patch_applied"] = "batched CFG patch applied" in server.log()
    finally:
        server.stop()
    return result


# ----------------------------------------------------------------------------------------- fork cost


def fork_cost() -> dict[str, Any]:
    import importlib.util

    import torch
    from diffusers.modular_pipelines import PipelineState

    # adapters/state.py on its own (it imports no ComfyUI module), without the pack's package.
    spec = importlib.util.spec_from_file_location("mdiff_state", REPO / "adapters" / "state.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fork_state = module.fork_state
    rows = []
    for mib in FORK_SIZES_MIB:
        state = PipelineState()
        state.set("latents", torch.zeros(mib * 1024 * 1024 // 4, dtype=torch.float32), "denoiser_input_fields")
        for index in range(20):  # the small values a real SDXL state holds next to its tensors
            state.set(f"value_{index}", index)
        for _ in range(100):
            fork_state(state)
        forks = []
        for _ in range(5000):
            started = time.perf_counter_ns()
            fork_state(state)
            forks.append(time.perf_counter_ns() - started)
        deep = []
        for _ in range(3 if mib >= 256 else 10):
            started = time.perf_counter_ns()
            copy.deepcopy(state)
            deep.append(time.perf_counter_ns() - started)
        rows.append({"size_mib": mib, "fork_median_us": statistics.median(forks) / 1000,
                     "fork_p90_us": sorted(forks)[int(len(forks) * 0.9)] / 1000, "forks": len(forks),
                     "deepcopy_median_ms": statistics.median(deep) / 1e6})  # fmt: skip
        del state
    return {"rows": rows, "keys_in_state": 21}


# ------------------------------------------------------------------------------------------- startup


def startup(skip: bool) -> dict[str, Any]:
    path = RESULTS / "startup.json"
    if not skip:
        subprocess.run([sys.executable, str(REPO / "bench" / "bench_startup.py"), "--runs", "3"], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    data = json.loads(path.read_text()) if path.exists() else {}
    data["reused"] = skip
    return data


# ------------------------------------------------------------------------------------------ summary


def per_path_summary(result: dict[str, Any], text_nodes: list[str] | None = None) -> dict[str, Any]:
    warm = result["warm"]
    row: dict[str, Any] = {
        "cold_first_prompt_s": result["cold_first_prompt_s"],
        "warm_latency_s": median([r["latency_s"] for r in warm]),
        "warm_latency_min_s": min(r["latency_s"] for r in warm),
        "step_s": median([s for r in warm for s in r["step_s"]]),
        "step_min_s": min(s for r in warm for s in r["step_s"]),
        "peak_rss_mib": result["rss_mib"]["end"]["VmHWM"],
        # Whole process, per warm prompt: minor page faults and system CPU seconds (page faults show here).
        "minflt_per_prompt": median([r["process"]["minflt"] for r in warm if "process" in r]),
        "sys_s_per_prompt": median([r["process"]["sys_s"] for r in warm if "process" in r]),
        "user_s_per_prompt": median([r["process"]["user_s"] for r in warm if "process" in r]),
        "rss_after_first_prompt_mib": result["rss_mib"]["after_first_prompt"]["VmRSS"],
    }
    if "seed_only" in result:
        row["seed_only_s"] = median([r["latency_s"] for r in result["seed_only"]])
        row["unchanged_ms"] = median([r["latency_s"] for r in result["unchanged"]]) * 1000
        row["unchanged_max_ms"] = max(r["latency_s"] for r in result["unchanged"]) * 1000
        row["unchanged_all_cached"] = all(not r["node_s"] for r in result["unchanged"])
        row["warm_queue_wait_s"] = median([r.get("queue_wait_s", 0.0) for r in warm])
        text = median([sum(r["node_s"].get(n, 0.0) for n in text_nodes or []) for r in warm])
        row["text_encode_s"] = text
    else:
        row["text_encode_s"] = median([r["before_denoise_s"] for r in warm])
    return row


def summarize(data: dict[str, Any]) -> None:
    """Add the per-path summary and the ratios to `data` (from its raw results)."""
    data["summary"] = {
        name: per_path_summary(result, PATHS[name.split("_")[0]][2] if name.split("_")[0] in PATHS else None)
        for name, result in data["paths"].items()
    }
    has_all = {"plain", "pack", "native"} <= set(data["summary"])
    data["ratios"] = ratios(data["summary"]) if has_all else {}


def plot(data: dict[str, Any], path: Path, compare: dict[str, Any] | None = None) -> None:
    """Six panels: per-step time, latency, peak RSS, page faults, fork cost, and (with `compare`, the
    results of another run, e.g. under a different allocator setting) per-step time of both runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = data["summary"]
    names = [name for name in LABELS if name in summary]
    labels = [LABELS[name] for name in names]
    colors = [COLORS[name] for name in names]
    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    fig.suptitle(
        f"SDXL (Segmind-Vega-sized UNet, full-size text encoders and VAE, random weights), "
        f"{data['settings']['size']}px, {data['settings']['steps']} Euler steps, CFG {GUIDANCE}, float32, "
        f"{data['settings']['threads']} CPU threads, no GPU"
    )

    def bars(ax, values, title, ylabel):
        ax.bar(range(len(names)), values, color=colors)
        ax.set_xticks(range(len(names)), labels, rotation=20, fontsize=8, ha="right")
        ax.set_title(title)
        ax.set_ylabel(ylabel)

    ax = axes[0][0]
    steps = [[s for r in data["paths"][name]["warm"] for s in r["step_s"]] for name in names]
    ax.boxplot(steps, showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), labels, rotation=20, fontsize=8, ha="right")
    ax.set_ylabel("seconds per denoising step")
    ax.set_title("Denoise time per step (warm runs)")

    ax = axes[0][1]
    bars(ax, [summary[name]["warm_latency_s"] for name in names], "Prompt latency, warm (bar); seed-only (line)", "s")
    for i, name in enumerate(names):
        if "seed_only_s" in summary[name]:
            ax.scatter([i], [summary[name]["seed_only_s"]], color="black", marker="_", s=600, zorder=3)

    ax = axes[0][2]
    bars(ax, [summary[name]["peak_rss_mib"] / 1024 for name in names], "Peak RSS of the process (VmHWM)", "GiB")

    ax = axes[1][0]
    faults = [(summary[name].get("minflt_per_prompt") or 0) / 1e6 for name in names]
    bars(ax, faults, "Minor page faults per warm prompt (whole process)", "millions")
    for i, name in enumerate(names):
        system = summary[name].get("sys_s_per_prompt")
        if system is not None:
            ax.annotate(f"{system:.1f} s sys", (i, faults[i]), ha="center", va="bottom", fontsize=8)

    ax = axes[1][1]
    rows = data["fork"]["rows"]
    sizes = [row["size_mib"] for row in rows]
    ax.loglog(sizes, [row["fork_median_us"] for row in rows], "o-", label="fork_state (median of 5000)")
    ax.loglog(sizes, [row["deepcopy_median_ms"] * 1000 for row in rows], "s--", label="copy.deepcopy, for scale")
    ax.set_xlabel("tensor held by the PipelineState (MiB)")
    ax.set_ylabel("microseconds per copy")
    ax.set_title("State fork cost against state size")
    ax.legend()

    ax = axes[1][2]
    if compare is not None:
        shared = [name for name in names if name in compare["summary"]]
        x = range(len(shared))
        ax.bar([i - 0.2 for i in x], [summary[n]["step_s"] for n in shared], 0.4, label="default glibc malloc")
        env = " ".join(f"{k}={v}" for k, v in compare["settings"].get("env", {}).items())
        ax.bar([i + 0.2 for i in x], [compare["summary"][n]["step_s"] for n in shared], 0.4, label="malloc tuned")
        ax.set_xticks(list(x), [LABELS[n] for n in shared], rotation=20, fontsize=8, ha="right")
        ax.set_ylabel("seconds per denoising step (median)")
        ax.set_title("Per step, default vs tuned allocator", fontsize=10)
        ax.legend(fontsize=8, title=env.replace(" ", "\n"), title_fontsize=6)
    else:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


LABELS = {
    "plain": "(a) plain diffusers",
    "pack": "(b) pack blocks, API",
    "native": "(c) ComfyUI native",
    "plain_thread": "(a'') plain, worker thread",
    "plain_batched": "(a') plain, batched CFG",
    "pack_batched": "(b') pack, batched CFG",
}
COLORS = {"plain": "tab:blue", "plain_thread": "tab:purple", "pack": "tab:orange", "native": "tab:green",
          "plain_batched": "tab:cyan", "pack_batched": "tab:red"}  # fmt: skip


def print_table(data: dict[str, Any]) -> None:
    summary = data["summary"]
    print(f"{'path':26} {'cold s':>8} {'warm s':>8} {'step s':>8} {'text s':>8} {'seed s':>8} "
          f"{'same ms':>8} {'RSS GiB':>8} {'kfaults':>8} {'sys s':>8}")  # fmt: skip
    for name, row in summary.items():
        cells = [row["cold_first_prompt_s"], row["warm_latency_s"], row["step_s"], row["text_encode_s"],
                 row.get("seed_only_s"), row.get("unchanged_ms"), row["peak_rss_mib"] / 1024,
                 (row["minflt_per_prompt"] or 0) / 1000, row["sys_s_per_prompt"] or 0]  # fmt: skip
        print(f"{LABELS[name]:26} " + " ".join(f"{c:8.3f}" if c is not None else f"{'-':>8}" for c in cells))
    for key, value in data["ratios"].items():
        print(f"  {key}: {value:.3f}")


def ratios(summary: dict[str, Any]) -> dict[str, float]:
    out = {
        "step pack/native": summary["pack"]["step_s"] / summary["native"]["step_s"],
        "step pack/plain": summary["pack"]["step_s"] / summary["plain"]["step_s"],
        "step plain/native": summary["plain"]["step_s"] / summary["native"]["step_s"],
        "latency pack/plain": summary["pack"]["warm_latency_s"] / summary["plain"]["warm_latency_s"],
        "latency pack/native": summary["pack"]["warm_latency_s"] / summary["native"]["warm_latency_s"],
        "latency native/plain": summary["native"]["warm_latency_s"] / summary["plain"]["warm_latency_s"],
        "peak RSS pack/native": summary["pack"]["peak_rss_mib"] / summary["native"]["peak_rss_mib"],
        "peak RSS plain/native": summary["plain"]["peak_rss_mib"] / summary["native"]["peak_rss_mib"],
        "seed-only pack/plain warm": summary["pack"]["seed_only_s"] / summary["plain"]["warm_latency_s"],
        "cold pack/native": summary["pack"]["cold_first_prompt_s"] / summary["native"]["cold_first_prompt_s"],
    }
    if "pack_batched" in summary:
        out["step pack_batched/native"] = summary["pack_batched"]["step_s"] / summary["native"]["step_s"]
        plain = summary["plain"]["warm_latency_s"]
        out["latency pack_batched/plain"] = summary["pack_batched"]["warm_latency_s"] / plain
        out["seed-only pack_batched/plain warm"] = summary["pack_batched"]["seed_only_s"] / plain
    if "pack_batched" in summary and "plain_batched" in summary:
        out["latency pack_batched/plain_batched"] = (
            summary["pack_batched"]["warm_latency_s"] / summary["plain_batched"]["warm_latency_s"]
        )
    return out


def environment(args: argparse.Namespace) -> dict[str, Any]:
    import diffusers
    import torch
    import transformers
    from comfy_harness import comfyui_dir

    version = (comfyui_dir() / "comfyui_version.py").read_text().split('"')[1]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024**2
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "gpu": None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "comfyui": version,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="warm and seed-only runs per path (default 5)")
    parser.add_argument("--batched-runs", type=int, default=3, help="warm runs of the batched-CFG variants")
    parser.add_argument("--steps", type=int, default=8, help="denoising steps (a divisor of 1000; default 8)")
    parser.add_argument("--size", type=int, default=256, help="image height and width (default 256)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every process (default 2)")
    parser.add_argument("--model", type=Path, default=RESULTS / MODEL_NAME, help="where the model folder is built")
    parser.add_argument("--skip-startup", action="store_true", help="reuse bench/results/startup.json")
    parser.add_argument("--no-batched", action="store_true", help="skip the batched-CFG variants (a') and (b')")
    parser.add_argument("--no-thread", action="store_true", help="skip (a'') plain diffusers on a worker thread")
    parser.add_argument("--only", default="plain,pack,native", help=argparse.SUPPRESS)
    parser.add_argument("--plot", type=Path, default=RESULTS / "native.png", help="where to write the plot")
    parser.add_argument(
        "--plot-only", action="store_true", help="recompute the summary of the results file and redraw the plot"
    )
    parser.add_argument("--results", default="native.json", help="results file name under bench/results/")
    parser.add_argument("--compare", help="with --plot-only: another results file to compare per-step times with")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment for every process the bench starts",
    )
    # The plain-diffusers worker (a process of its own, started by this script).
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batched", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--in-thread", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--images", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        plain_worker(args)
        return
    if args.plot_only:
        data = json.loads((RESULTS / args.results).read_text())
        summarize(data)
        (RESULTS / args.results).write_text(json.dumps(data, indent=2))
        compare = json.loads((RESULTS / args.compare).read_text()) if args.compare else None
        plot(data, args.plot, compare)
        print_table(data)
        return
    if 1000 % args.steps:
        parser.error("--steps must divide 1000 so that ddim_uniform gives diffusers' leading timesteps")

    from build_vega_sdxl import build_vega_sdxl
    from comfy_harness import make_base_directory

    began = time.perf_counter()
    data: dict[str, Any] = {
        "settings": {
            "steps": args.steps,
            "size": args.size,
            "threads": args.threads,
            "runs": args.runs,
            "batched_runs": args.batched_runs,
            "prompt": PROMPT,
            "negative_prompt": NEGATIVE,
            "seed": SEED,
            "guidance_scale": GUIDANCE,
            "env": extra_env(args),
            "dtype": "float32 compute, float16 files",
            "sampler": "diffusers EulerDiscreteScheduler (leading, steps_offset 1) / ComfyUI euler + ddim_uniform",
        },
        "environment": environment(args),
        "load_average_start": load_average(),
        "paths": {},
    }
    model = build_vega_sdxl(args.model)
    only = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="mdiff-bench-native-") as tmp:
        bases = {}
        for kind in ("pack", "native"):  # one ComfyUI base folder each: native runs without the pack
            bases[kind] = make_base_directory(Path(tmp) / kind / "base")
            (bases[kind] / "models" / "diffusers" / MODEL_NAME).symlink_to(model, target_is_directory=True)
        plan = [("plain", "plain", False, False), ("pack", "pack", False, False), ("native", "native", False, False)]
        if not args.no_thread:
            plan.append(("plain_thread", "plain", False, True))
        if not args.no_batched:
            plan += [("plain_batched", "plain", True, False), ("pack_batched", "pack", True, False)]
        for name, kind, batched, in_thread in plan:
            if kind not in only:
                continue
            runs = args.batched_runs if batched or in_thread else args.runs
            print(f"[{time.perf_counter() - began:6.0f} s] {LABELS[name]} (load {load_average()})", flush=True)
            evict_page_cache(model)
            if kind == "plain":
                data["paths"][name] = run_plain(args, model, name, batched, runs, in_thread)
            else:
                data["paths"][name] = run_server(args, bases[kind], name, kind, runs, batched)
            data["paths"][name]["load_average_after"] = load_average()
    print(f"[{time.perf_counter() - began:6.0f} s] fork cost", flush=True)
    data["fork"] = fork_cost()
    print(f"[{time.perf_counter() - began:6.0f} s] start-up", flush=True)
    data["startup"] = startup(args.skip_startup)
    data["load_average_end"] = load_average()
    summarize(data)
    data["total_s"] = time.perf_counter() - began
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.results).write_text(json.dumps(data, indent=2))
    plot(data, args.plot)
    print_table(data)
    for row in data["fork"]["rows"]:
        fork, deep = row["fork_median_us"], row["deepcopy_median_ms"]
        print(f"  fork {row['size_mib']:5d} MiB: {fork:.2f} us (deepcopy {deep:.1f} ms)")
    print(f"  pack import time: {data['startup'].get('median_s')} s; total {data['total_s']:.0f} s")


if __name__ == "__main__":
    main()
