"""A real ComfyUI server with the pack loaded, shared by the server tests (one per session), and a
second one with empty caches where a test compares with a cold run."""

from __future__ import annotations

import pytest
from helpers import start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory, tiny_model):
    comfy = start_server(tmp_path_factory.mktemp("comfy-base"), tiny_model)
    yield comfy
    comfy.stop()


@pytest.fixture
def client(server):
    return server.client()


@pytest.fixture
def fresh_server(tmp_path, tiny_model):
    """A second server with empty caches, for comparing results with a cold run."""
    comfy = start_server(tmp_path / "fresh", tiny_model)
    yield comfy
    comfy.stop()
