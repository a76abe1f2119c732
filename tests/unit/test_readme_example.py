"""The README's "turn your own block into a node" example runs as documented."""

from __future__ import annotations

import re

import torch
from comfy_harness import REPO
from diffusers.modular_pipelines import PipelineState


def readme_example() -> dict:
    readme = (REPO / "README.md").read_text()
    code = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "class AddNoise" in block)
    code = code.replace("from ..adapters.", "from comfyui_modular_diffusers.adapters.")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace


def test_readme_block_becomes_the_described_node():
    (node,) = readme_example()["MY_NODES"]
    schema = node.GET_SCHEMA()
    inputs = {i.id: i for i in schema.inputs}
    assert inputs["latents"].io_type == "MDIFF_TENSOR" and inputs["latents"].optional
    assert inputs["scale"].default == 0.1 and inputs["scale"].tooltip == "noise strength"
    assert inputs["seed"].io_type == "INT"
    assert "components" not in inputs
    state = PipelineState()
    state.set("latents", torch.zeros(1, 4, 2, 2))
    block = node.PLAN.block
    new_state, (latents,) = node.PLAN.run(
        {"state": state, "seed": 3, "scale": 0.5}, pipeline=block.init_pipeline(), node_label="node 1"
    )
    assert latents.abs().sum() > 0 and state.get("latents").abs().sum() == 0
