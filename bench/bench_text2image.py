"""Warm SDXL text2image on the tiny model: through ComfyUI's API vs plain diffusers in one process.

    .venv/bin/python bench/bench_text2image.py [--runs 7] [--steps 20] [--threads N]

Each API run changes the seed, so ComfyUI re-executes the sampling nodes (the loader and, for the
block graph, the text encoder stay cached, as they would for a user). Plain diffusers runs the same
prompt, size and steps with `ModularPipeline` in this process. Both sides get the same torch thread
count and never run at the same time. Prints a table and writes bench/results/text2image.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import torch  # noqa: E402
from comfy_harness import TINY_MODEL, ComfyServer, load_api_workflow, make_base_directory  # noqa: E402
from diffusers import ModularPipeline  # noqa: E402
from tiny_models import build_tiny  # noqa: E402


def timed(fn, runs: int) -> list[float]:
    times = []
    for index in range(runs):
        started = time.perf_counter()
        fn(index)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        base = make_base_directory(Path(tmp) / "base")
        model = build_tiny(TINY_MODEL, Path(tmp) / TINY_MODEL)
        (base / "models" / "diffusers" / TINY_MODEL).symlink_to(model, target_is_directory=True)
        results: dict[str, list[float]] = {}

        server = ComfyServer(base, env={"OMP_NUM_THREADS": str(args.threads)}).start()
        try:
            client = server.client()
            for name, node in [("api_block_graph", "3"), ("api_one_node", "2")]:
                workflow = load_api_workflow(
                    "sdxl_text2image" if name == "api_block_graph" else "sdxl_text2image_one_node"
                )
                workflow[node]["inputs"]["num_inference_steps"] = args.steps

                def run(index: int, workflow=workflow, node=node) -> None:
                    workflow[node]["inputs"]["seed"] = 1000 + index
                    assert client.run(workflow).status == "success"

                run(-1)  # warm-up: load and first execution
                results[name] = timed(run, args.runs)
        finally:
            server.stop()

        pipe = ModularPipeline.from_pretrained(str(model))
        pipe.load_components(dtype=torch.float32)
        text_encoder = load_api_workflow("sdxl_text2image")["2"]["inputs"]

        def plain(index: int) -> None:
            pipe(
                prompt=text_encoder["prompt"],
                negative_prompt=text_encoder["negative_prompt"],
                num_inference_steps=args.steps,
                generator=torch.Generator().manual_seed(1000 + index),
                output_type="np",
                output="images",
            )

        plain(-1)
        results["plain_diffusers"] = timed(plain, args.runs)

    summary = {
        name: {"median_s": statistics.median(times), "min_s": min(times), "runs": len(times)}
        for name, times in results.items()
    }
    base_time = summary["plain_diffusers"]["median_s"]
    print(f"tiny SDXL text2image, 64x64, {args.steps} steps, CFG, torch threads {args.threads}")
    for name, row in summary.items():
        print(
            f"  {name:18} median {row['median_s'] * 1000:8.1f} ms  min {row['min_s'] * 1000:8.1f} ms  "
            f"x{row['median_s'] / base_time:.2f} of plain"
        )
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "text2image.json").write_text(
        json.dumps({"args": vars(args), "summary": summary, "raw": results}, indent=2)
    )


if __name__ == "__main__":
    main()
