"""Shared fixtures: the pack imported as a package, and a real ComfyUI server with the pack loaded.

The pack's root is never put on sys.path (its `nodes/` would shadow ComfyUI's `nodes.py`); it is
imported under the name `comfyui_modular_diffusers` from its folder, the way ComfyUI loads it.
ComfyUI's own root goes on sys.path so in-process unit tests can import `comfy_api`.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import sys
from pathlib import Path

import pytest
import torch
from comfy_harness import REPO, TINY_MODEL, ComfyServer, comfyui_dir, make_base_directory
from tiny_checks import block_network
from tiny_models import TINY_MODELS

PACKAGE = "comfyui_modular_diffusers"
logger = logging.getLogger(__name__)


def _import_pack():
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


_import_pack()
torch.set_num_threads(1)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails (the tiny models load offline)."""
    block_network(monkeypatch)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Every tiny model, built once per test session."""
    root = tmp_path_factory.mktemp("models")
    return {name: build(root / name) for name, build in TINY_MODELS.items()}


@pytest.fixture(scope="session")
def tiny_model(tiny_models) -> Path:
    """The tiny random-weight SDXL."""
    return tiny_models[TINY_MODEL]


def start_server(
    base: Path, tiny_model: Path, extra_args: list[str] | None = None, env: dict[str, str] | None = None
) -> ComfyServer:
    """A server whose base directory holds this pack, every tiny model and ComfyUI's example image
    (`tiny_model`, the SDXL folder, sits beside the others)."""
    make_base_directory(base)
    for model in tiny_model.parent.iterdir():
        if model.is_dir() and not model.name.startswith("."):
            (base / "models" / "diffusers" / model.name).symlink_to(model, target_is_directory=True)
    (base / "input").mkdir(exist_ok=True)
    shutil.copy(comfyui_dir() / "input" / "example.png", base / "input" / "example.png")
    # One torch thread per process: the server and the test process share 2 cores, and
    # oversubscribed OpenMP threads spin-wait (runs became 10-50x slower).
    comfy = ComfyServer(base, extra_args=extra_args, env={"OMP_NUM_THREADS": "1", **(env or {})}).start()
    logger.info("ComfyUI answered after %.1f s", comfy.start_seconds)
    return comfy


@pytest.fixture(scope="session")
def server(tmp_path_factory, tiny_model):
    comfy = start_server(tmp_path_factory.mktemp("comfy-base"), tiny_model)
    yield comfy
    comfy.stop()


@pytest.fixture
def client(server):
    return server.client()


@pytest.fixture
def fresh_server(tmp_path, tiny_model):
    """A second server with empty caches, for comparing results with a cold run."""
    comfy = start_server(tmp_path / "fresh", tiny_model)
    yield comfy
    comfy.stop()
