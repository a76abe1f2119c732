"""Import the pack the way ComfyUI does, in this process: for the tests and for the tools that read
the pack's schemas (scripts/snapshot_catalog.py, scripts/family_table.py, bench/bench_startup.py).

The pack's root is never put on sys.path (its `nodes/` would shadow ComfyUI's `nodes.py`); it is
imported under the name `comfyui_modular_diffusers` from its folder, the way ComfyUI loads it, with
ComfyUI's own root on sys.path so `comfy_api` imports, and ComfyUI set to run on the CPU.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from comfy_harness import REPO, comfyui_dir

PACKAGE = "comfyui_modular_diffusers"


def import_pack() -> ModuleType:
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    root = str(comfyui_dir())
    if root not in sys.path:
        sys.path.insert(0, root)
    from comfy.cli_args import args

    args.cpu = True  # before anything imports comfy.model_management (no NVIDIA driver here)
    spec = importlib.util.spec_from_file_location(
        PACKAGE, REPO / "__init__.py", submodule_search_locations=[str(REPO)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    return module
