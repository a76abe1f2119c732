"""Weight files in ComfyUI's model folders, listed through `folder_paths` (so extra_model_paths.yaml and the
legacy `unet`/`clip` folders count), one list per kind, read again whenever ComfyUI asks for the node list
(the canvas's refresh).

The pack lists `.safetensors` and `.gguf` files: ComfyUI's own lists leave `.gguf` out (its loaders cannot
read them), and pickle files (`.ckpt`, `.pt`) can run code when loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import folder_paths

from ..adapters.weight_files import SAFETENSORS_SUFFIX, SUFFIXES
from .loaders import DENOISERS, TEXT_ENCODER_PREFIX, model_folders
from .loaders import FOLDER as DIFFUSERS_FOLDER

CHECKPOINTS = "checkpoints"
DIFFUSION_MODELS = "diffusion_models"  # also ComfyUI's legacy models/unet
VAE = "vae"
TEXT_ENCODERS = "text_encoders"  # also ComfyUI's legacy models/clip
COMPONENT_KINDS = (DIFFUSION_MODELS, VAE, TEXT_ENCODERS)


def weight_files(kind: str, suffixes: tuple[str, ...] = SUFFIXES) -> dict[str, Path]:
    """Name (relative to its model folder, `/`-separated, as ComfyUI shows it) -> path, first folder first."""
    found: dict[str, Path] = {}
    for root in folder_paths.get_folder_paths(kind):
        files, _ = folder_paths.recursive_search(root, excluded_dir_names=[".git"])
        for name in folder_paths.filter_files_extensions(files, suffixes):
            found.setdefault(name.replace(os.sep, "/"), Path(root) / name)
    return dict(sorted(found.items()))


def checkpoint_files() -> dict[str, Path]:
    return weight_files(CHECKPOINTS, (SAFETENSORS_SUFFIX,))


def component_sources() -> dict[str, Path]:
    """`<kind>/<name>` -> path, for every file a component can be replaced by, then `diffusers/<folder>` for
    every diffusers folder (its component of the same name)."""
    sources = {f"{kind}/{name}": path for kind in COMPONENT_KINDS for name, path in weight_files(kind).items()}
    sources.update({f"{DIFFUSERS_FOLDER}/{name}": path for name, path in model_folders().items()})
    return sources


def source_kind(source: str) -> str:
    return source.split("/", 1)[0]


def fits(kind: str, component: str) -> bool:
    """Whether a file of `kind` can hold component `component` (a diffusers folder holds any)."""
    if kind == DIFFUSION_MODELS:
        return component in DENOISERS
    if kind == VAE:
        return component == "vae"
    if kind == TEXT_ENCODERS:
        return component.startswith(TEXT_ENCODER_PREFIX)
    return kind == DIFFUSERS_FOLDER


def file_error(label: str, source: str, error: Exception) -> ValueError:
    """A node's error for a file: the node, the file as its list names it, and the reason (the name said once)."""
    reason, name = str(error), source.rsplit("/", 1)[-1]
    reason = reason.removeprefix(f"{name}: ")
    return ValueError(f"{label}: {source}: {reason}")
