"""Fixtures of the tiny-model builder tests: one torch thread, and the tiny models loaded offline.

The folders themselves come from the session's `tiny_models` fixture (tests/conftest.py), which builds
every registered model once.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from tiny_checks import block_network


def _disable_progress_bars(blocks) -> None:
    # ModularPipeline.set_progress_bar_config reaches only the top-level sub-blocks; some loops sit deeper
    # (Z-Image's: denoise -> text2image/image2image -> denoise).
    if hasattr(blocks, "set_progress_bar_config"):
        blocks.set_progress_bar_config(disable=True)
    for sub_block in getattr(blocks, "sub_blocks", {}).values():
        _disable_progress_bars(sub_block)


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    # The models are tiny: one thread is as fast on an idle machine and far faster on a busy one, where two
    # spinning intra-op threads fight other processes for 2 cores (6 s instead of 0.2 s a call).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_models) -> Callable:
    """`tiny_pipeline(name)`: the tiny model `name` as a float32 ModularPipeline, loaded with the network
    blocked (once a session; tests that swap its components put them back)."""
    from diffusers import ModularPipeline

    loaded = {}

    def load(name: str):
        if name not in loaded:
            with pytest.MonkeyPatch.context() as patch:
                block_network(patch)
                pipeline = ModularPipeline.from_pretrained(str(tiny_models[name]))
                pipeline.load_components(dtype=torch.float32)
            _disable_progress_bars(pipeline.blocks)
            loaded[name] = pipeline
        return loaded[name]

    return load
