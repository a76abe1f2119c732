"""HTTP routes of the pack, next to ComfyUI's own API (also under /api/...)."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from .models import loaded_models

logger = logging.getLogger(__name__)

LOADED_MODELS_ROUTE = "/modular_diffusers/loaded_models"
_registered = False


def register_routes() -> None:
    """Add the routes once (ComfyUI builds its router after loading custom nodes)."""
    global _registered
    if _registered:
        return
    # Only inside a running ComfyUI: its `server` module is loaded before custom nodes. Importing it
    # from elsewhere (tools, in-process tests) can fail, and there would be no router to add to.
    server = sys.modules.get("server")
    prompt_server = getattr(getattr(server, "PromptServer", None), "instance", None)
    if prompt_server is None:
        logger.debug("no running ComfyUI server: routes not registered")
        return

    @prompt_server.routes.get(LOADED_MODELS_ROUTE)
    async def get_loaded_models(request: web.Request) -> web.Response:
        """ComfyUI's loaded-model list: what is on the compute device now, and which of it is ours."""
        return web.json_response({"models": loaded_models()})

    _registered = True
