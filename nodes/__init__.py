"""Hand-written nodes and the catalog of block nodes this pack registers."""

from __future__ import annotations

import logging
import os

from comfy_api.latest import ComfyExtension, io

from ..adapters.routes import register_routes
from ..adapters.versions import register_replacements, versions_table
from .custom_blocks import STATUS_ROUTE as CUSTOM_BLOCKS_ROUTE
from .custom_blocks import custom_block_nodes, custom_blocks_status
from .history import deprecated_nodes
from .snapshot import HAND_WRITTEN_NODES, catalog_node_classes

logger = logging.getLogger(__name__)

# The folder ComfyUI loaded this copy from, as ComfyUI names it (a symlink is not resolved).
PACK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSIONS_ROUTE = "/modular_diffusers/schema_versions"


class ModularDiffusersExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        # Here, not in on_load: ComfyUI 0.3.75 never calls on_load.
        first_copy = register_routes(
            PACK_DIR,
            {
                VERSIONS_ROUTE: versions_table,
                CUSTOM_BLOCKS_ROUTE: custom_blocks_status,
            },
        )
        if first_copy is not None:
            # A second copy in custom_nodes/. ComfyUI lets a later pack overwrite node ids, which would
            # mix this copy's nodes with the first copy's routes and model classes: give it nothing.
            logger.warning(
                "Modular Diffusers: ignoring the copy in %s, because the copy in %s is already loaded "
                "(two copies of the pack are installed; remove one)",
                PACK_DIR,
                first_copy,
            )
            return []
        nodes = [*HAND_WRITTEN_NODES, *catalog_node_classes()]
        # Earlier shapes of changed nodes, so saved canvas workflows keep loading (adapters/versions.py).
        nodes += deprecated_nodes(nodes)
        nodes += custom_block_nodes()  # models/modular_blocks (opt-in: MDIFF_ALLOW_CUSTOM_CODE)
        await register_replacements()
        return nodes
