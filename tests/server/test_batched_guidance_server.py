"""Batched guidance through real ComfyUI servers (adapters/batched_guidance.py): at default settings the
shipped SDXL and Z-Image (guidance on) workflows run batched and give images within float rounding of a
server with it off (the parity tests' server); a family not proven on a fixture stays unbatched, bit for
bit; `MDIFF_BATCHED_GUIDANCE=1` batches it too. (That each step is one model call is counted in
tests/unit/adapters/test_batched_guidance.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from comfy_harness import load_api_workflow
from helpers import saved_image, start_server


@pytest.fixture(scope="module")
def batched_server(tmp_path_factory, tiny_model):
    """A server at default settings (the variable unset: batched guidance for proven families)."""
    comfy = start_server(tmp_path_factory.mktemp("batched"), tiny_model, env={"MDIFF_BATCHED_GUIDANCE": ""})
    yield comfy
    comfy.stop()


def _sdxl() -> tuple[dict, str]:
    return load_api_workflow("sdxl_text2image"), "5"


def _z_image_with_guidance() -> tuple[dict, str]:
    prompt = load_api_workflow("z_image_text2image")
    prompt["2"]["inputs"]["guidance_scale"] = 4.0  # switches Z-Image's guider on: two passes per step
    return prompt, "5"


@pytest.mark.parametrize("workflow", [_sdxl, _z_image_with_guidance], ids=["sdxl", "z_image"])
def test_batched_guidance_gives_the_same_image_within_rounding(server, batched_server, workflow):
    prompt, save = workflow()
    default = saved_image(server, server.client().run(prompt), save).astype(int)
    batched = saved_image(batched_server, batched_server.client().run(prompt), save).astype(int)
    assert default.shape == batched.shape
    assert np.abs(default - batched).max() <= 2, np.abs(default - batched).max()


def test_a_family_not_proven_stays_unbatched_by_default(server, batched_server):
    """Wan 2.1 (its guider runs two passes per step) is not marked proven: the default server's video
    frames are bit-identical with the off server's."""
    prompt = load_api_workflow("wan_text2video")
    save = next(key for key, node in prompt.items() if node["class_type"] == "SaveImage")
    default = saved_image(server, server.client().run(prompt), save)
    assert np.array_equal(saved_image(batched_server, batched_server.client().run(prompt), save), default)
