"""Hand-written nodes and the catalog of block nodes this pack registers."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from ..adapters.show_state import ShowState
from .examples import EXAMPLE_NODES
from .loaders import LoadComponents
from .sdxl import SDXL_NODES


class ModularDiffusersExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [LoadComponents, ShowState, *SDXL_NODES, *EXAMPLE_NODES]
