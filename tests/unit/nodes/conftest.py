"""Fixtures of the LoRA loader's tests: the tiny LoRA files, and ComfyUI's `loras` folder pointing at them."""

from __future__ import annotations

import comfy.model_management as mm
import folder_paths
import pytest
from tiny_loras import build_tiny_loras


@pytest.fixture(scope="session")
def loras(tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("loras")
    build_tiny_loras(tiny_model.parent, folder)
    return folder


@pytest.fixture
def loras_folder(loras, monkeypatch):
    """ComfyUI's `loras` folder is `loras` for one test; every model is unloaded after it."""
    monkeypatch.setattr(folder_paths, "get_filename_list", lambda name: sorted(p.name for p in loras.iterdir()))
    monkeypatch.setattr(folder_paths, "get_full_path_or_raise", lambda name, file: str(loras / file))
    yield
    mm.unload_all_models()
