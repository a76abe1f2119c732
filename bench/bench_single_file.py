"""Single files on a random-weight full-size SDXL base (bench/results/sdxl-base, built by
scripts/build_vega_sdxl.py --unet sdxl-base; the Vega-sized SDXL cannot be used: ComfyUI's and diffusers'
LDM UNet converters need a cross-attention middle block): cold load of the same weights from an all-in-one
checkpoint (Load Checkpoint (Diffusers) with a configs-only folder), from the diffusers folder (Load
Diffusers Components) and by ComfyUI's own CheckpointLoaderSimple (`comfy.sd.load_checkpoint_guess_config`);
then the UNet from a GGUF Q8_0 file against a float16 file: resident size and seconds per UNet call (batch 2).

    .venv/bin/python bench/bench_single_file.py [--model bench/results/sdxl-base] [--runs 3] [--size 256]

Every load is float16: the folder and the checkpoint are float16, the pack's loaders are given float16, and
ComfyUI is given float16 for its UNet (`model_options`), its text encoders (`te_model_options`) and its VAE
(`--fp16-vae`); mode `native_default` is ComfyUI left to its own CPU choices (UNet float32, text encoders
float16, VAE float32). Each load's process reports its peak RSS and, for ComfyUI, the model class it
detected and the dtypes it chose. The pack's loaders map the weights lazily (safetensors mmap: a load call
reads little of them), so each load is followed by `page_in`, which reads a byte of every page of every
weight; `median_with_page_in_s` is the time until the weights are in memory.

The checkpoint is written once by scripts/tiny_single_files.py's ComfyUI-based writer (the same one the tests'
fixtures come from), from the folder's weights loaded as float16, into bench/results/single_file/, in a
process of its own (its peak is about twice the checkpoint). Every cold load runs in a fresh process after the
files it reads are dropped from the page cache; the time is that of the load call alone (imports excluded).
Not part of CI; figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "bench"))

logger = logging.getLogger("bench_single_file")
OUT = REPO / "bench" / "results" / "single_file"
UNET_PREFIX = "model.diffusion_model."  # as ComfyUI's ModelSave writes a UNet file
MODES = ("folder", "checkpoint", "native", "native_default")


def evict(paths: list[Path]) -> None:
    """Drop these files and folders from the page cache, so the next load reads them from disk."""
    from bench_native import evict_page_cache

    for path in paths:
        evict_page_cache(path)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_files(model: Path) -> dict[str, Path]:
    """The checkpoint, the configs-only folder, the UNet as float16 safetensors and as GGUF Q8_0."""
    return {
        "checkpoint": OUT / f"{model.name}.safetensors",
        "configs": OUT / "diffusers" / f"{model.name}-configs",
        "unet_fp16": OUT / f"{model.name}-unet-fp16.safetensors",
        "unet_q8": OUT / f"{model.name}-unet-Q8_0.gguf",
    }


def float16_state_dict(model_class, folder: Path) -> dict:
    """tiny_single_files' `_state_dict`, loaded as float16 (diffusers would load a float16 folder as float32)."""
    import torch
    from diffusers import ModelMixin

    if issubclass(model_class, ModelMixin):
        model = model_class.from_pretrained(str(folder), torch_dtype=torch.float16)
    else:
        model = model_class.from_pretrained(str(folder), dtype=torch.float16)
    return {key: tensor.detach() for key, tensor in model.state_dict().items()}


