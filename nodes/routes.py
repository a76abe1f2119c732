"""HTTP routes of the pack, next to ComfyUI's own API (also under /api/...).

One ComfyUI process can load the pack twice (a clone and a zip download side by side in custom_nodes/).
Each copy is a separate module, so "registered already" is kept on the server instance, never in a
module global: aiohttp refuses a second GET on the same path, and ComfyUI would not start.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from ..adapters.models import loaded_models

logger = logging.getLogger(__name__)

LOADED_MODELS_ROUTE = "/modular_diffusers/loaded_models"
# Set on ComfyUI's PromptServer instance: the folder of the copy of the pack that serves the routes.
OWNER_ATTRIBUTE = "modular_diffusers_pack_dir"
UNKNOWN_COPY = "another copy of the pack"


def running_prompt_server() -> Any | None:
    """ComfyUI's PromptServer, when this runs inside a ComfyUI server; else None.

    Its `server` module is loaded before custom nodes. Importing it from elsewhere (tools, in-process
    tests) can fail, and there would be no router to add to.
    """
    server = sys.modules.get("server")
    return getattr(getattr(server, "PromptServer", None), "instance", None)


def _has_route(prompt_server: Any, path: str) -> bool:
    return any(getattr(route, "path", None) == path for route in getattr(prompt_server, "routes", ()))


def guard_prompt(json_data: Any) -> Any:
    """ComfyUI 0.3.75 validates a node whose `inputs` is not an object (e.g. `[]`), then its prompt
    worker thread dies on it and the server never runs another prompt. Such a node gets empty
    inputs here, so validation answers with the node's missing inputs instead."""
    prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
    for node_id, node in prompt.items() if isinstance(prompt, dict) else ():
        if isinstance(node, dict) and not isinstance(node.get("inputs", {}), dict):
            logger.warning(
                "prompt node %s: 'inputs' is %s, not an object; treated as empty",
                node_id,
                type(node["inputs"]).__name__,
            )
            node["inputs"] = {}
    return json_data


def register_routes(pack_dir: str, json_routes: Mapping[str, Callable[[], Any]] | None = None) -> str | None:
    """Add the routes once per ComfyUI process (ComfyUI builds its router after loading custom nodes).

    `json_routes` adds read-only GET routes: path -> a function whose result (JSON data) is the answer,
    computed on each request (so it may describe things registered after this call).

    Returns None when the copy of the pack in `pack_dir` serves them (now or from an earlier call) or
    there is no server; else the folder of the copy that registered them first, which this copy must
    leave the server to.
    """
    prompt_server = running_prompt_server()
    if prompt_server is None:
        logger.debug("no running ComfyUI server: routes not registered")
        return None
    owner = getattr(prompt_server, OWNER_ATTRIBUTE, None)
    if owner is None and _has_route(prompt_server, LOADED_MODELS_ROUTE):
        owner = UNKNOWN_COPY  # a copy from before the marker
    if owner is not None:
        return None if owner == pack_dir else owner
    setattr(prompt_server, OWNER_ATTRIBUTE, pack_dir)

    prompt_server.add_on_prompt_handler(guard_prompt)

    @prompt_server.routes.get(LOADED_MODELS_ROUTE)
    async def get_loaded_models(request: web.Request) -> web.Response:
        """ComfyUI's loaded-model list: what is on the compute device now, and which of it is ours."""
        return web.json_response({"models": loaded_models()})

    for path, answer in (json_routes or {}).items():
        prompt_server.routes.get(path)(_json_handler(answer))
    return None


def _json_handler(answer: Callable[[], Any]) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(answer())

    return handler
