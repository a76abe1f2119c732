"""fp8 weights and LoRA on the bench's Vega-sized SDXL UNet, in one process: resident size and seconds per
UNet call (a denoising step with CFG batched: batch 2) for default, fp8_e4m3fn and fp8_e5m2 storage, and
with a LoRA (PEFT format, scripts/tiny_loras.py's recipe on this model) patched on load against none.

    .venv/bin/python bench/bench_weights.py [--model bench/results/vega-sdxl] [--size 256] [--runs 5]

The model folder is the one bench/bench_native.py builds. Not part of CI; figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

logger = logging.getLogger("bench_weights")


def unet_call(unet, size: int):
    import torch

    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, size // 8, size // 8, generator=generator)
    text = torch.randn(2, 77, unet.config.cross_attention_dim, generator=generator)
    added = {
        "text_embeds": torch.randn(2, 1280, generator=generator),
        "time_ids": torch.randn(2, 6, generator=generator),
    }

    def call():
        with torch.inference_mode():
            return unet(latents, 500, text, added_cond_kwargs=added).sample

    return call


def seconds(call, runs: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bundle(model: Path, weight_dtype: str | None):
    import torch
    from comfyui_modular_diffusers.adapters.components import ComponentsBundle
    from diffusers.modular_pipelines import ModularPipeline

    pipeline = ModularPipeline.from_pretrained(str(model))
    pipeline.load_components(names=["unet", "text_encoder"], dtype=torch.float32)
    weight_dtypes = {"unet": weight_dtype} if weight_dtype else {}
    return ComponentsBundle.from_pipeline(pipeline, model.name, weight_dtypes=weight_dtypes)


def measure(model: Path, size: int, runs: int) -> dict:
    import comfy.model_management as mm
    from comfyui_modular_diffusers.adapters.lora import module_key_map, patches_for, read_lora
    from tiny_loras import build_tiny_loras

    results = {}
    for option in (None, "fp8_e4m3fn", "fp8_e5m2"):
        loaded = bundle(model, option)
        mm.load_models_gpu([loaded.patchers["unet"]])
        results[option or "default"] = {
            "resident_mib": loaded.patchers["unet"].model_size() / 2**20,
            "s_per_call": seconds(unet_call(loaded.get("unet"), size), runs),
        }
        logger.info("%s: %s", option or "default", results[option or "default"])
        mm.unload_all_models()
    loaded = bundle(model, None)
    with tempfile.TemporaryDirectory() as folder:
        models = Path(folder) / "models"
        models.mkdir()
        (models / "tiny-sdxl").symlink_to(model.resolve(), target_is_directory=True)  # the recipe's name
        (path,) = [p for p in build_tiny_loras(models, Path(folder) / "loras") if "sdxl-lora-peft" in p.name]
        lora = read_lora(type(loaded.pipeline), str(path), {"unet": loaded.get("unet")})
    patch, _ = patches_for(lora.components["unet"], module_key_map(loaded.patchers["unet"].model))
    with_lora = loaded.patched({"unet": (patch, 1.0)}, "bench LoRA")
    for name, patched in (("no LoRA", loaded), ("LoRA patched on load", with_lora)):
        mm.load_models_gpu([patched.patchers["unet"]])
        results[name] = {"s_per_call": seconds(unet_call(patched.get("unet"), size), runs), "patched_keys": len(patch)}
        logger.info("%s: %s", name, results[name])
    mm.unload_all_models()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO / "bench" / "results" / "vega-sdxl")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s")
    from pack_import import import_pack

    import_pack()
    import torch

    torch.set_num_threads(args.threads)
    results = measure(args.model, args.size, args.runs)
    out = REPO / "bench" / "results" / "weights.json"
    out.write_text(json.dumps({"size": args.size, "runs": args.runs, "results": results}, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
