"""Set Pipeline State Values through a real server: values no node shows reach the blocks (SDXL's
`clip_skip` and `crops_coords_top_left`, as plain diffusers takes them), bad lines are refused by name."""

from __future__ import annotations

import numpy as np
import torch
from comfy_harness import load_api_workflow
from diffusers import ModularPipeline
from helpers import saved_image

PROMPT = "a photo of a red fox in the snow"


def test_values_set_in_the_state_reach_the_blocks_as_in_plain_diffusers(server, client, tiny_model):
    image = saved_image(server, client.run(load_api_workflow("sdxl_state_values")), "5")
    plain = load_api_workflow("sdxl_state_values")
    plain["6"]["inputs"]["values"] = ""
    unset = saved_image(server, client.run(plain), "5")
    assert not np.array_equal(image, unset)  # the values change the image

    pipe = ModularPipeline.from_pretrained(str(tiny_model))
    pipe.load_components(dtype=torch.float32)
    reference = pipe(
        prompt=PROMPT,
        negative_prompt="blurry, low quality",
        num_inference_steps=20,
        generator=torch.Generator().manual_seed(42),
        clip_skip=1,
        crops_coords_top_left=(16, 16),
        output_type="np",
        output="images",
    )
    assert np.array_equal(np.clip(255.0 * reference[0], 0, 255).astype(np.uint8), image)


def test_a_linked_value_and_the_state_it_gives(client):
    prompt = {
        "1": {"class_type": "PrimitiveInt", "inputs": {"value": 7}},
        "2": {
            "class_type": "MDiff_SetStateValues",
            "inputs": {"values": "ratio = 0.5\nsizes = [1, 2]\nlabel = fox", "name": "steps", "value": ["1", 0]},
        },
        "3": {"class_type": "MDiff_ShowState", "inputs": {"state": ["2", 0]}},
    }
    run = client.run(prompt)
    assert run.status == "success", run.error()
    state = run.output("3")["state"][0]
    assert state["ratio"]["value"] == 0.5 and state["steps"]["value"] == 7 and state["label"]["value"] == "fox"
    assert state["sizes"]["type"] == "list" and state["sizes"]["length"] == 2


def test_a_bad_line_is_refused_naming_the_node_and_the_line(client):
    prompt = {"1": {"class_type": "MDiff_SetStateValues", "inputs": {"values": "ok = 1\nnot a pair"}}}
    prompt["2"] = {"class_type": "MDiff_ShowState", "inputs": {"state": ["1", 0]}}
    run = client.run(prompt)
    assert run.status == "error"
    message = run.error()["exception_message"]
    assert "node 1 'Set Pipeline State Values'" in message and "values line 2 ('not a pair')" in message
    again = client.run({**prompt, "1": {"class_type": "MDiff_SetStateValues", "inputs": {"values": "ok = 1"}}})
    assert again.status == "success"  # the server keeps serving
