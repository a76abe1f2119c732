"""Every tiny random-weight model the workflows, tests and demos use: folder name (as the shipped
workflows name it in Load Diffusers Components) -> recipe (scripts/tiny_recipes/). Importing this imports
no torch, diffusers or transformers; building a folder does, unless it is already built."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from comfy_harness import TINY_MODEL as DEFAULT_MODEL  # the model the default workflow names
from tiny_recipes import Recipe
from tiny_recipes.flux import FLUX, FLUX_3072, FLUX_KONTEXT
from tiny_recipes.flux2 import FLUX2_KLEIN
from tiny_recipes.helios import HELIOS
from tiny_recipes.hunyuan_video1_5 import HUNYUAN_VIDEO15
from tiny_recipes.ltx import LTX
from tiny_recipes.minimax_music3 import MINIMAX_MUSIC3
from tiny_recipes.qwenimage import QWENIMAGE, QWENIMAGE_EDIT
from tiny_recipes.sd3 import SD3
from tiny_recipes.sdxl import SDXL, SDXL_BIGG
from tiny_recipes.wan import WAN, WAN22
from tiny_recipes.z_image import Z_IMAGE

RECIPES: dict[str, Recipe] = {
    recipe.kind: recipe
    for recipe in (
        SDXL,
        SDXL_BIGG,
        FLUX,
        FLUX_KONTEXT,
        FLUX_3072,
        FLUX2_KLEIN,
        HELIOS,
        HUNYUAN_VIDEO15,
        LTX,
        MINIMAX_MUSIC3,
        QWENIMAGE,
        QWENIMAGE_EDIT,
        SD3,
        WAN,
        WAN22,
        Z_IMAGE,
    )
}
assert DEFAULT_MODEL in RECIPES, DEFAULT_MODEL

# name -> build(out_dir) -> the folder's path (seed 0; kept as is when already built)
TINY_MODELS: dict[str, Callable[[Path], Path]] = {name: recipe.build for name, recipe in RECIPES.items()}


def build_tiny(name: str, out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny model `name` to `out_dir` (or keep it, when already built) and return its path.

    Raises KeyError for an unknown name, FileExistsError when `out_dir` exists, is not empty and was not
    made by a tiny-model builder.
    """
    return RECIPES[name].build(out_dir, seed=seed)


def models_named_by(prompt: dict) -> list[str]:
    """The tiny models an API-format workflow loads (its Load Diffusers Components nodes)."""
    names = [
        node["inputs"].get("model") for node in prompt.values() if node.get("class_type") == "MDiff_LoadComponents"
    ]
    return [name for name in names if name in TINY_MODELS]
