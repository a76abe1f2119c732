"""Every tiny random-weight model the workflows, tests and demos use: folder name (as the shipped
workflows name it in Load Diffusers Components) -> builder. Each builder is imported only when its
model is built."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from comfy_harness import TINY_MODEL as DEFAULT_MODEL  # the model the default workflow names


def _builder(module: str, function: str, **kwargs) -> Callable[[Path], Path]:
    def build(out_dir: Path) -> Path:
        return getattr(importlib.import_module(module), function)(out_dir, **kwargs)

    return build


TINY_MODELS: dict[str, Callable[[Path], Path]] = {
    DEFAULT_MODEL: _builder("build_tiny_sdxl", "build_tiny_sdxl"),
    "tiny-flux": _builder("build_tiny_flux", "build_tiny_flux"),
    "tiny-flux-kontext": _builder("build_tiny_flux", "build_tiny_flux", kontext=True),
    "tiny-wan": _builder("build_tiny_wan", "build_tiny_wan"),
    "tiny-wan22": _builder("build_tiny_wan", "build_tiny_wan", wan22=True),
    "tiny-z-image": _builder("build_tiny_z_image", "build_tiny_z_image"),
}


def models_named_by(prompt: dict) -> list[str]:
    """The tiny models an API-format workflow loads (its Load Diffusers Components nodes)."""
    names = [
        node["inputs"].get("model") for node in prompt.values() if node.get("class_type") == "MDiff_LoadComponents"
    ]
    return [name for name in names if name in TINY_MODELS]
