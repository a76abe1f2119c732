"""The pack's start-up cost: its line in ComfyUI's "Import times for custom nodes", every family registered.

    .venv/bin/python bench/bench_startup.py [--runs 5]

Starts ComfyUI (`--cpu --quick-test-for-ci`, which exits once nodes are loaded) on a base folder
holding only this pack, reads the pack's import time from the log, and reports the median with the
number of nodes registered. Then splits the same work inside one process (after the modules a
running ComfyUI and diffusers' core have loaded): the pack's modules, its node classes (from the
catalog snapshot), ComfyUI's GET_SCHEMA for every node, and what building the catalog live (every
family's blocks imported and planned, as without a valid snapshot) would cost instead.
Writes bench/results/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from comfy_harness import PACK_DIR_NAME, comfyui_dir, make_base_directory  # noqa: E402

IN_PROCESS = """
import asyncio, json, sys, time
sys.path.insert(0, %(comfy)r); sys.path.insert(0, %(scripts)r)
from comfy.cli_args import args; args.cpu = True
import torch, transformers, comfy.sd, latent_preview, aiohttp  # what a running ComfyUI has loaded
import diffusers.modular_pipelines.modular_pipeline  # diffusers' core, shared by every family
from pack_import import import_pack
started = time.perf_counter()
pack = import_pack()
async def main():
    extension = await pack.comfy_entrypoint()
    imported = time.perf_counter()
    nodes = await extension.get_node_list()
    made = time.perf_counter()
    for node in nodes:
        node.GET_SCHEMA()
    done = time.perf_counter()
    from comfyui_modular_diffusers.nodes import catalog
    live = catalog.catalog_nodes()  # what start-up would cost without the snapshot
    for node in live:
        node.GET_SCHEMA()
    print(json.dumps({"pack_modules_s": imported - started, "node_classes_s": made - imported,
                      "get_schema_s": done - made, "nodes": len(nodes),
                      "live_catalog_s": time.perf_counter() - done, "live_nodes": len(live)}))
asyncio.run(main())
"""


def import_time(base: Path) -> float:
    command = [sys.executable, "main.py", "--cpu", "--quick-test-for-ci", "--base-directory", str(base),
               "--database-url", "sqlite:///:memory:"]  # fmt: skip
    log = subprocess.run(command, cwd=comfyui_dir(), capture_output=True, text=True, timeout=300).stderr
    match = re.search(rf"([\d.]+) seconds(?: \(IMPORT FAILED\))?: \S*{PACK_DIR_NAME}\n", log)
    if match is None:
        raise RuntimeError(f"no import time for the pack in the log:\n{log[-3000:]}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = make_base_directory(Path(tmp) / "base")
        times = [import_time(base) for _ in range(args.runs)]
    code = IN_PROCESS % {"comfy": str(comfyui_dir()), "scripts": str(REPO / "scripts")}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    split = json.loads(run.stdout.strip().splitlines()[-1])
    result = {"import_time_s": times, "median_s": statistics.median(times), **split,
              "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    out = REPO / "bench" / "results" / "startup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"pack import time (ComfyUI's line), {args.runs} starts: median {result['median_s']:.2f} s, "
        f"all {', '.join(f'{t:.1f}' for t in times)}"
    )
    print(
        f"in one process: pack modules {split['pack_modules_s']:.2f} s, node classes (from the snapshot) "
        f"{split['node_classes_s']:.2f} s, GET_SCHEMA {split['get_schema_s']:.2f} s; {split['nodes']} nodes; "
        f"the catalog built live instead: {split['live_catalog_s']:.2f} s ({split['live_nodes']} nodes)"
    )


if __name__ == "__main__":
    main()
