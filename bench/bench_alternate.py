"""The pack against ComfyUI native on one SDXL folder, prompts alternating between two warm servers.

    .venv/bin/python bench/bench_alternate.py [--rounds 3] [--runs 4] [--steps 8] [--size 256]

Not part of CI (about 12 minutes on a 2-core CPU). bench_native.py runs one path after the other, so a
slow stretch of a shared machine (other processes, the disk) lands on one path only; its paths differ by
up to ~15% from one process to the next. Here both servers run at once and take turns: per round, each
server starts with the model's files dropped from the page cache and runs its cold first prompt, then
warm prompts alternate pack, native, pack, native, ... (the order of the two flips every round). Only one
prompt runs at a time, each with the same torch thread count. The prompts, graphs and servers are
bench_native.py's: (b) the pack's `sdxl_text2image` workflow at default settings, (c) DiffusersLoader ->
CLIPTextEncode x2 -> KSampler (euler, ddim_uniform) -> VAEDecode with --fp32-text-enc; float32 compute.

Writes bench/results/alternate.json (raw) and prints medians and pack/native ratios: seconds per step
(websocket progress), warm prompt latency, cold first prompt, peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import bench_native as bn

KINDS = ("pack", "native")
MODEL = bn.RESULTS / bn.MODEL_NAME


def start_server(args: argparse.Namespace, base: Path, kind: str, log: Path) -> Any:
    from comfy_harness import PACK_DIR_NAME

    extra = ["--output-directory", str(base / "output"), *bn.PATHS[kind][3]]
    server = bn.server_class(kind)(base, extra_args=extra, env={"OMP_NUM_THREADS": str(args.threads)}, log_path=log)
    link = base / "custom_nodes" / PACK_DIR_NAME
    if kind == "native" and link.is_symlink():
        link.unlink()
    server.start(timeout=300)
    return server


def prompt_for(args: argparse.Namespace, kind: str, index: int) -> dict[str, Any]:
    """Warm run `index`: prompt and negative prompt change, so everything but the loader runs."""
    return bn.PATHS[kind][0](args.steps, args.size, *bn.variant(index), bn.SEED + index)


def run_one(runner: Any, server: Any, args: argparse.Namespace, kind: str, index: int) -> dict[str, Any]:
    summary = bn.summarize_run(runner.run(prompt_for(args, kind, index), server.process.pid), bn.PATHS[kind][1])
    return {"latency_s": summary["latency_s"], "step_s": summary["step_s"], "node_s": summary["node_s"]}


def run_round(args: argparse.Namespace, bases: dict[str, Path], model: Path, order: tuple[str, ...], number: int):
    """One round: each server in `order` starts cold and runs its first prompt, then warm prompts alternate."""
    servers, runners, result = {}, {}, {kind: {"warm": []} for kind in order}
    try:
        for kind in order:
            bn.evict_page_cache(model)
            servers[kind] = start_server(args, bases[kind], kind, bases[kind].parent / f"{kind}-{number}.log")
            runners[kind] = bn.Runner(servers[kind].url)
            result[kind]["cold"] = run_one(runners[kind], servers[kind], args, kind, 0)
        for index in range(1, args.runs + 1):
            for kind in order:
                result[kind]["warm"].append(run_one(runners[kind], servers[kind], args, kind, index))
        for kind in order:
            result[kind]["rss_mib"] = bn.proc_status(servers[kind].process.pid)
    finally:
        for kind in order:
            if kind in runners:
                runners[kind].close()
            if kind in servers:
                servers[kind].stop()
    return result


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over every round: per step (all warm step intervals), warm latency, cold, peak RSS."""
    out: dict[str, Any] = {}
    for kind in KINDS:
        warm = [run for one in rounds for run in one[kind]["warm"]]
        out[kind] = {
            "step_s": statistics.median(step for run in warm for step in run["step_s"]),
            "warm_latency_s": statistics.median(run["latency_s"] for run in warm),
            "cold_first_prompt_s": statistics.median(one[kind]["cold"]["latency_s"] for one in rounds),
            "cold_runs_s": [round(one[kind]["cold"]["latency_s"], 2) for one in rounds],
            "peak_rss_mib": max(one[kind]["rss_mib"]["VmHWM"] for one in rounds),
            "warm_runs": len(warm),
        }
    out["ratios"] = {
        key: out["pack"][key] / out["native"][key]
        for key in ("step_s", "warm_latency_s", "cold_first_prompt_s", "peak_rss_mib")
    }
    # Per round, so the spread of the ratio itself shows.
    out["step_ratio_per_round"] = [
        round(
            statistics.median(s for run in one["pack"]["warm"] for s in run["step_s"])
            / statistics.median(s for run in one["native"]["warm"] for s in run["step_s"]),
            3,
        )
        for one in rounds
    ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="server pairs started cold (default 3)")
    parser.add_argument("--runs", type=int, default=4, help="warm prompts per server and round (default 4)")
    parser.add_argument("--steps", type=int, default=8, help="denoising steps (a divisor of 1000; default 8)")
    parser.add_argument("--size", type=int, default=256, help="image height and width (default 256)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every server (default 2)")
    parser.add_argument("--results", default="alternate.json", help="results file name under bench/results/")
    args = parser.parse_args()
    if 1000 % args.steps:
        parser.error("--steps must divide 1000 so that ddim_uniform gives diffusers' leading timesteps")

    import tempfile

    from build_vega_sdxl import build_vega_sdxl
    from comfy_harness import make_base_directory

    began = time.perf_counter()
    args.env = []
    data: dict[str, Any] = {"settings": vars(args), "environment": bn.environment(args), "rounds": []}
    model = build_vega_sdxl(MODEL)
    with tempfile.TemporaryDirectory(prefix="mdiff-bench-alternate-") as tmp:
        bases = {}
        for kind in KINDS:
            bases[kind] = make_base_directory(Path(tmp) / kind / "base")
            (bases[kind] / "models" / "diffusers" / bn.MODEL_NAME).symlink_to(model, target_is_directory=True)
        for number in range(args.rounds):
            order = KINDS if number % 2 == 0 else KINDS[::-1]
            print(f"[{time.perf_counter() - began:5.0f} s] round {number + 1}: {' then '.join(order)}", flush=True)
            data["rounds"].append(run_round(args, bases, model, order, number))
    data["summary"] = summarize(data["rounds"])
    data["total_s"] = time.perf_counter() - began
    (bn.RESULTS / args.results).write_text(json.dumps(data, indent=2))
    print(json.dumps(data["summary"], indent=2))


if __name__ == "__main__":
    main()
