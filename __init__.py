"""ComfyUI Modular Diffusers: Hugging Face Modular Diffusers blocks as ComfyUI nodes.

ComfyUI loads this package and calls `comfy_entrypoint`. Everything that needs ComfyUI is imported
inside it, so the package stays importable without a running ComfyUI (pytest, tools).

Other packs build on this one through `api` (docs/other-packs.md). ComfyUI registers a pack under its
folder path, which no other pack can import by name, so the package also publishes itself as
`comfyui_modular_diffusers` in `sys.modules`. A pack that ComfyUI loads before this one imports this
folder under that name itself (the helper in docs/other-packs.md); when ComfyUI then loads the folder,
`comfy_entrypoint` hands over to that module, so the nodes, the routes and every class come from one
copy. A copy in another folder (the pack installed twice) is not handed over to: it registers nothing
(nodes/__init__.py).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from types import ModuleType
from typing import Any

WEB_DIRECTORY = "./web"
PACKAGE = "comfyui_modular_diffusers"  # the stable name other packs find this pack under

logger = logging.getLogger(__name__)


def _folder(init_file: str) -> tuple[str, str]:
    """A package's folder, as its parent resolved plus its own name: two links to one checkout are two
    custom nodes for ComfyUI (the way scripts/comfy_harness.py compares them)."""
    folder = os.path.dirname(os.path.abspath(init_file))
    return os.path.realpath(os.path.dirname(folder)), os.path.basename(folder)


def _other_copy() -> ModuleType | None:
    """The module published under `PACKAGE` when it is another module loaded from this same folder (by
    another pack, before ComfyUI got here): that one serves this folder. None when this module does."""
    published = sys.modules.get(PACKAGE)
    if published is None or getattr(published, "__dict__", None) is globals():
        return None
    published_file = getattr(published, "__file__", None)
    return published if published_file and _folder(published_file) == _folder(__file__) else None


def __getattr__(name: str) -> Any:
    # `pack.api` is imported from the copy of the package that serves this folder, never a second copy.
    if name == "api":
        return importlib.import_module(".api", (_other_copy() or sys.modules[__name__]).__name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def comfy_entrypoint():
    serving = _other_copy()
    if serving is not None:
        logger.info("Modular Diffusers: %s was loaded first by another pack; using that copy", serving.__file__)
        return await serving.comfy_entrypoint()
    from .nodes import ModularDiffusersExtension

    return ModularDiffusersExtension()


# Last, so a failed import never publishes a broken module; only a package (relative imports work).
if __package__ == __name__ and getattr(sys.modules.get(__name__), "__dict__", None) is globals():
    sys.modules.setdefault(PACKAGE, sys.modules[__name__])
