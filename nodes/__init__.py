"""Hand-written nodes and the catalog of block nodes this pack registers."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from ..adapters.routes import register_routes
from ..adapters.show_state import ShowState
from .examples import EXAMPLE_NODES
from .loaders import LoadComponents
from .snapshot import catalog_node_classes


class ModularDiffusersExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        register_routes()  # here, not in on_load: ComfyUI 0.3.75 never calls on_load
        return [LoadComponents, ShowState, *catalog_node_classes(), *EXAMPLE_NODES]