def write_files(model: Path) -> None:
    """In this (fresh) process: every missing file of `bench_files`, each written under a temporary name."""
    import tiny_single_files
    import torch
    from tiny_single_files import SdxlSource, _save, copy_configs, write_gguf

    files = bench_files(model)
    tiny_single_files._state_dict = float16_state_dict
    source = SdxlSource(model)
    OUT.mkdir(parents=True, exist_ok=True)
    if not files["configs"].exists():
        copy_configs(model, files["configs"])
    if not files["checkpoint"].exists():
        partial = files["checkpoint"].with_suffix(".partial")
        partial.write_bytes(source.checkpoint)
        partial.rename(files["checkpoint"])
        for name in ("checkpoint", "vae", "clip_l", "clip_g"):  # ~2x the checkpoint: free before the UNet files
            source.__dict__.pop(name, None)
        logger.info("wrote %s (peak RSS %.0f MiB)", files["checkpoint"], peak_rss_mib())
    unet = {UNET_PREFIX + key: tensor.to(torch.float16) for key, tensor in source.unet.items()}
    source.__dict__.pop("unet", None)
    for name, write in (("unet_fp16", _save), ("unet_q8", lambda tensors, path: write_gguf(tensors, path, "sdxl"))):
        if not files[name].exists():
            partial = files[name].with_suffix(".partial")
            write(unet, partial)
            partial.rename(files[name])
            logger.info("wrote %s (peak RSS %.0f MiB)", files[name], peak_rss_mib())


def prepare(model: Path) -> dict[str, Path]:
    files = bench_files(model)
    if not all(path.exists() for path in files.values()):
        command = [sys.executable, __file__, "--model", str(model), "--write-files"]
        subprocess.run(command, check=True)
    return files


