"""Shared fixtures: the pack imported as a package, and a real ComfyUI server with the pack loaded.

The pack's root is never put on sys.path (its `nodes/` would shadow ComfyUI's `nodes.py`); it is
imported under the name `comfyui_modular_diffusers` from its folder, the way ComfyUI loads it.
ComfyUI's own root goes on sys.path so in-process unit tests can import `comfy_api`.
"""

from __future__ import annotations

import importlib.util
import logging
import sys

import pytest
from comfy_harness import REPO, ComfyServer, comfyui_dir

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


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    comfy = ComfyServer(tmp_path_factory.mktemp("comfy-base")).start()
    logger.info("ComfyUI answered after %.1f s", comfy.start_seconds)
    yield comfy
    comfy.stop()


@pytest.fixture
def client(server):
    return server.client()


@pytest.fixture
def fresh_server(tmp_path):
    """A second server with empty caches, for comparing results with a cold run."""
    comfy = ComfyServer(tmp_path / "fresh").start()
    yield comfy
    comfy.stop()
