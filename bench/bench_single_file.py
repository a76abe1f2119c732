"""Single files on the bench's Vega-sized SDXL: cold load of the same weights from an all-in-one checkpoint
(Load Checkpoint (Diffusers) with a configs-only folder), from the diffusers folder (Load Diffusers
Components) and by ComfyUI's own CheckpointLoaderSimple (`comfy.sd.load_checkpoint_guess_config`); then the
UNet from a GGUF Q8_0 file against a float16 file: resident size and seconds per UNet call (batch 2).

    .venv/bin/python bench/bench_single_file.py [--model bench/results/vega-sdxl] [--runs 3]

The checkpoint is written once by scripts/tiny_single_files.py's ComfyUI-based writer (the same one the tests'
fixtures come from) into bench/results/single_file/. Every cold load runs in a fresh process after the files
it reads are dropped from the page cache; the time is that of the load call alone (imports excluded). Not part
of CI; figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
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


def evict(paths: list[Path]) -> None:
    """Drop these files and folders from the page cache, so the next load reads them from disk."""
    from bench_native import evict_page_cache

    for path in paths:
        evict_page_cache(path)


def prepare(model: Path) -> dict[str, Path]:
    """The checkpoint, the configs-only folder, the UNet as float16 safetensors and as GGUF Q8_0."""
    import torch
    from tiny_single_files import SdxlSource, _save, copy_configs, write_gguf

    OUT.mkdir(parents=True, exist_ok=True)
    files = {
        "checkpoint": OUT / "vega-sdxl.safetensors",
        "configs": OUT / "diffusers" / "vega-sdxl-configs",
        "unet_fp16": OUT / "vega-unet-fp16.safetensors",
        "unet_q8": OUT / "vega-unet-Q8_0.gguf",
    }
    source = SdxlSource(model)
    if not files["checkpoint"].exists():
        files["checkpoint"].write_bytes(source.checkpoint)
    if not files["configs"].exists():
        copy_configs(model, files["configs"])
    unet = {UNET_PREFIX + key: tensor for key, tensor in source.unet.items()}
    if not files["unet_fp16"].exists():
        _save({key: tensor.to(torch.float16) for key, tensor in unet.items()}, files["unet_fp16"])
    if not files["unet_q8"].exists():
        write_gguf(unet, files["unet_q8"], "sdxl")
    return files


def load_once(mode: str, model: Path, files: dict[str, Path]) -> float:
    """In this (fresh) process: seconds of one load the way `mode` loads."""
    from pack_import import import_pack

    import_pack()
    import folder_paths

    roots = {"diffusers": [str(model.parent), str(files["configs"].parent)], "checkpoints": [str(OUT)]}
    folder_paths.get_folder_paths = lambda kind: roots.get(kind, [])
    started = time.perf_counter()
    if mode == "folder":
        from comfyui_modular_diffusers.nodes.loaders import LoadComponents

        LoadComponents.execute(model=model.name, dtype="float32")
    elif mode == "checkpoint":
        from comfyui_modular_diffusers.nodes.checkpoints import LoadCheckpoint

        LoadCheckpoint.execute(ckpt_name=files["checkpoint"].name, config=files["configs"].name)
    else:
        import comfy.sd

        comfy.sd.load_checkpoint_guess_config(str(files["checkpoint"]), output_vae=True, output_clip=True)
    return time.perf_counter() - started


def cold_loads(model: Path, files: dict[str, Path], runs: int) -> dict[str, dict]:
    reads = {"folder": [model], "checkpoint": [files["checkpoint"], files["configs"]], "native": [files["checkpoint"]]}
    results: dict[str, list[float]] = {mode: [] for mode in reads}
    for _ in range(runs):
        for mode, paths in reads.items():  # interleaved, so a slow spell of the machine hits every mode
            evict(paths)
            command = [sys.executable, __file__, "--model", str(model), "--load-once", mode]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[mode].append(json.loads(output.strip().splitlines()[-1])["seconds"])
            logger.info("%s: %.2f s", mode, results[mode][-1])
    return {mode: {"median_s": statistics.median(times), "runs_s": times} for mode, times in results.items()}


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
    parser.add_argument("--model", type=Path, default=REPO / "bench" / "results" / "vega-sdxl")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--load-once", choices=("folder", "checkpoint", "native"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s", stream=sys.stderr)
    import torch

    torch.set_num_threads(args.threads)
    files = prepare(args.model)
    if args.load_once:
        sys.stdout.write(json.dumps({"seconds": load_once(args.load_once, args.model, files)}) + "\n")
        return 0
    results = {"cold_load": cold_loads(args.model, files, args.runs)}
    from pack_import import import_pack

    import_pack()
    results["gguf"] = gguf_against_fp16(files, args.runs, args.size)
    out = REPO / "bench" / "results" / "single_file.json"
    out.write_text(json.dumps({"runs": args.runs, "size": args.size, "results": results}, indent=1) + "\n")
    sys.stdout.write(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
