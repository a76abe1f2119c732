"""Forking and describing a PipelineState."""

from __future__ import annotations

import torch
from comfyui_modular_diffusers.adapters.state import describe_state, fork_state, format_description
from diffusers.modular_pipelines import PipelineState
from PIL import Image


def test_fork_is_independent_but_shares_values():
    latents = torch.zeros(1, 4, 8, 8)
    original = PipelineState()
    original.set("latents", latents, "denoiser_input_fields")
    original.set("steps", 4)
    fork = fork_state(original)
    fork.set("steps", 9)
    fork.set("extra", 1, "denoiser_input_fields")
    assert original.get("steps") == 4 and "extra" not in original.values
    assert original.kwargs_mapping["denoiser_input_fields"] == ["latents"]
    assert fork.get("latents") is latents  # O(1): tensors are shared, never copied


def test_fork_copies_generators_so_a_draw_from_the_fork_leaves_the_original_as_it_was():
    """A node drawing from the generator an upstream node left in the state must not advance the one in
    the upstream node's (cached) output: the next run of the node gets the same noise."""
    generator = torch.Generator().manual_seed(3)
    generators = [torch.Generator().manual_seed(4), torch.Generator().manual_seed(5)]
    original = PipelineState()
    original.set("generator", generator)
    original.set("generators", generators)
    fork = fork_state(original)
    assert fork.get("generator") is not generator and fork.get("generators")[0] is not generators[0]
    first = torch.randn(4, generator=fork.get("generator"))
    again = torch.randn(4, generator=fork_state(original).get("generator"))
    assert torch.equal(first, again)
    assert torch.equal(torch.randn(4, generator=generator), first)
    assert torch.equal(torch.randn(2, generator=fork.get("generators")[1]), torch.randn(2, generator=generators[1]))


def test_fork_of_nothing_is_empty():
    assert fork_state(None).values == {}


def test_describe_state():
    state = PipelineState()
    state.set("latents", torch.zeros(2, 4, 8, 8, dtype=torch.float16))
    state.set("image", Image.new("RGB", (6, 4)))
    state.set("prompt", ["a", "b"])
    state.set("scale", 1.5)
    described = describe_state(state)
    assert described["latents"] == {"type": "Tensor", "shape": [2, 4, 8, 8], "dtype": "float16", "device": "cpu"}
    assert described["image"]["size"] == [6, 4]
    assert described["prompt"]["length"] == 2
    assert described["scale"] == {"type": "float", "value": 1.5}
    text = format_description(described)
    assert "latents: Tensor (2, 4, 8, 8) float16" in text and "scale: float = 1.5" in text
