"""The pack's HTTP routes: registered once per ComfyUI process, left to the first copy of the pack, and the
prompt guard that keeps ComfyUI 0.3.75's worker alive."""

from __future__ import annotations

import asyncio
import json
import sys
from types import SimpleNamespace

import pytest
from aiohttp import web
from comfyui_modular_diffusers.nodes import routes


class FakePromptServer:
    """What the routes use of ComfyUI's PromptServer: a route table and the on-prompt handlers."""

    def __init__(self):
        self.routes = web.RouteTableDef()
        self.handlers = []

    def add_on_prompt_handler(self, handler):
        self.handlers.append(handler)

    def answer(self, path: str):
        (route,) = [route for route in self.routes if route.path == path]
        response = asyncio.run(route.handler(None))
        return json.loads(response.text)


@pytest.fixture
def prompt_server(monkeypatch):
    server = FakePromptServer()
    monkeypatch.setitem(sys.modules, "server", SimpleNamespace(PromptServer=SimpleNamespace(instance=server)))
    return server


def test_routes_are_registered_once_and_answer_json(prompt_server):
    answers = iter([{"n": 1}, {"n": 2}])
    assert routes.register_routes("/nodes/pack", {"/modular_diffusers/x": lambda: next(answers)}) is None
    assert prompt_server.answer("/modular_diffusers/x") == {"n": 1}
    assert prompt_server.answer("/modular_diffusers/x") == {"n": 2}  # computed on each request
    assert prompt_server.answer(routes.LOADED_MODELS_ROUTE)["models"] == []
    assert prompt_server.handlers == [routes.guard_prompt]
    assert routes.register_routes("/nodes/pack") is None  # the same copy again: nothing added
    assert len([r for r in prompt_server.routes if r.path == routes.LOADED_MODELS_ROUTE]) == 1


def test_a_second_copy_is_told_which_copy_serves(prompt_server):
    routes.register_routes("/nodes/first")
    assert routes.register_routes("/nodes/second") == "/nodes/first"


def test_without_a_server_nothing_is_registered(monkeypatch):
    monkeypatch.delitem(sys.modules, "server", raising=False)
    assert routes.running_prompt_server() is None and routes.register_routes("/nodes/pack") is None


def test_the_prompt_guard_empties_inputs_that_are_not_an_object():
    data = {"prompt": {"1": {"class_type": "X", "inputs": []}, "2": {"class_type": "Y", "inputs": {"a": 1}}}}
    assert routes.guard_prompt(data)["prompt"] == {
        "1": {"class_type": "X", "inputs": {}},
        "2": {"class_type": "Y", "inputs": {"a": 1}},
    }
    assert routes.guard_prompt("not a prompt") == "not a prompt"
