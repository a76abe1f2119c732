"""Fixtures every test folder shares: the pack imported as ComfyUI imports it, and the tiny models.

The layout mirrors the code: tests/unit/adapters and tests/unit/nodes test one module each, in-process
(`test_<module>.py`); tests/server runs a real ComfyUI server with the pack loaded (its fixtures are in
tests/server/conftest.py); tests/tools tests the scripts (tiny-model builders, the server harness).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from comfy_harness import TINY_MODEL
from pack_import import import_pack
from tiny_checks import block_network
from tiny_models import TINY_MODELS
from tiny_single_files import build_tiny_single_files

import_pack()
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


@pytest.fixture(scope="session")
def single_files(tiny_models) -> Path:
    """The single-file fixtures (`<ComfyUI models folder>/<file>`), built once beside the tiny models."""
    root = next(iter(tiny_models.values())).parent
    build_tiny_single_files(root, root / ".single_files")
    return root / ".single_files"
