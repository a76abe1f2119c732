"""The pack: its hand-written nodes, the catalog of block nodes, users' own blocks, and its routes.

`SCHEMA_VERSIONS` is the one versions registry of this load of the pack: the deprecated nodes of this
pack and of other packs (`api.versioned_nodes`) are recorded there, and the versions route serves it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from comfy_api.latest import ComfyExtension, io

from ..adapters.versions import SchemaVersions
from .custom_blocks import NOT_SCANNED, custom_block_nodes
from .custom_blocks import STATUS_ROUTE as CUSTOM_BLOCKS_ROUTE
from .hand_written import HAND_WRITTEN_NODES
from .history import deprecated_nodes
from .routes import register_routes
from .snapshot import catalog_node_classes

logger = logging.getLogger(__name__)

# The folder ComfyUI loaded this copy from, as ComfyUI names it (a symlink is not resolved).
PACK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSIONS_ROUTE = "/modular_diffusers/schema_versions"
SCHEMA_VERSIONS = SchemaVersions()


class ModularDiffusersExtension(ComfyExtension):
    def __init__(self, versions: SchemaVersions = SCHEMA_VERSIONS) -> None:
        self.versions = versions
        self.custom_blocks_status: dict[str, Any] = NOT_SCANNED

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        # Here, not in on_load: ComfyUI 0.3.75 never calls on_load.
        routes = {VERSIONS_ROUTE: self.versions.table, CUSTOM_BLOCKS_ROUTE: lambda: self.custom_blocks_status}
        first_copy = register_routes(PACK_DIR, routes)
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
        nodes += deprecated_nodes(nodes, self.versions)
        custom, self.custom_blocks_status = custom_block_nodes()  # models/modular_blocks (opt-in)
        await self.versions.register_replacements()
        return nodes + custom