def page_in(modules: list) -> float:
    """Seconds to read one element of every 4 KiB page of the modules' weights: the pack's loaders leave
    them as file-backed (mmap'd) pages that are read from disk on first use; ComfyUI's are copies already."""
    seen, started = set(), time.perf_counter()
    for module in modules:
        for tensor in module.state_dict().values():
            if tensor.data_ptr() in seen or tensor.device.type != "cpu" or not tensor.numel():
                continue
            seen.add(tensor.data_ptr())
            float(tensor.reshape(-1)[:: max(1, 4096 // tensor.element_size())].float().sum())
    return time.perf_counter() - started


def bundle_modules(output) -> list:
    import torch

    return [part for part in output.result[0].pipeline.components.values() if isinstance(part, torch.nn.Module)]


def native_load(path: Path, forced: bool) -> dict:
    """ComfyUI's CheckpointLoaderSimple: float16 everywhere when `forced`, else ComfyUI's own dtypes."""
    import comfy.sd
    import torch
    from comfy.cli_args import args

    options = {"dtype": torch.float16} if forced else {}
    args.fp16_vae = forced
    started = time.perf_counter()
    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(
        str(path), output_vae=True, output_clip=True, model_options=options, te_model_options=options
    )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "page_in_s": page_in([model.model, clip.cond_stage_model, vae.first_stage_model]),
        "detected": type(model.model.model_config).__name__,
        "model_class": type(model.model).__name__,
        "unet_dtype": str(model.model.get_dtype()),
        "unet_compute_dtype": str(model.model.manual_cast_dtype or model.model.get_dtype()),
        "text_encoder_dtypes": sorted({str(p.dtype) for p in clip.cond_stage_model.parameters()}),
        "vae_dtype": str(vae.vae_dtype),
    }


def load_once(mode: str, model: Path, files: dict[str, Path]) -> dict:
    """In this (fresh) process: seconds of one load the way `mode` loads, and the process's peak RSS."""
    from pack_import import import_pack

    import_pack()
    import folder_paths

    roots = {"diffusers": [str(model.parent), str(files["configs"].parent)], "checkpoints": [str(OUT)]}
    folder_paths.get_folder_paths = lambda kind: roots.get(kind, [])
    started = time.perf_counter()
    if mode == "folder":
        from comfyui_modular_diffusers.nodes.loaders import LoadComponents

        output = LoadComponents.execute(model=model.name, dtype="float16")
        result = {"seconds": time.perf_counter() - started, "page_in_s": page_in(bundle_modules(output))}
    elif mode == "checkpoint":
        from comfyui_modular_diffusers.nodes.checkpoints import LoadCheckpoint

        name, configs = files["checkpoint"].name, files["configs"].name
        output = LoadCheckpoint.execute(ckpt_name=name, config=configs, dtype="float16")
        result = {"seconds": time.perf_counter() - started, "page_in_s": page_in(bundle_modules(output))}
    else:
        result = native_load(files["checkpoint"], forced=mode == "native")
    return {**result, "peak_rss_mib": peak_rss_mib()}


def cold_loads(model: Path, files: dict[str, Path], runs: int) -> dict[str, dict]:
    checkpoint = [files["checkpoint"]]
    reads = {"folder": [model], "checkpoint": [*checkpoint, files["configs"]], "native": checkpoint}
    reads["native_default"] = checkpoint
    results: dict[str, list[dict]] = {mode: [] for mode in reads}
    for _ in range(runs):
        for mode, paths in reads.items():  # interleaved, so a slow spell of the machine hits every mode
            evict(paths)
            command = [sys.executable, __file__, "--model", str(model), "--load-once", mode]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[mode].append(json.loads(output.strip().splitlines()[-1]))
            logger.info("%s: %s", mode, results[mode][-1])
    summary = {}
    for mode, loads in results.items():
        times = [load["seconds"] for load in loads]
        totals = [load["seconds"] + load["page_in_s"] for load in loads]
        summary[mode] = {
            "median_s": statistics.median(times),
            "runs_s": times,
            "median_with_page_in_s": statistics.median(totals),
            "loads": loads,
        }
    return summary


def unet_call(unet, size: int, dtype):
    """One UNet call as a denoising step with CFG batched makes it (batch 2), inputs in `dtype`."""
    import torch

    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, size // 8, size // 8, generator=generator).to(dtype)
    text = torch.randn(2, 77, unet.config.cross_attention_dim, generator=generator).to(dtype)
    added = {
        "text_embeds": torch.randn(2, 1280, generator=generator).to(dtype),
        "time_ids": torch.randn(2, 6).to(dtype),
    }

    def call():
        with torch.inference_mode():
            return unet(latents, 500, text, added_cond_kwargs=added).sample

    return call


def gguf_against_fp16(files: dict[str, Path], runs: int, size: int) -> dict[str, dict]:
    """Both loaded the way Replace Component loads a denoiser file, computed in float16."""
    import comfy.model_management as mm
    import torch
    from bench_weights import seconds
    from comfyui_modular_diffusers.adapters.models import make_patcher
    from comfyui_modular_diffusers.adapters.weight_files import load_diffusers_model
    from diffusers import UNet2DConditionModel

    results = {}
    for name in ("unet_fp16", "unet_q8"):
        unet = load_diffusers_model(UNet2DConditionModel, files[name], files["configs"], "unet", torch.float16)
        patcher = make_patcher(unet)
        mm.load_models_gpu([patcher])
        results[name] = {
            "file_mib": files[name].stat().st_size / 2**20,
            "resident_mib": patcher.model_size() / 2**20,
            "s_per_call": seconds(unet_call(unet, size, torch.float16), runs),
        }
        logger.info("%s: %s", name, results[name])
        mm.unload_all_models()
        del unet, patcher
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO / "bench" / "results" / "sdxl-base")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--load-once", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--write-files", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s", stream=sys.stderr)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    if args.write_files:
        write_files(args.model)
        return 0
    files = prepare(args.model)
    if args.load_once:
        sys.stdout.write(json.dumps(load_once(args.load_once, args.model, files)) + "\n")
        return 0
    results = {"cold_load": cold_loads(args.model, files, args.runs)}
    from pack_import import import_pack

    import_pack()
    results["gguf"] = gguf_against_fp16(files, args.runs, args.size)
    out = REPO / "bench" / "results" / "single_file.json"
    report = {"model": str(args.model), "runs": args.runs, "size": args.size, "results": results}
    out.write_text(json.dumps(report, indent=1) + "\n")
    sys.stdout.write(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
