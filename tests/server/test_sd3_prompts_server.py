"""SD3's prompts for its third text encoder (T5) through a real server: `prompt_3` and `negative_prompt_3`
(empty: not set, diffusers then gives T5 `prompt` / `negative_prompt`) make plain diffusers' image with the
same arguments, and another image than without them."""

from __future__ import annotations

import numpy as np
import torch
from comfy_harness import load_api_workflow
from diffusers.modular_pipelines import ModularPipeline
from helpers import comfy_quantize, saved_image

TEXT = ("prompt", "prompt_3", "negative_prompt", "negative_prompt_3", "max_sequence_length")


def plain_image(folder, text: dict, denoise: dict) -> np.ndarray:
    pipe = ModularPipeline.from_pretrained(str(folder))
    pipe.load_components(dtype=torch.float32)
    images = pipe(
        **{name: text[name] for name in TEXT},
        height=denoise["height"],
        width=denoise["width"],
        num_inference_steps=denoise["num_inference_steps"],
        generator=torch.Generator().manual_seed(denoise["seed"]),
        output_type="np",
        output="images",
    )
    return comfy_quantize(np.asarray(images)[0])


def test_the_t5_prompts_give_diffusers_image(server, client, tiny_models):
    prompt = load_api_workflow("sd3_text2image")
    assert prompt["2"]["inputs"]["prompt_3"] == prompt["2"]["inputs"]["negative_prompt_3"] == ""
    default = saved_image(server, client.run(prompt), "5")
    prompt["2"]["inputs"].update(prompt_3="a cat in a hat", negative_prompt_3="a dog")
    ours = saved_image(server, client.run(prompt), "5")
    assert np.abs(ours.astype(int) - default.astype(int)).mean() > 1  # T5 reads prompt_3, not prompt
    assert np.array_equal(ours, plain_image(tiny_models["tiny-sd3"], prompt["2"]["inputs"], prompt["3"]["inputs"]))
